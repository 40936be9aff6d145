//! For operators and tools: liveness, readiness, metrics and the OpenAPI document.

use std::time::Duration;

use chat_core::Unavailable;
use hyper::Response;
use hyper::header::{self, HeaderValue};

use super::reply::ok;
use super::{Ctx, Reply};
use crate::dto::Health;
use crate::error::ApiError;
use crate::response::full;

/// Answers as long as the process does.
pub(crate) async fn healthz(_ctx: Ctx<'_>) -> Reply {
    ok(&Health { status: "ok" })
}

/// How long readiness waits for the store before it says not ready.
const READY_WITHIN: Duration = Duration::from_secs(2);

/// Answers 200 only when the store can serve reads and writes; otherwise 503 saying why
/// (out of space, unreachable), within two seconds.
pub(crate) async fn readyz(ctx: Ctx<'_>) -> Reply {
    match tokio::time::timeout(READY_WITHIN, ctx.service.ping()).await {
        Ok(answer) => answer.map_err(ApiError::Unavailable)?,
        Err(_) => {
            let backend = ctx.service.store().backend();
            let slow = chat_core::Error::unavailable(backend, Unavailable::Unreachable, Slow);
            return Err(ApiError::Unavailable(slow));
        }
    }
    ok(&Health { status: "ok" })
}

/// The store gave readiness no answer in time.
#[derive(Debug, thiserror::Error)]
#[error("the store did not answer within {READY_WITHIN:?}")]
struct Slow;

/// The process's metrics in the Prometheus text format (version 0.0.4).
pub(crate) async fn metrics(_ctx: Ctx<'_>) -> Reply {
    let mut response = Response::new(full(crate::metrics::render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// The OpenAPI document, serialized once when the application was built.
pub(crate) async fn open_api(ctx: Ctx<'_>) -> Reply {
    let mut response = Response::new(full(ctx.openapi.clone()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
