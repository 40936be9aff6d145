//! A response body that holds something until it is dropped: the connection's "busy" mark,
//! so a connection streaming a long answer (a completion) counts as busy, not idle, until
//! the last byte is written, and the idle timeout cannot cut the stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::response::Body as ResponseBody;

/// `body`, holding `guard` for as long as it lives.
pub(super) struct Held<G> {
    body: ResponseBody,
    _guard: G,
}

impl<G> Held<G> {
    pub(super) fn new(body: ResponseBody, guard: G) -> Self {
        Self {
            body,
            _guard: guard,
        }
    }
}

impl<G: Unpin> Body for Held<G> {
    type Data = Bytes;
    type Error = chat_core::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
