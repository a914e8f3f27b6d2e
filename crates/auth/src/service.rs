//! Service tokens: how roomcast's realtime tier proves itself to the API
//! tier's internal routes (`/internal/v1/*`, on the API's internal listener
//! only).
//!
//! They are signed with a secret of their own (`internal.secret`), never the
//! user tokens' `auth.jwt_secret`, carry the audience [`AUDIENCE`] (which
//! user tokens lack, so one is never accepted as the other), name the
//! calling node in `sub`, and live [`SERVICE_TTL`]: the realtime tier signs
//! a fresh one per request.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{AuthError, unix_now};

/// The audience of every service token.
pub const AUDIENCE: &str = "roomcast-internal";

/// How long a service token is valid.
pub const SERVICE_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Serialize, Deserialize)]
struct ServiceClaims {
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
}

/// Issues and verifies service tokens with the internal secret.
pub struct ServiceTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokens").finish_non_exhaustive()
    }
}

impl ServiceTokens {
    /// Service tokens signed with `secret` (`internal.secret`).
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A token for the node `name`.
    pub fn issue(&self, name: &str) -> String {
        let iat = unix_now();
        let claims = ServiceClaims {
            sub: name.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat,
            exp: iat + SERVICE_TTL.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding cannot fail")
    }

    /// The node a valid service token names.
    pub fn verify(&self, token: &str) -> Result<String, AuthError> {
        jsonwebtoken::decode::<ServiceClaims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims.sub)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tokens;
    use roomcast_core::UserId;

    #[test]
    fn service_and_user_tokens_are_not_interchangeable_even_with_one_secret() {
        let service = ServiceTokens::new(b"s");
        let users = Tokens::new(b"s", Duration::from_secs(60));
        let token = service.issue("realtime-1");
        assert_eq!(service.verify(&token).unwrap(), "realtime-1");
        assert!(
            users.verify(&token).is_err(),
            "a service token is no user token"
        );
        let user = users.issue(UserId::new());
        assert!(
            service.verify(&user).is_err(),
            "a user token has no audience"
        );
        assert!(ServiceTokens::new(b"other").verify(&token).is_err());
        assert!(service.verify("garbage").is_err());
    }
}
