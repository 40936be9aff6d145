//! Reading a request: its id, its bearer token, and its body under the size cap and the
//! content type check.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::header::{self, HeaderMap, HeaderValue};

use crate::error::ApiError;

/// The most a body buffer reserves before its bytes arrive.
const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

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
