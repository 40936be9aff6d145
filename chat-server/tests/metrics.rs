//! `GET /metrics`: the Prometheus text format, counters that move with the requests and
//! store operations made, and labels that never carry what a client sent.
//!
//! The recorder is the process's (tests of this file share it), so every check is on a
//! difference, or on labels this test alone creates.

mod common;

use chat_core::{ChatService, MasterKey, Sealer};
use chat_server::metrics::store::MeteredStore;
use chat_server::{AppConfig, app};
use common::{Backing, Kind, Server};
use prometheus_parse::{Scrape, Value};
use serde_json::json;

/// A server whose store is wrapped as `chat-server serve` wraps it.
async fn metered(backing: &Backing) -> Server {
    let store = MeteredStore::wrap(backing.open().await);
    let service = ChatService::new(
        store,
        Sealer::new(1, MasterKey::generate()),
        common::service_config(),
    );
    Server::start_app(app(service, AppConfig::default())).await
}

/// The page, checked line by line against the text format, and parsed.
async fn scrape(server: &Server) -> (String, Scrape) {
    let r = server.client().get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let content_type = r.header("content-type").unwrap_or_default().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = r.text();
    for line in text.lines() {
        assert!(
            well_formed(line),
            "not the Prometheus text format: {line:?}"
        );
    }
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    (text, scrape)
}

/// One line of the text format: blank, `# HELP name text`, `# TYPE name kind`, or a sample
/// `name{label="value",…} number`.
fn well_formed(line: &str) -> bool {
    fn name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    fn number(s: &str) -> bool {
        matches!(s, "+Inf" | "-Inf" | "NaN") || s.parse::<f64>().is_ok()
    }
    fn labels(mut s: &str) -> bool {
        while !s.is_empty() {
            let Some((key, rest)) = s.split_once("=\"") else {
                return false;
            };
            if !name(key) {
                return false;
            }
            // The value runs to the first quote that is not escaped.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in rest.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    '\n' => return false,
                    _ => {}
                }
            }
            let Some(end) = end else { return false };
            s = &rest[end + 1..];
            s = s.strip_prefix(',').unwrap_or(s);
        }
        true
    }
    if line.is_empty() {
        return true;
    }
    if let Some(help) = line.strip_prefix("# HELP ") {
        return help.split(' ').next().is_some_and(name);
    }
    if let Some(kind) = line.strip_prefix("# TYPE ") {
        let mut parts = kind.split(' ');
        return parts.next().is_some_and(name)
            && matches!(
                parts.next(),
                Some("counter" | "gauge" | "histogram" | "summary" | "untyped")
            )
            && parts.next().is_none();
    }
    let (series, value) = match line.rsplit_once(' ') {
        Some(split) => split,
        None => return false,
    };
    if !number(value) {
        return false;
    }
    match series.split_once('{') {
        Some((metric, rest)) => name(metric) && rest.strip_suffix('}').is_some_and(labels),
        None => name(series),
    }
}

/// The value of the sample `metric` whose labels include `want`, 0 when there is none.
fn value(scrape: &Scrape, metric: &str, want: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| want.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

/// Every value the `route` label takes on the page (read from the text: see above).
fn routes_labelled(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once("route=\"")?.1.split_once('"'))
        .map(|(route, _)| route)
        .collect()
}

async fn counters_move_and_labels_hold_no_user_data(kind: Kind) {
    let Some(backing) = Backing::new(kind) else {
        return;
    };
    let server = metered(&backing).await;
    let (_, before) = scrape(&server).await;
    let healthz = [("method", "GET"), ("route", "/healthz"), ("status", "200")];
    let healthz_before = value(&before, "http_requests_total", &healthz);
    let created_before = value(
        &before,
        "store_operation_duration_seconds_count",
        &[("operation", "create_conversation"), ("outcome", "ok")],
    );

    for _ in 0..3 {
        assert_eq!(server.client().get("/healthz").await.status, 200);
    }
    // A user, a conversation with a telling title, and a path no route has: none of it
    // may become a label value.
    let name = format!("metrics-{}", uuid::Uuid::now_v7().simple());
    let user = server.user(&name).await;
    let r = user
        .client
        .post("/chat/conversations", json!({"title": "secret-title"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let conversation = r.json()["id"].as_str().unwrap().to_owned();
    let r = user
        .client
        .get(&format!("/chat/conversations/{conversation}"))
        .await;
    assert_eq!(r.status, 200);
    let probe = format!("/no-such-{}", uuid::Uuid::now_v7().simple());
    assert_eq!(server.client().get(&probe).await.status, 404);
    let r = server.client().send("BREW", "/healthz", &[], None).await;
    assert_eq!(r.status, 405);

    let (text, after) = scrape(&server).await;
    assert!(value(&after, "http_requests_total", &healthz) >= healthz_before + 3.0);
    assert!(
        value(
            &after,
            "store_operation_duration_seconds_count",
            &[("operation", "create_conversation"), ("outcome", "ok")],
        ) >= created_before + 1.0,
        "{text}"
    );
    // prometheus-parse cuts a label value at a `}`, so a templated route is looked up in
    // the text (the exporter writes labels in the order they were given).
    assert!(
        text.contains(
            "http_request_duration_seconds_count{method=\"GET\",route=\"/chat/conversations/{id}\"}"
        ),
        "{text}"
    );
    assert!(
        value(
            &after,
            "http_requests_total",
            &[("route", "unmatched"), ("status", "404")],
        ) >= 1.0,
        "{text}"
    );
    assert!(
        value(
            &after,
            "http_requests_total",
            &[
                ("method", "OTHER"),
                ("route", "/healthz"),
                ("status", "405")
            ],
        ) >= 1.0,
        "{text}"
    );
    // This scrape's own connection is open while it is answered.
    assert!(value(&after, "http_connections_open", &[]) >= 1.0, "{text}");

    for secret in [
        name.as_str(),
        user.id.as_str(),
        user.token.as_str(),
        conversation.as_str(),
        "secret-title",
        probe.as_str(),
        "BREW",
    ] {
        assert!(!text.contains(secret), "{secret} in /metrics");
    }
    let routes: Vec<&'static str> = chat_server::route_table()
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    let labelled = routes_labelled(&text);
    assert!(labelled.contains(&"/chat/conversations/{id}"), "{text}");
    for route in labelled {
        assert!(
            route == "unmatched" || routes.contains(&route),
            "route label {route}"
        );
    }
    server.stop().await;
    backing.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_over_memory() {
    counters_move_and_labels_hold_no_user_data(Kind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_over_sqlite() {
    counters_move_and_labels_hold_no_user_data(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_is_in_the_route_table_and_needs_no_token() {
    assert!(chat_server::route_table().contains(&("GET", "/metrics")));
    let document = chat_server::openapi_document();
    let value = serde_json::to_value(&document).unwrap();
    let get = &value["paths"]["/metrics"]["get"];
    assert!(
        get["responses"]["200"]["content"]["text/plain"].is_object(),
        "{get}"
    );
    assert!(get.get("security").is_none_or(|s| s == &json!([])), "{get}");
}

/// `chat-server serve` wraps whatever store it opened, so store operations show up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_times_its_store_operations() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("data").display());
    let server = common::binary::Binary::start(&store, &["--min-free-space", "0"]);
    let c = server.client();
    let r = c
        .post(
            "/users",
            json!({"username": "ada", "password": "password-of-ada"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = c.get("/metrics").await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.contains(
            "store_operation_duration_seconds_count{operation=\"create_user\",outcome=\"ok\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("http_requests_total{method=\"POST\",route=\"/users\",status=\"201\"} 1"),
        "{text}"
    );
    server.terminate();
}
