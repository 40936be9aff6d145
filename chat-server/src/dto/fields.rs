//! Reading a request body as a JSON object, field by field: each field is taken by name and
//! checked for its JSON type, so a failure names the field.
//!
//! The body is checked as text first ([`chat_core::validation::json::check`]): an object
//! with the same key twice, at any depth, is ambiguous and refused, naming the top-level
//! field it is in. Each field is then kept as its own JSON text, so a field that is stored
//! as sent (a message's metadata) reaches the service exactly as the client spelt it.

use std::collections::HashMap;
use std::str::FromStr;

use chat_core::ValidationError;
use chat_core::validation::Rule;
use chat_core::validation::json::{self, JsonTextError};
use serde_json::value::RawValue;

use super::SecretText;
use crate::error::ApiError;

/// A request body read from a JSON object.
pub(crate) trait FromFields: Sized {
    /// Takes the fields in the order the contract lists them, so the first at fault is
    /// reported.
    fn from_fields(fields: &mut Fields) -> Result<Self, ValidationError>;
}

const MUST_BE_STRING: Rule = Rule::Other("must be a string");
const NOT_AN_OBJECT: &str = "the request body must be a JSON object";

/// The fields of a JSON object body, each as its JSON text, taken out one by one. `null`
/// reads as absent, and fields nobody asks for are ignored.
pub(crate) struct Fields(HashMap<String, Box<RawValue>>);

impl Fields {
    /// Parses a body that must be a JSON object with no key twice in any of its objects.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadBody(NOT_AN_OBJECT.into()));
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::BadBody("malformed JSON: the body is not UTF-8".into()))?;
        // The messages of these errors name only a line and column of the client's own text,
        // or a key the client sent.
        let facts = json::check(text).map_err(|e| match e {
            JsonTextError::DuplicateKey {
                key,
                member: Some(field),
                depth,
            } => ApiError::DuplicateKey {
                field,
                nested_key: (depth > 1).then_some(key),
            },
            JsonTextError::DuplicateKey { member: None, .. } => {
                ApiError::BadBody(NOT_AN_OBJECT.into())
            }
            other => ApiError::BadBody(other.to_string().into()),
        })?;
        if !facts.is_object {
            return Err(ApiError::BadBody(NOT_AN_OBJECT.into()));
        }
        serde_json::from_str(text)
            .map(Self)
            .map_err(|e| ApiError::BadBody(format!("malformed JSON: {e}").into()))
    }

    /// Parses `body` as a JSON object and reads it as `T`.
    pub(crate) fn read<T: FromFields>(body: &[u8]) -> Result<T, ApiError> {
        Ok(T::from_fields(&mut Self::parse(body)?)?)
    }

    /// A field's JSON text as the client sent it, `null` being absent.
    pub(crate) fn raw(&mut self, name: &str) -> Option<Box<RawValue>> {
        self.0.remove(name).filter(|v| v.get() != "null")
    }

    /// An optional string field.
    pub(crate) fn opt_str(
        &mut self,
        name: &'static str,
    ) -> Result<Option<String>, ValidationError> {
        self.raw(name)
            .map(|raw| {
                serde_json::from_str(raw.get())
                    .map_err(|_| ValidationError::new(name, MUST_BE_STRING))
            })
            .transpose()
    }

    /// A required string field.
    pub(crate) fn str(&mut self, name: &'static str) -> Result<String, ValidationError> {
        self.opt_str(name)?
            .ok_or(ValidationError::new(name, Rule::Required))
    }

    /// A required string field that carries a secret.
    pub(crate) fn secret(&mut self, name: &'static str) -> Result<SecretText, ValidationError> {
        self.str(name).map(SecretText::new)
    }

    /// An optional field of another JSON type (a number, a boolean); a value of the wrong
    /// type breaks `rule`.
    pub(crate) fn opt_value<T: serde::de::DeserializeOwned>(
        &mut self,
        name: &'static str,
        rule: Rule,
    ) -> Result<Option<T>, ValidationError> {
        self.raw(name)
            .map(|raw| {
                serde_json::from_str(raw.get()).map_err(|_| ValidationError::new(name, rule))
            })
            .transpose()
    }

    /// An optional id field, in the lower-case hyphenated UUID form.
    pub(crate) fn opt_id<T: FromStr>(
        &mut self,
        name: &'static str,
    ) -> Result<Option<T>, ValidationError> {
        let not_an_id = || ValidationError::new(name, Rule::Uuid);
        self.raw(name)
            .map(|raw| {
                serde_json::from_str::<String>(raw.get())
                    .map_err(|_| not_an_id())?
                    .parse()
                    .map_err(|_| not_an_id())
            })
            .transpose()
    }

    /// A required id field.
    pub(crate) fn id<T: FromStr>(&mut self, name: &'static str) -> Result<T, ValidationError> {
        self.opt_id(name)?
            .ok_or(ValidationError::new(name, Rule::Required))
    }
}
