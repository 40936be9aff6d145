//! Reading a request body as a JSON object, field by field: each field is taken by name and
//! checked for its JSON type, so a failure names the field.

use std::str::FromStr;

use chat_core::ValidationError;
use chat_core::validation::Rule;
use serde_json::{Map, Value};

use super::SecretText;
use crate::error::ApiError;

/// A request body read from a JSON object.
pub(crate) trait FromFields: Sized {
    /// Takes the fields in the order the contract lists them, so the first at fault is
    /// reported.
    fn from_fields(fields: &mut Fields) -> Result<Self, ValidationError>;
}

const MUST_BE_STRING: Rule = Rule::Other("must be a string");

/// The fields of a JSON object body, taken out one by one. `null` reads as absent, and
/// fields nobody asks for are ignored.
pub(crate) struct Fields(Map<String, Value>);

impl Fields {
    /// Parses a body that must be a JSON object.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadBody(
                "the request body must be a JSON object".into(),
            ));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::BadBody(
                "the request body must be a JSON object".into(),
            )),
            // serde_json's message names only a line and column of the client's own text.
            Err(e) => Err(ApiError::BadBody(format!("malformed JSON: {e}").into())),
        }
    }

    /// Parses `body` as a JSON object and reads it as `T`.
    pub(crate) fn read<T: FromFields>(body: &[u8]) -> Result<T, ApiError> {
        Ok(T::from_fields(&mut Self::parse(body)?)?)
    }

    /// A field's value, `null` being absent.
    pub(crate) fn value(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name).filter(|v| !v.is_null())
    }

    /// An optional string field.
    pub(crate) fn opt_str(
        &mut self,
        name: &'static str,
    ) -> Result<Option<String>, ValidationError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ValidationError::new(name, MUST_BE_STRING)),
        }
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

    /// An optional id field, in the lower-case hyphenated UUID form.
    pub(crate) fn opt_id<T: FromStr>(
        &mut self,
        name: &'static str,
    ) -> Result<Option<T>, ValidationError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| ValidationError::new(name, Rule::Uuid)),
            Some(_) => Err(ValidationError::new(name, Rule::Uuid)),
        }
    }

    /// A required id field.
    pub(crate) fn id<T: FromStr>(&mut self, name: &'static str) -> Result<T, ValidationError> {
        self.opt_id(name)?
            .ok_or(ValidationError::new(name, Rule::Required))
    }
}
