//! Passwords and bearer tokens.
//!
//! Passwords are kept only as Argon2id hashes. Tokens are 256 random bits from the operating
//! system, shown to the client once and kept only as their SHA-256 hash, so a copy of the
//! database yields no usable token. A plain hash suffices for tokens (unlike passwords)
//! because they carry full entropy: there is nothing to guess.

use std::fmt;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::model::{PasswordHash, TokenHash};

mod pool;

pub(crate) use pool::HashingPool;

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

    fn params(self) -> Params {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None).unwrap_or_default()
    }
}

/// Argon2's working memory (one 1 KiB block per KiB of cost), kept between hashes so that a
/// thread doing hash after hash allocates it once instead of every time.
///
/// It keeps at most the memory of the cost it was made for; a stored hash made under a larger
/// cost is verified in memory allocated for that one hash.
pub struct HashMemory {
    blocks: Vec<Block>,
    keep: usize,
}

impl HashMemory {
    /// Memory for hashes of `cost`, allocated on first use.
    #[must_use]
    pub fn new(cost: PasswordCost) -> Self {
        Self {
            blocks: Vec::new(),
            keep: cost.params().block_count(),
        }
    }

    /// Runs `f` over `count` blocks.
    fn with<R>(&mut self, count: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        if count > self.keep {
            return f(&mut vec![Block::default(); count]);
        }
        if self.blocks.len() < count {
            self.blocks.resize(self.keep, Block::default());
        }
        f(&mut self.blocks[..count])
    }
}

impl fmt::Debug for HashMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashMemory")
            .field("allocated_blocks", &self.blocks.len())
            .field("keep", &self.keep)
            .finish()
    }
}

/// Hashes `password` with a fresh random salt. CPU- and memory-heavy: call it off the async
/// runtime's worker threads.
#[must_use]
pub fn hash_password(password: &str, cost: PasswordCost) -> PasswordHash {
    hash_password_in(password, cost, &mut HashMemory::new(cost))
}

/// [`hash_password`] in `memory`, which the next hash may reuse.
#[must_use]
pub fn hash_password_in(
    password: &str,
    cost: PasswordCost,
    memory: &mut HashMemory,
) -> PasswordHash {
    let params = cost.params();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let output = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .and_then(|salt| {
            argon2_output(
                Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone()),
                password,
                salt,
                Params::DEFAULT_OUTPUT_LEN,
                memory,
            )
        })
        .and_then(|hash| {
            Ok(argon2::PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params)?,
                salt: Some(salt.as_salt()),
                hash: Some(hash),
            }
            .to_string())
        })
        .expect("Argon2 hashing cannot fail with valid parameters and a generated salt");
    PasswordHash(output)
}

/// Whether `password` matches `hash`. The parameters come from the hash itself, so hashes
/// made under an older cost still verify. A malformed hash matches nothing.
#[must_use]
pub fn verify_password(password: &str, hash: &PasswordHash) -> bool {
    verify_password_in(
        password,
        hash,
        &mut HashMemory::new(PasswordCost::default()),
    )
}

/// [`verify_password`] in `memory`, which the next hash may reuse.
#[must_use]
pub fn verify_password_in(password: &str, hash: &PasswordHash, memory: &mut HashMemory) -> bool {
    matches(password, hash, memory).unwrap_or(false)
}

/// Whether `password` matches `hash`; an error for a hash that is not a usable Argon2 hash.
fn matches(
    password: &str,
    hash: &PasswordHash,
    memory: &mut HashMemory,
) -> argon2::password_hash::Result<bool> {
    let parsed = argon2::PasswordHash::new(&hash.0)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&parsed)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Ok(false);
    };
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = argon2_output(argon2, password, salt, expected.len(), memory)?;
    // `Output`'s equality takes the same time wherever the first difference is.
    Ok(computed == expected)
}

/// The raw Argon2 output of `len` bytes, computed in `memory`.
fn argon2_output(
    argon2: Argon2<'_>,
    password: &str,
    salt: &[u8],
    len: usize,
    memory: &mut HashMemory,
) -> argon2::password_hash::Result<Output> {
    let count = argon2.params().block_count();
    memory.with(count, |blocks| {
        Output::init_with(len, |out| {
            argon2
                .hash_password_into_with_memory(password.as_bytes(), salt, out, blocks)
                .map_err(argon2::password_hash::Error::from)
        })
    })
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
    fn hashes_agree_with_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let cost = PasswordCost {
            memory_kib: 64,
            iterations: 2,
            parallelism: 1,
        };
        let ours = hash_password("correct horse battery", cost);
        let parsed = argon2::PasswordHash::new(&ours.0).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, cost.params())
            .hash_password(b"correct horse battery", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(verify_password(
            "correct horse battery",
            &PasswordHash(theirs.clone())
        ));
        assert!(!verify_password(
            "correct horse batterY",
            &PasswordHash(theirs)
        ));
    }

    #[test]
    fn one_memory_serves_hash_after_hash_and_larger_old_hashes() {
        let small = PasswordCost::INSECURE_FOR_TESTS;
        let larger = PasswordCost {
            memory_kib: 256,
            ..small
        };
        let mut memory = HashMemory::new(small);
        let a = hash_password_in("first password", small, &mut memory);
        let b = hash_password_in("second password", small, &mut memory);
        let old = hash_password("made under a larger cost", larger);
        assert!(verify_password_in("first password", &a, &mut memory));
        assert!(verify_password_in("second password", &b, &mut memory));
        assert!(!verify_password_in("first password", &b, &mut memory));
        assert!(verify_password_in(
            "made under a larger cost",
            &old,
            &mut memory
        ));
        // The larger hash borrowed memory of its own: what is kept is the small cost's.
        assert_eq!(memory.blocks.len(), small.params().block_count());
        assert!(!verify_password_in(
            "x",
            &PasswordHash("$argon2id$v=19$m=8,t=1,p=1$bad".into()),
            &mut memory
        ));
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
