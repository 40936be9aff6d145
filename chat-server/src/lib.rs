#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod app;
pub mod cli;
pub mod commands;
mod dto;
mod error;
mod export;
mod handlers;
pub mod keyfile;
pub mod metrics;
mod openapi;
mod params;
mod request;
mod response;
mod route;
mod router;
mod routes;
pub mod store_url;
mod throttle;
pub mod upstream;

pub use app::{App, AppConfig, app, app_with_llm, serve};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use openapi::document as openapi_document;
pub use response::Body as ResponseBody;
pub use throttle::{MAX_RETRY_AFTER_SECS, Rate, Throttle, ThrottleConfig};

/// An error and all its sources on one line, for logs.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    error::chain(error)
}

/// Every route the server answers, as `(method, path template)`, for tests and tools.
#[must_use]
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    routes::ROUTES
        .iter()
        .map(|route| (route.method.as_str(), route.path))
        .collect()
}
