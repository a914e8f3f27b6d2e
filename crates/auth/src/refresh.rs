//! Refresh tokens: what a client trades for a new access token (and a new
//! refresh token) when its access token runs out.
//!
//! A refresh token is `rt1.<sessionId>.<generation>.<secret>`: the session
//! it renews, which rotation of it this is, and 32 random bytes
//! (base64url). The database keeps only the SHA-256 of the secret of the
//! current generation ([`RefreshToken::hash`]): a fast hash is right for a
//! 256-bit random secret, which no dictionary holds. Each use rotates it
//! (generation + 1, a new secret); presenting an earlier generation again
//! is reuse, and revokes the session (`roomcast_store::Rotated`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use roomcast_core::SessionId;
use sha2::{Digest, Sha256};

/// The prefix of every refresh token of this format.
const PREFIX: &str = "rt1";

/// Random bytes in a refresh token's secret.
const SECRET_BYTES: usize = 32;

/// A refresh token, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The session it renews.
    pub session: SessionId,
    /// Its generation (0 at login, +1 per rotation).
    pub generation: i64,
    secret: String,
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken")
            .field("session", &self.session)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl RefreshToken {
    /// A fresh token of `session` at `generation`, with a new random secret.
    pub fn generate(session: SessionId, generation: i64) -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rng().fill(&mut bytes[..]);
        Self {
            session,
            generation,
            secret: URL_SAFE_NO_PAD.encode(bytes),
        }
    }

    /// The same token for `session` (the store names a session when it
    /// makes it).
    pub fn of_session(self, session: SessionId) -> Self {
        Self { session, ..self }
    }

    /// Parse the text a client sent; `None` if it is not a refresh token.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.');
        let (prefix, session, generation, secret) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if prefix != PREFIX || parts.next().is_some() {
            return None;
        }
        let generation: i64 = generation.parse().ok().filter(|g| *g >= 0)?;
        let decoded = URL_SAFE_NO_PAD.decode(secret).ok()?;
        if decoded.len() != SECRET_BYTES {
            return None;
        }
        Some(Self {
            session: session.parse().ok()?,
            generation,
            secret: secret.to_owned(),
        })
    }

    /// The text given to the client.
    pub fn encode(&self) -> String {
        format!(
            "{PREFIX}.{}.{}.{}",
            self.session, self.generation, self.secret
        )
    }

    /// What the database keeps of it: the SHA-256 of its secret, hex.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.secret.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_its_hash_is_not_its_secret() {
        let t = RefreshToken::generate(SessionId::new(), 3);
        let text = t.encode();
        let back = RefreshToken::parse(&text).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.hash(), t.hash());
        assert_eq!(t.hash().len(), 64);
        assert!(!text.contains(&t.hash()));
        let other = RefreshToken::generate(t.session, 3);
        assert_ne!(other.hash(), t.hash(), "a new secret each time");
        assert!(
            !format!("{t:?}").contains(&t.secret),
            "Debug hides the secret"
        );
    }

    #[test]
    fn anything_else_is_not_a_refresh_token() {
        let good = RefreshToken::generate(SessionId::new(), 0).encode();
        let parts: Vec<&str> = good.split('.').collect();
        for bad in [
            String::new(),
            "rt1".into(),
            good.replacen("rt1", "rt2", 1),
            format!("{good}.x"),
            format!("rt1.{}.-1.{}", parts[1], parts[3]),
            format!("rt1.not-a-uuid.0.{}", parts[3]),
            format!("rt1.{}.0.short", parts[1]),
            format!("rt1.{}.zero.{}", parts[1], parts[3]),
        ] {
            assert!(RefreshToken::parse(&bad).is_none(), "{bad}");
        }
    }
}
