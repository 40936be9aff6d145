//! Small HTTP helpers: responses, request ids, the capped body reader, JSON fields and
//! query strings.

use std::str::FromStr;

use bytes::{Bytes, BytesMut};
use chat_core::validation::Rule;
use chat_core::{Limit, ValidationError};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The most a body buffer reserves before its bytes arrive.
const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A JSON response.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    // Our DTOs have string keys and no failing Serialize impls, so this cannot fail; an
    // empty object is still valid JSON should it ever do so.
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

/// A response with no body.
pub(crate) fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// The client's request id when it is 1..=128 characters of `[A-Za-z0-9._-]`, else a new one.
pub(crate) fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(value) = headers.get("x-request-id") {
        let bytes = value.as_bytes();
        if (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return value.clone();
        }
    }
    let id = uuid::Uuid::now_v7();
    let mut buf = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The bearer token of the `Authorization` header, if it has that shape.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Reads a body of at most `limit` bytes. A declared length over the cap is refused before
/// anything is read; a chunked body is counted frame by frame and refused as soon as it
/// crosses the cap, so the excess is never buffered.
pub(crate) async fn read_body<B>(
    headers: &HeaderMap,
    mut body: B,
    limit: usize,
) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    // The declared size is only a hint for the first allocation, and a bounded one: a client
    // that declares a megabyte and sends nothing must not hold a megabyte per connection.
    let mut buf = BytesMut::with_capacity(
        declared
            .map_or(0, |n| n as usize)
            .min(INITIAL_BODY_CAPACITY)
            .min(limit),
    );
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::BodyRead(e.into()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// `Ok` for a missing content type or `application/json` with any parameters.
pub(crate) fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let value = value.to_str().map_err(|_| ApiError::UnsupportedMediaType)?;
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
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

    /// An optional id field, in the hyphenated UUID form.
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

/// A path parameter that must be an id.
pub(crate) fn path_id<T: FromStr>(value: &str, name: &'static str) -> Result<T, ValidationError> {
    value
        .parse()
        .map_err(|_| ValidationError::new(name, Rule::Uuid))
}

/// The query parameters a list understands; each may appear once.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub(crate) limit: Option<String>,
    pub(crate) before: Option<String>,
    pub(crate) after: Option<String>,
    pub(crate) order: Option<String>,
}

impl Query {
    /// Parses a query string. Parameters this server does not know are ignored; a known one
    /// given twice is an error, since which of the two was meant cannot be known.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, ValidationError> {
        let mut out = Query::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let (slot, name) = match &*key {
                "limit" => (&mut out.limit, "limit"),
                "before" => (&mut out.before, "before"),
                "after" => (&mut out.after, "after"),
                "order" => (&mut out.order, "order"),
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(ValidationError::new(
                    name,
                    Rule::Other("must be given at most once"),
                ));
            }
        }
        Ok(out)
    }

    /// The page size; absent is the default.
    pub(crate) fn limit(&self) -> Result<Limit, ValidationError> {
        self.limit
            .as_deref()
            .map_or(Ok(Limit::DEFAULT), Limit::parse)
    }

    /// Refuses a cursor parameter this list does not take.
    pub(crate) fn forbid(
        value: &Option<String>,
        name: &'static str,
        why: &'static str,
    ) -> Result<(), ValidationError> {
        match value {
            Some(_) => Err(ValidationError::new(name, Rule::Other(why))),
            None => Ok(()),
        }
    }
}

/// A cursor that must be an id.
pub(crate) fn cursor_id<T: FromStr>(
    value: Option<&str>,
    name: &'static str,
) -> Result<Option<T>, ValidationError> {
    value.map(|v| path_id(v, name)).transpose()
}

/// A cursor that must be a message position.
pub(crate) fn cursor_seq(
    value: Option<&str>,
    name: &'static str,
) -> Result<Option<u64>, ValidationError> {
    value
        .map(|v| {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ValidationError::new(
                    name,
                    Rule::Range {
                        min: 0,
                        max: u64::MAX,
                    },
                ));
            }
            v.parse().map_err(|_| {
                ValidationError::new(
                    name,
                    Rule::Range {
                        min: 0,
                        max: u64::MAX,
                    },
                )
            })
        })
        .transpose()
}
