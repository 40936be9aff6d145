//! `GET /chat/export`: everything of the caller's as NDJSON, streamed as it is read.

use chat_core::{BoxError, Caller};
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};

use super::{Ctx, Reply};

/// Streams the caller's export. A store that cannot serve is answered with the usual error
/// before anything is sent; one that fails midway ends the body early (the connection is
/// cut without the body's proper end), so a client cannot take a partial export for whole.
pub(crate) async fn export(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    ctx.service.me(caller).await?;
    let lines = crate::export::lines(ctx.service.clone(), *caller);
    let frames = futures_util::stream::unfold(lines, |mut lines| async move {
        let line = lines.recv().await?;
        let frame = line.map(Frame::data).map_err(|e| {
            tracing::warn!(error = %crate::error::chain(&e), "export ended early");
            BoxError::from(e)
        });
        Some((frame, lines))
    });
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}
