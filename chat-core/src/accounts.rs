//! Passwords and bearer tokens.
//!
//! Passwords are kept only as Argon2id hashes. Tokens are 256 random bits from the operating
//! system, shown to the client once and kept only as their SHA-256 hash, so a copy of the
//! database yields no usable token. A plain hash suffices for tokens (unlike passwords)
//! because they carry full entropy: there is nothing to guess.

use std::fmt;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::model::{PasswordHash, TokenHash};

/// The cost of Argon2id hashing.
///
/// The default is OWASP's recommendation for Argon2id: 19 MiB of memory, 2 passes, 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for PasswordCost {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordCost {
    /// The smallest cost Argon2 allows. Only for tests, where hashing time is waste.
    pub const INSECURE_FOR_TESTS: PasswordCost = PasswordCost {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    fn hasher(self) -> Argon2<'static> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .unwrap_or_default();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }
}

/// Hashes `password` with a fresh random salt. CPU- and memory-heavy: call it off the async
/// runtime's worker threads.
#[must_use]
pub fn hash_password(password: &str, cost: PasswordCost) -> PasswordHash {
    let salt = SaltString::generate(&mut OsRng);
    let hash = cost
        .hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 hashing cannot fail with valid parameters and a generated salt");
    PasswordHash(hash.to_string())
}

/// Whether `password` matches `hash`. The parameters come from the hash itself, so hashes
/// made under an older cost still verify. A malformed hash matches nothing.
#[must_use]
pub fn verify_password(password: &str, hash: &PasswordHash) -> bool {
    let Ok(parsed) = argon2::PasswordHash::new(&hash.0) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A bearer token as handed to the client: 64 lowercase hex characters. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    /// A new token of 256 random bits from the operating system.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        Self(Zeroizing::new(hex::encode(bytes.as_ref())))
    }

    /// The token, to send to the client once.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// What the store keeps.
    #[must_use]
    pub fn hash(&self) -> TokenHash {
        token_hash(&self.0)
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Whether `s` has the shape of a token we issue; anything else is rejected before the store
/// is asked.
#[must_use]
pub fn looks_like_token(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The SHA-256 hash of a presented token.
#[must_use]
pub fn token_hash(token: &str) -> TokenHash {
    TokenHash(Sha256::digest(token.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let hash = hash_password("correct horse battery", PasswordCost::INSECURE_FOR_TESTS);
        assert!(hash.0.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("", &hash));
        assert!(!verify_password("x", &PasswordHash("not a hash".into())));
    }

    #[test]
    fn same_password_hashes_differently() {
        let a = hash_password("hunter2hunter2", PasswordCost::INSECURE_FOR_TESTS);
        let b = hash_password("hunter2hunter2", PasswordCost::INSECURE_FOR_TESTS);
        assert_ne!(a, b);
    }

    #[test]
    fn default_cost_is_argon2id_owasp() {
        let hash = hash_password("correct horse battery", PasswordCost::default());
        assert!(
            hash.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.0
        );
        assert!(verify_password("correct horse battery", &hash));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = BearerToken::generate();
        let b = BearerToken::generate();
        assert_ne!(a, b);
        assert!(looks_like_token(a.expose_secret()));
        assert_eq!(a.hash(), token_hash(a.expose_secret()));
        assert_ne!(a.hash(), b.hash());
        assert_eq!(format!("{a:?}"), "BearerToken(<redacted>)");
        assert!(!looks_like_token(&a.expose_secret().to_uppercase()));
        assert!(!looks_like_token(&a.expose_secret()[1..]));
    }
}
