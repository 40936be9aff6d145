//! The one place where errors become HTTP responses.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt::Write as _;

use chat_core::{Error as CoreError, Forbidden, ValidationError};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode, Version};
use serde::Serialize;
use utoipa::ToSchema;

/// The machine-readable kind of an error, as the error body spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the input is malformed or breaks a rule.
    InvalidInput,
    /// 401: the token or the credentials are missing or wrong.
    Unauthorized,
    /// 403: the caller may not do this.
    Forbidden,
    /// 404: no such path, or no such object visible to the caller.
    NotFound,
    /// 405: the path exists under other methods (listed in `Allow`).
    MethodNotAllowed,
    /// 409: the object clashes with an existing one.
    Conflict,
    /// 413: the body is larger than the server accepts.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 429: too many attempts (a locked username, or a client address over its limit).
    RateLimited,
    /// 500: the server failed; the details are in its log.
    Internal,
    /// 503: the store does not answer, or the request took too long.
    Unavailable,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The details of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The kind of error.
    pub code: ErrorCode,
    /// A sentence for a human.
    pub message: String,
    /// The input field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The id of the request, as in the `X-Request-Id` header and the server's log.
    pub request_id: String,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The service said no, or failed.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// No route has this path.
    #[error("no such path")]
    NoRoute,
    /// The path exists under other methods.
    #[error("method not allowed")]
    MethodNotAllowed { allow: HeaderValue },
    /// The body is over the cap.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body is not declared as JSON.
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// The body is not a JSON object.
    #[error("{0}")]
    BadBody(Cow<'static, str>),
    /// An object in the body has the same key twice: the body's own `field`, or
    /// `nested_key` in an object inside that field.
    #[error("{}", duplicate_key_message(field, nested_key.as_deref()))]
    DuplicateKey {
        field: String,
        nested_key: Option<String>,
    },
    /// The client went away or broke the framing while sending the body.
    #[error("the request body could not be read")]
    BodyRead(#[source] Box<dyn StdError + Send + Sync>),
    /// The request ran past the server's request timeout.
    #[error("the request took too long")]
    Timeout,
    /// Too many login failures or registrations; retry after this many seconds.
    #[error("too many attempts; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u32 },
    /// The store cannot serve (readiness); the message says why.
    #[error("the store is not ready: {0}")]
    Unavailable(#[source] CoreError),
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Core(CoreError::Invalid(e))
    }
}

impl From<crate::throttle::Limited> for ApiError {
    fn from(limited: crate::throttle::Limited) -> Self {
        ApiError::RateLimited {
            retry_after_secs: limited.retry_after_secs(),
        }
    }
}

impl ApiError {
    fn parts(&self) -> (StatusCode, ErrorCode, Option<&str>) {
        use StatusCode as S;
        match self {
            ApiError::Core(e) => match e {
                CoreError::Invalid(v) => (S::BAD_REQUEST, ErrorCode::InvalidInput, Some(v.field)),
                CoreError::NotFound(_) => (S::NOT_FOUND, ErrorCode::NotFound, None),
                CoreError::Conflict { field, .. } => {
                    (S::CONFLICT, ErrorCode::Conflict, Some(field))
                }
                CoreError::Unauthorized => (S::UNAUTHORIZED, ErrorCode::Unauthorized, None),
                CoreError::Forbidden(Forbidden::OtherUser) => {
                    (S::FORBIDDEN, ErrorCode::Forbidden, Some("user_id"))
                }
                CoreError::Forbidden(_) => (S::FORBIDDEN, ErrorCode::Forbidden, None),
                CoreError::Unavailable { .. } => {
                    (S::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, None)
                }
                _ => (S::INTERNAL_SERVER_ERROR, ErrorCode::Internal, None),
            },
            ApiError::NoRoute => (S::NOT_FOUND, ErrorCode::NotFound, None),
            ApiError::MethodNotAllowed { .. } => {
                (S::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed, None)
            }
            ApiError::PayloadTooLarge { .. } => {
                (S::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge, None)
            }
            ApiError::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                None,
            ),
            ApiError::BadBody(_) | ApiError::BodyRead(_) => {
                (S::BAD_REQUEST, ErrorCode::InvalidInput, None)
            }
            ApiError::DuplicateKey { field, .. } => {
                (S::BAD_REQUEST, ErrorCode::InvalidInput, Some(field))
            }
            ApiError::RateLimited { .. } => (S::TOO_MANY_REQUESTS, ErrorCode::RateLimited, None),
            ApiError::Timeout | ApiError::Unavailable(_) => {
                (S::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, None)
            }
        }
    }

    /// For a store that cannot serve now or a throttled attempt, how long a client should
    /// wait before retrying.
    fn retry_after(&self) -> Option<u32> {
        match self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Core(CoreError::Unavailable { reason, .. })
            | ApiError::Unavailable(CoreError::Unavailable { reason, .. }) => {
                Some(reason.retry_after_secs())
            }
            _ => None,
        }
    }

    /// The response for this error. Server-side failures are logged here with their whole
    /// source chain, and answered with a bare message so nothing internal leaks.
    pub(crate) fn into_response(
        self,
        request_id: &str,
        version: Version,
    ) -> Response<crate::response::Body> {
        let (status, code, field) = self.parts();
        let field = field.map(str::to_owned);
        let message = if code == ErrorCode::Internal {
            tracing::error!(request_id, error = %chain(&self), "request failed");
            "internal server error".to_owned()
        } else {
            if code == ErrorCode::Unavailable {
                tracing::warn!(request_id, error = %chain(&self), "unavailable");
            }
            self.to_string()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                field,
                request_id: request_id.to_owned(),
            },
        };
        let mut response = crate::response::json(status, &body);
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        match self {
            ApiError::Core(CoreError::Unauthorized) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, allow);
            }
            // The rest of the body may still be on the wire; closing is cheaper than reading
            // it. HTTP/2 has no Connection header: dropping the body resets the stream instead.
            ApiError::PayloadTooLarge { .. } | ApiError::Timeout if version < Version::HTTP_2 => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

fn duplicate_key_message(field: &str, nested_key: Option<&str>) -> String {
    match nested_key {
        None => format!("the field {field:?} appears twice"),
        Some(key) => format!("the field {field:?} holds an object with the key {key:?} twice"),
    }
}

/// An error and all its sources on one line, for the log.
pub(crate) fn chain(error: &dyn StdError) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let _ = write!(out, ": {e}");
        source = e.source();
    }
    out
}
