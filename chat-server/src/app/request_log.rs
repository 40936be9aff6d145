//! The one log line of every request: request id, method, route template, status, latency.

use std::time::Instant;

use hyper::Method;

/// The status logged for a request whose client went away before it was answered; the
/// client never sees it. nginx's "client closed request", which log tools know.
pub(super) const CLIENT_WENT_AWAY: u16 = 499;

/// A request's log line, written once: by [`RequestLog::finish`] with the status sent, or,
/// if the request is dropped unanswered (its client disconnected or reset the stream), when
/// it is dropped, with [`CLIENT_WENT_AWAY`].
pub(super) struct RequestLog {
    id: String,
    method: Method,
    route: &'static str,
    started: Instant,
    written: bool,
}

impl RequestLog {
    /// The line of a request that starts now, for `route` (its template, `-` for none).
    pub(super) fn start(id: String, method: Method, route: &'static str) -> Self {
        Self {
            id,
            method,
            route,
            started: Instant::now(),
            written: false,
        }
    }

    /// The request's id.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Writes the line with the status answered.
    pub(super) fn finish(mut self, status: u16) {
        self.write(status);
    }

    fn write(&mut self, status: u16) {
        self.written = true;
        let took = self.started.elapsed();
        tracing::info!(
            request_id = %self.id,
            method = %self.method,
            route = self.route,
            status,
            latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            "request"
        );
        // Counted where it is logged, so the two always agree, 499s included.
        let route = (self.route != "-").then_some(self.route);
        crate::metrics::request(&self.method, route, status, took);
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        if !self.written {
            self.write(CLIENT_WENT_AWAY);
        }
    }
}
