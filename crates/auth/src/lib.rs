//! Identity: signed access tokens and password hashing. Both tiers use it; the
//! user id of every request and every socket comes from a verified token here,
//! never from a payload.
//!
//! # Layout
//! - [`Tokens`]: issue and verify HS256 JWTs (`sub` = user id, `exp`, and
//!   `sid`, the login session, for tokens issued at login or refresh).
//! - [`refresh`]: [`RefreshToken`], what renews a session.
//! - [`service`]: [`ServiceTokens`], the internal routes' tokens (their own
//!   secret and audience).
//! - [`hash_password`] / [`verify_password`]: argon2id, run off the async
//!   threads because each call costs tens of milliseconds of CPU by design.
//! - [`pool`]: the small dedicated thread pool they run on.

pub mod pool;
pub mod refresh;
pub mod service;

pub use refresh::RefreshToken;
pub use service::ServiceTokens;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, SaltString, rand_core::OsRng};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use roomcast_core::{SessionId, UserId};
use serde::{Deserialize, Serialize};

/// Errors from token and password handling.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token is malformed, badly signed or expired.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// Hashing failed (should not happen with valid parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
    /// The login session, if the token belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

/// What a valid access token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The user it speaks for.
    pub user: UserId,
    /// Its login session (`None` for a token issued without one).
    pub session: Option<SessionId>,
    /// When it expires (Unix seconds).
    pub exp: u64,
}

/// Issues and verifies access tokens with one shared secret.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Tokens {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// A token for `user`, of no session (tests, tools).
    pub fn issue(&self, user: UserId) -> String {
        self.encode(user, None)
    }

    /// A token for `user` in login session `session`.
    pub fn issue_in(&self, user: UserId, session: SessionId) -> String {
        self.encode(user, Some(session))
    }

    /// How long the tokens issued live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn encode(&self, user: UserId, session: Option<SessionId>) -> String {
        let iat = unix_now();
        let claims = Claims {
            sub: user.to_string(),
            iat,
            exp: iat + self.ttl.as_secs(),
            sid: session.map(|s| s.to_string()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding cannot fail")
    }

    /// Everything a valid token says; service tokens are refused.
    pub fn verify_full(&self, token: &str) -> Result<Verified, AuthError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?
            .claims;
        let user = claims
            .sub
            .parse()
            .map_err(|_| AuthError::InvalidToken("subject is not a user id".into()))?;
        let session = match claims.sid {
            None => None,
            Some(sid) => Some(
                sid.parse()
                    .map_err(|_| AuthError::InvalidToken("sid is not a session id".into()))?,
            ),
        };
        Ok(Verified {
            user,
            session,
            exp: claims.exp,
        })
    }

    /// The user a token speaks for, if it is valid. Service tokens
    /// ([`ServiceTokens`]) are refused.
    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        self.subject(token)?
            .parse()
            .map_err(|_| AuthError::InvalidToken("subject is not a user id".into()))
    }

    fn subject(&self, token: &str) -> Result<String, AuthError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims.sub)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))
    }
}

/// Hash a password with argon2id (default parameters) on the hashing [`pool`].
/// The result is a standard PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash_password(password: String) -> Result<String, AuthError> {
    pool::run(move || {
        let salt = SaltString::generate(&mut OsRng);
        pool::argon2_hash(&Argon2::default(), password.as_bytes(), salt.as_salt())
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Hash(e.to_string()))
    })
    .await
    .ok_or_else(|| AuthError::Hash("hashing pool stopped".into()))?
}

/// A well-formed hash of a random password, verified against when the user is
/// unknown so that the answer takes as long as for a known user.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$kX7Vd3a6Gx8kA6p5S1tqIw0xJ3dD0oV6v2YQ4m9W0yA";

/// Check a password against a stored hash on the hashing [`pool`]. With `None`
/// (unknown user) it verifies against a fixed dummy hash and returns `false`,
/// so both cases take the same time and reveal nothing.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY.to_owned());
    pool::run(move || {
        let ok = PasswordHash::new(&hash)
            .map(|parsed| pool::argon2_verify(password.as_bytes(), &parsed))
            .unwrap_or(false);
        ok && known
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_to_its_user_and_only_with_its_secret() {
        let t = Tokens::new(b"secret-one", Duration::from_secs(60));
        let user = UserId::new();
        let token = t.issue(user);
        assert_eq!(t.verify(&token).unwrap(), user);
        let other = Tokens::new(b"secret-two", Duration::from_secs(60));
        assert!(other.verify(&token).is_err());
        assert!(t.verify("garbage").is_err());
        assert!(t.verify("").is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let t = Tokens::new(b"s", Duration::from_secs(0));
        let mut validation_free = Tokens::new(b"s", Duration::from_secs(0));
        validation_free.validation.leeway = 0;
        let claims = Claims {
            sub: UserId::new().to_string(),
            iat: 1,
            exp: 2,
            sid: None,
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &t.encoding).unwrap();
        assert!(validation_free.verify(&token).is_err());
    }

    #[test]
    fn a_session_token_carries_its_session() {
        let t = Tokens::new(b"s", Duration::from_secs(60));
        let (user, session) = (UserId::new(), SessionId::new());
        let v = t.verify_full(&t.issue_in(user, session)).unwrap();
        assert_eq!((v.user, v.session), (user, Some(session)));
        assert!(v.exp >= unix_now() + 59);
        assert_eq!(t.verify_full(&t.issue(user)).unwrap().session, None);
        assert_eq!(t.verify(&t.issue_in(user, session)).unwrap(), user);
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let ours = hash_password("correct horse".into()).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("battery staple".into(), Some(theirs.clone())).await);
        assert!(!verify_password("battery stapler".into(), Some(theirs)).await);
        assert!(!verify_password("x".into(), Some("not a hash".into())).await);
        // The unknown-user path does the same work as a known user.
        let dummy = PasswordHash::new(DUMMY).unwrap();
        assert_eq!(dummy.params.get_decimal("m"), Some(19456));
        assert_eq!(dummy.hash.map(|h| h.len()), Some(32));
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), Some(h.clone())).await);
        assert!(!verify_password("wrong horse".into(), Some(h)).await);
        assert!(!verify_password("correct horse".into(), None).await);
    }
}
