//! The streamed answer of a completion: server-sent events relayed from the running
//! completion, `delta` for each piece, then `message` (the stored reply) or `error`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use chat_core::completion::{Completion, CompletionEvent};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::dto::MessageOut;
use crate::error::ApiError;

/// 200 `text/event-stream`, beginning with `first`.
pub(super) fn response(
    first: CompletionEvent,
    completion: Completion,
    request_id: &str,
) -> Response<crate::response::Body> {
    let mut body = Events {
        pending: None,
        completion: Some(completion),
        request_id: request_id.to_owned(),
    };
    body.pending = Some(body.frame_of(first));
    let mut response = Response::new(body.map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies that buffer (nginx) would hold the pieces back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The body: each event of the completion as it comes.
struct Events {
    pending: Option<Bytes>,
    /// `None` once the last event is out.
    completion: Option<Completion>,
    request_id: String,
}

#[derive(Serialize)]
struct DeltaData<'a> {
    content: &'a str,
}

impl Events {
    fn frame_of(&mut self, event: CompletionEvent) -> Bytes {
        match event {
            CompletionEvent::Delta(text) => sse("delta", &DeltaData { content: &text }),
            CompletionEvent::Done(result) => {
                self.completion = None;
                match result {
                    Ok(message) => sse("message", &MessageOut::from(message)),
                    Err(e) => {
                        let (_, body) = ApiError::from(e).to_body(&self.request_id);
                        sse("error", &body)
                    }
                }
            }
        }
    }
}

/// One event. The data is compact JSON, which has no line breaks, so one `data:` line.
fn sse<T: Serialize>(event: &str, data: &T) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!("event: {event}\ndata: {json}\n\n"))
}

impl Body for Events {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(bytes) = this.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        let Some(completion) = this.completion.as_mut() else {
            return Poll::Ready(None);
        };
        match completion.poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(event)) => {
                let bytes = this.frame_of(event);
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(None) => {
                this.completion = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.completion.is_none()
    }
}
