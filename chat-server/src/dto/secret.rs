//! The text of a request field that carries a secret, as the client sent it.

use std::fmt;

use zeroize::Zeroizing;

/// A password or API key from a request body, before validation: printed as `<redacted>`,
/// never serialized, and wiped from memory when dropped, so a request type that holds one
/// can derive `Debug` without a `debug!(?request)` putting the secret in the log.
///
/// It holds the text unvalidated because validation belongs to chat-core (`Password`,
/// `ApiKey`) in the order the contract names fields, and a login must not validate its
/// password at all: a password that could never have been set is simply a wrong one (401).
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    /// Takes over `text` without copying it.
    pub(crate) fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The secret, for validating, hashing or sealing it.
    pub(crate) fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
