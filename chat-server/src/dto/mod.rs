//! What goes over the wire: request bodies, read from JSON objects field by field so that
//! every error names its field, and response objects, which carry only what the contract
//! shows (never a password hash, a sealed key or an owner id the contract does not list).
//!
//! The OpenAPI document is derived from these same types.

mod fields;
mod requests;
mod responses;

pub(crate) use fields::{Fields, FromFields};
pub use requests::*;
pub use responses::*;
