//! For operators and tools: liveness, readiness and the OpenAPI document.

use http_body_util::Full;
use hyper::Response;
use hyper::header::{self, HeaderValue};

use super::reply::ok;
use super::{Ctx, Reply};
use crate::dto::Health;
use crate::error::ApiError;

/// Answers as long as the process does.
pub(crate) async fn healthz(_ctx: Ctx<'_>) -> Reply {
    ok(&Health { status: "ok" })
}

/// Answers only when the store does.
pub(crate) async fn readyz(ctx: Ctx<'_>) -> Reply {
    ctx.service.ping().await.map_err(ApiError::Unavailable)?;
    ok(&Health { status: "ok" })
}

/// The OpenAPI document, serialized once when the application was built.
pub(crate) async fn open_api(ctx: Ctx<'_>) -> Reply {
    let mut response = Response::new(Full::new(ctx.openapi.clone()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
