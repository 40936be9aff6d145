//! Sealing provider API keys.
//!
//! An API key is stored only as a [`SealedKey`]: XChaCha20-Poly1305 under a 256-bit
//! [`MasterKey`], with a fresh random 192-bit nonce per seal and the owning user's and
//! provider's ids as associated data, so a ciphertext copied to another row does not open.
//! The first byte names the master key's version, so keys can be rotated: a [`Sealer`] seals
//! under its current key and opens anything sealed under a key it still holds.
//!
//! Layout: `version (1) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`.

use std::collections::BTreeMap;
use std::fmt;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::ids::{ProviderId, UserId};
use crate::validation::ApiKey;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const AAD_LABEL: &[u8] = b"chat-store/api-key";

/// A 256-bit master key. Wiped from memory when dropped; never printed.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

/// Why a master key could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a master key must be 64 hexadecimal characters (256 bits)")]
pub struct InvalidMasterKey;

impl MasterKey {
    /// A new random key from the operating system's generator.
    #[must_use]
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        Self(key.into())
    }

    /// The key from its raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads 64 hexadecimal characters (surrounding whitespace ignored, so a key file may
    /// end in a newline).
    pub fn from_hex(s: &str) -> Result<Self, InvalidMasterKey> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut bytes).map_err(|_| InvalidMasterKey)?;
        Ok(Self(bytes))
    }

    /// The key as 64 lowercase hexadecimal characters, for writing a key file.
    #[must_use]
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// An API key sealed by a [`Sealer`]: safe to store, useless without the master key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedKey(pub Vec<u8>);

impl SealedKey {
    /// The version of the master key it was sealed under.
    #[must_use]
    pub fn key_version(&self) -> Option<u8> {
        self.0.first().copied()
    }
}

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedKey({} bytes)", self.0.len())
    }
}

/// Seals and opens API keys under a set of versioned master keys.
///
/// ```
/// use chat_core::{ApiKey, MasterKey, ProviderId, Sealer, UserId};
///
/// let sealer = Sealer::new(1, MasterKey::generate());
/// let (user, provider) = (UserId::new(), ProviderId::new());
/// let key = ApiKey::parse("sk-0123456789abcdef").unwrap();
///
/// let sealed = sealer.seal(user, provider, &key);
/// assert_eq!(sealer.open(user, provider, &sealed).unwrap(), key);
/// // Bound to its row: another user's row does not open it.
/// assert!(sealer.open(UserId::new(), provider, &sealed).is_err());
/// ```
#[derive(Clone)]
pub struct Sealer {
    current: u8,
    keys: BTreeMap<u8, XChaCha20Poly1305>,
}

impl Sealer {
    /// A sealer that seals under `key`, known as `version`.
    #[must_use]
    pub fn new(version: u8, key: MasterKey) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(version, XChaCha20Poly1305::new(&key.0.into()));
        Self {
            current: version,
            keys,
        }
    }

    /// Also opens keys sealed under an older `key` known as `version`, during a rotation.
    #[must_use]
    pub fn with_previous(mut self, version: u8, key: MasterKey) -> Self {
        self.keys
            .entry(version)
            .or_insert_with(|| XChaCha20Poly1305::new(&key.0.into()));
        self
    }

    /// Seals `key` for the config of `user` and `provider`.
    #[must_use]
    pub fn seal(&self, user: UserId, provider: ProviderId, key: &ApiKey) -> SealedKey {
        let cipher = &self.keys[&self.current];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(self.current, user, provider);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: key.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for inputs below 256 GiB");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(self.current);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        SealedKey(sealed)
    }

    /// Opens a key sealed for `user` and `provider`.
    ///
    /// Fails with [`Error::Unseal`] if the key version is unknown, the bytes were altered,
    /// or they were sealed for another user or provider.
    pub fn open(&self, user: UserId, provider: ProviderId, sealed: &SealedKey) -> Result<ApiKey> {
        let bytes = &sealed.0;
        if bytes.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(Error::Unseal);
        }
        let version = bytes[0];
        let cipher = self.keys.get(&version).ok_or(Error::Unseal)?;
        let nonce = XNonce::from_slice(&bytes[1..=NONCE_LEN]);
        let aad = associated_data(version, user, provider);
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(
                    nonce,
                    Payload {
                        msg: &bytes[1 + NONCE_LEN..],
                        aad: &aad,
                    },
                )
                .map_err(|_| Error::Unseal)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| Error::Unseal)?;
        ApiKey::parse(text).map_err(|_| Error::Unseal)
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &self.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Binds a ciphertext to its format, key version and row.
fn associated_data(version: u8, user: UserId, provider: ProviderId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 1 + 32);
    aad.extend_from_slice(AAD_LABEL);
    aad.push(version);
    aad.extend_from_slice(&user.to_bytes());
    aad.extend_from_slice(&provider.to_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiKey {
        ApiKey::parse("sk-test-abcdefghijklmnop").unwrap()
    }

    #[test]
    fn round_trip() {
        let sealer = Sealer::new(1, MasterKey::generate());
        let (u, p) = (UserId::new(), ProviderId::new());
        let sealed = sealer.seal(u, p, &key());
        assert_eq!(sealed.key_version(), Some(1));
        assert_eq!(
            sealer.open(u, p, &sealed).unwrap().expose_secret(),
            key().expose_secret()
        );
        let plain = key().expose_secret().as_bytes().to_vec();
        assert!(
            !sealed.0.windows(plain.len()).any(|w| w == plain),
            "plaintext must not appear"
        );
    }

    #[test]
    fn two_seals_of_one_key_differ() {
        let sealer = Sealer::new(1, MasterKey::generate());
        let (u, p) = (UserId::new(), ProviderId::new());
        assert_ne!(sealer.seal(u, p, &key()), sealer.seal(u, p, &key()));
    }

    #[test]
    fn every_tampered_byte_fails() {
        let sealer = Sealer::new(1, MasterKey::generate());
        let (u, p) = (UserId::new(), ProviderId::new());
        let sealed = sealer.seal(u, p, &key());
        for i in 0..sealed.0.len() {
            let mut bad = sealed.clone();
            bad.0[i] ^= 0x01;
            assert!(
                matches!(sealer.open(u, p, &bad), Err(Error::Unseal)),
                "byte {i}"
            );
        }
        let mut short = sealed.clone();
        short.0.truncate(10);
        assert!(matches!(sealer.open(u, p, &short), Err(Error::Unseal)));
        assert!(matches!(
            sealer.open(u, p, &SealedKey(Vec::new())),
            Err(Error::Unseal)
        ));
    }

    #[test]
    fn swapped_ids_fail() {
        let sealer = Sealer::new(1, MasterKey::generate());
        let (u, p) = (UserId::new(), ProviderId::new());
        let sealed = sealer.seal(u, p, &key());
        assert!(sealer.open(UserId::new(), p, &sealed).is_err());
        assert!(sealer.open(u, ProviderId::new(), &sealed).is_err());
        // The same bytes with the roles of the two ids exchanged must not open either.
        let swapped = (
            UserId::from_uuid(*p.as_uuid()),
            ProviderId::from_uuid(*u.as_uuid()),
        );
        assert!(sealer.open(swapped.0, swapped.1, &sealed).is_err());
    }

    #[test]
    fn wrong_master_key_fails() {
        let (u, p) = (UserId::new(), ProviderId::new());
        let sealed = Sealer::new(1, MasterKey::generate()).seal(u, p, &key());
        assert!(
            Sealer::new(1, MasterKey::generate())
                .open(u, p, &sealed)
                .is_err()
        );
    }

    #[test]
    fn rotation_opens_old_and_seals_new() {
        let old = MasterKey::generate();
        let (u, p) = (UserId::new(), ProviderId::new());
        let sealed_old = Sealer::new(1, old.clone()).seal(u, p, &key());
        let rotated = Sealer::new(2, MasterKey::generate()).with_previous(1, old);
        assert_eq!(rotated.open(u, p, &sealed_old).unwrap(), key());
        assert_eq!(rotated.seal(u, p, &key()).key_version(), Some(2));
    }

    #[test]
    fn master_key_hex() {
        let k = MasterKey::generate();
        let hex = k.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(MasterKey::from_hex(&format!("{}\n", *hex)).is_ok());
        assert!(matches!(MasterKey::from_hex("abcd"), Err(InvalidMasterKey)));
        assert!(MasterKey::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{k:?}"), "MasterKey(<redacted>)");
    }
}
