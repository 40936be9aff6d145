//! What `GET /metrics` shows, in the Prometheus text format: requests by method, route
//! template and status, request latency by route, store operation latency by operation, and
//! open connections.
//!
//! Everything is recorded through the [`metrics`] facade into one Prometheus recorder per
//! process, installed by the first [`App`](crate::App) built (or by [`install`]), so that
//! other parts of the process (the completions' `chat_completions_total`, an embedding
//! application's own) land in the same page. Several `App`s in one process (tests, an
//! application serving two ports) therefore share it: the figures are the process's.
//!
//! Labels never carry user data: a method outside the standard ones is `OTHER`, a path
//! that matches no route is `unmatched`, and routes are their templates
//! (`/chat/conversations/{id}`), never the ids in them.

pub mod store;

use std::sync::OnceLock;
use std::time::Duration;

use hyper::Method;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: requests answered, by `method`, `route` and `status`.
pub const REQUESTS: &str = "http_requests_total";
/// Histogram: seconds from the request head to the answer, by `method` and `route`.
pub const REQUEST_DURATION: &str = "http_request_duration_seconds";
/// Histogram: seconds a store operation took, by `operation` and `outcome` (`ok`, `error`).
pub const STORE_DURATION: &str = "store_operation_duration_seconds";
/// Gauge: connections open now.
pub const CONNECTIONS: &str = "http_connections_open";

/// The route label of a path that matches no route.
pub const UNMATCHED: &str = "unmatched";

/// Bucket bounds in seconds, from a cached read to a slow write or an upstream call.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's Prometheus recorder as the [`metrics`] facade's global recorder,
/// once; later calls answer the same handle. `None` when the process had already installed
/// a recorder of its own (an embedding application's): `/metrics` is then empty, and that
/// recorder gets the figures.
pub fn install() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .ok()?;
            let handle = recorder.handle();
            ::metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    ::metrics::describe_counter!(REQUESTS, "Requests answered, by method, route and status.");
    ::metrics::describe_histogram!(
        REQUEST_DURATION,
        ::metrics::Unit::Seconds,
        "Time from the request head to the answer, by method and route."
    );
    ::metrics::describe_histogram!(
        STORE_DURATION,
        ::metrics::Unit::Seconds,
        "Time a store operation took, by operation and outcome."
    );
    ::metrics::describe_gauge!(CONNECTIONS, "Connections open now.");
}

/// The page `GET /metrics` answers.
#[must_use]
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// Drains the histograms' samples into their buckets; the serve loop runs it now and then
/// so memory does not grow between scrapes.
pub(crate) fn upkeep() {
    if let Some(handle) = install() {
        handle.run_upkeep();
    }
}

/// The method as a label: the standard ones by name, anything else `OTHER`, so a client
/// cannot create label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Counts one answered request and its latency. `route` is the matched template, `None`
/// for a path no route has.
pub(crate) fn request(method: &Method, route: Option<&'static str>, status: u16, took: Duration) {
    let method = method_label(method);
    let route = route.unwrap_or(UNMATCHED);
    ::metrics::counter!(REQUESTS, "method" => method, "route" => route, "status" => status.to_string())
        .increment(1);
    ::metrics::histogram!(REQUEST_DURATION, "method" => method, "route" => route)
        .record(took.as_secs_f64());
}

/// A connection opened; the gauge goes down when the returned guard is dropped.
pub(crate) fn connection_opened() -> ConnectionGauge {
    ::metrics::gauge!(CONNECTIONS).increment(1.0);
    ConnectionGauge(())
}

/// Held for as long as a connection is open.
#[derive(Debug)]
pub(crate) struct ConnectionGauge(());

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        ::metrics::gauge!(CONNECTIONS).decrement(1.0);
    }
}
