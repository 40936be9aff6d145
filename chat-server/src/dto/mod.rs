//! What goes over the wire: request bodies, read from JSON objects field by field so that
//! every error names its field, and response objects, which carry only what the contract
//! shows (never a password hash, a sealed key or an owner id the contract does not list).
//! A request field that carries a password or an API key is a [`SecretText`], which prints as
//! `<redacted>`, so every request type can derive `Debug`.
//!
//! The OpenAPI document is derived from these same types.

mod fields;
mod requests;
mod responses;
mod secret;
#[cfg(test)]
mod tests;

pub(crate) use fields::{Fields, FromFields};
pub use requests::*;
pub use responses::*;
pub use secret::SecretText;
