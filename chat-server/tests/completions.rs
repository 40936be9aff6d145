//! Completions against a fake OpenAI-compatible provider on a loopback port, on every store:
//! the stored reply and its metadata, streaming, a client that goes away, every failure (and
//! that it stores nothing), the endpoint guard, redirects, and the key kept out of every
//! answer and log line.

#[macro_use]
mod common;

use std::time::Duration;

use chat_server::AppConfig;
use chat_server::upstream::UpstreamConfig;
use common::fake_provider::FakeProvider;
use common::{Backing, Kind, Server, User};
use serde_json::{Value, json};

const KEY: &str = "sk-test-0123456789abcdef-SECRET-KEY";

/// A server over the same service as `base`, allowed to call the fake on loopback, with
/// short upstream timeouts.
async fn private_server(base: &Server) -> Server {
    let config = AppConfig {
        upstream: UpstreamConfig {
            allow_private_endpoints: true,
            timeout: Duration::from_secs(4),
            chunk_timeout: Duration::from_secs(1),
        },
        ..AppConfig::default()
    };
    Server::start_app(chat_server::app(base.app.service().clone(), config)).await
}

/// A memory-store server with `config`, allowed to call the fake provider it comes with.
async fn loopback_server(config: AppConfig) -> (Server, FakeProvider) {
    let fake = FakeProvider::start(KEY).await;
    let backing = Backing::new(Kind::Memory).unwrap();
    let config = AppConfig {
        upstream: UpstreamConfig {
            allow_private_endpoints: true,
            ..config.upstream.clone()
        },
        ..config
    };
    let server = Server::start_with(&backing, common::service_config(), config).await;
    (server, fake)
}

/// The whole reply of the fake's `slow` model.
fn slow_reply() -> String {
    (0..10).map(|i| format!("piece {i} ")).collect()
}

/// A user with a provider at `endpoint`, the key for it, and a conversation of two messages.
struct Setup {
    ada: User,
    provider: String,
    chat: String,
}

async fn setup(server: &Server, endpoint: &str) -> Setup {
    configure(server.user("ada").await, endpoint).await
}

/// `ada`'s provider at `endpoint`, her key for it, and a conversation of two messages.
async fn configure(ada: User, endpoint: &str) -> Setup {
    let c = &ada.client;
    let r = c
        .post(
            "/chat/llm-providers",
            json!({"name": "fake", "api_endpoint": endpoint}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let provider = r.json()["id"].as_str().unwrap().to_owned();
    let r = c
        .post(
            "/chat/user-llm-configs",
            json!({"provider_id": provider, "api_key": KEY}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = c
        .post("/chat/conversations", json!({"title": "Lisbon"}))
        .await;
    let chat = r.json()["id"].as_str().unwrap().to_owned();
    for (role, content) in [("system", "Be brief."), ("user", "Where should we eat?")] {
        let r = c
            .post(
                "/chat/messages",
                json!({"conversation_id": chat, "role": role, "content": content}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    Setup {
        ada,
        provider,
        chat,
    }
}

impl Setup {
    async fn complete(&self, body: Value) -> common::Resp {
        let mut body = body;
        body["provider_id"] = json!(self.provider);
        self.ada
            .client
            .post(
                &format!("/chat/conversations/{}/completions", self.chat),
                body,
            )
            .await
    }

    async fn messages(&self) -> Vec<Value> {
        let r = self
            .ada
            .client
            .get(&format!("/chat/conversations/{}/messages", self.chat))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json().as_array().unwrap().clone()
    }
}

/// The events of a `text/event-stream` body, as (event, data).
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (event, serde_json::from_str(&data).unwrap())
        })
        .collect()
}

mod cases {
    use super::*;

    pub async fn reply_is_stored_with_the_next_seq_and_metadata(base: &Server) {
        let fake = FakeProvider::start(KEY).await;
        let server = private_server(base).await;
        let s = setup(&server, &fake.endpoint()).await;
        let r = s
            .complete(json!({"model": "echo", "temperature": 0.5, "max_tokens": 64}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let message = r.json();
        assert_eq!(message["seq"], 3);
        assert_eq!(message["role"], "assistant");
        assert_eq!(message["content"], "You said: Where should we eat?");
        assert_eq!(
            r.header("location"),
            Some(format!("/chat/messages/{}", message["id"].as_str().unwrap()).as_str())
        );
        assert_eq!(
            message["metadata"],
            json!({
                "provider_id": s.provider,
                "model": "echo",
                "finish_reason": "stop",
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
            })
        );
        // The provider got the key (it answers 401 otherwise) and the history, oldest first.
        let sent = fake.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0]["messages"],
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Where should we eat?"},
            ])
        );
        assert_eq!(sent[0]["model"], "echo");
        assert_eq!(sent[0]["temperature"], 0.5);
        assert_eq!(sent[0]["max_tokens"], 64);
        assert_eq!(sent[0]["stream"], false);
        let stored = s.messages().await;
        assert_eq!(stored.len(), 3);
        assert_eq!(stored[2], message);
        let r = s
            .ada
            .client
            .get(&format!("/chat/conversations/{}", s.chat))
            .await;
        assert_eq!(r.json()["message_count"], 3);
        server.stop().await;
    }

    pub async fn stream_relays_the_pieces_in_order_and_stores_one_message(base: &Server) {
        let fake = FakeProvider::start(KEY).await;
        let server = private_server(base).await;
        let s = setup(&server, &fake.endpoint()).await;
        let r = s.complete(json!({"model": "echo", "stream": true})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
        let events = events(&r.text());
        let (last, deltas) = events.split_last().unwrap();
        assert!(deltas.len() >= 3, "{events:?}");
        assert!(
            deltas.iter().all(|(event, _)| event == "delta"),
            "{events:?}"
        );
        let text: String = deltas
            .iter()
            .map(|(_, data)| data["content"].as_str().unwrap())
            .collect();
        assert_eq!(text, "You said: Where should we eat?");
        assert_eq!(last.0, "message");
        assert_eq!(last.1["content"], text.as_str());
        assert_eq!(last.1["seq"], 3);
        assert_eq!(last.1["metadata"]["finish_reason"], "stop");
        assert_eq!(
            last.1["metadata"]["usage"],
            json!({"prompt_tokens": 9, "completion_tokens": 3})
        );
        assert_eq!(fake.requests()[0]["stream_options"]["include_usage"], true);
        let stored = s.messages().await;
        assert_eq!(stored.len(), 3);
        assert_eq!(stored[2], last.1);
        server.stop().await;
    }

    pub async fn a_client_that_goes_away_still_gets_the_reply_stored(base: &Server) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let fake = FakeProvider::start(KEY).await;
        let server = private_server(base).await;
        let s = setup(&server, &fake.endpoint()).await;
        let body = json!({"provider_id": s.provider, "model": "slow", "stream": true}).to_string();
        let request = format!(
            "POST /chat/conversations/{}/completions HTTP/1.1\r\nhost: x\r\n\
             authorization: Bearer {}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            s.chat,
            s.ada.token,
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("event: delta") {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
        drop(stream);
        // The provider takes about 1.5 s in all; the reply is stored whole when it ends.
        let expected = slow_reply();
        let mut stored = Vec::new();
        for _ in 0..100 {
            stored = s.messages().await;
            if stored.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(stored.len(), 3, "the reply was not stored: {stored:?}");
        assert_eq!(stored[2]["content"], expected.as_str());
        assert_eq!(stored[2]["metadata"]["finish_reason"], "stop");
        server.stop().await;
    }

    pub async fn each_failure_has_its_status_and_stores_nothing(base: &Server) {
        let fake = FakeProvider::start(KEY).await;
        let other = FakeProvider::start(KEY).await;
        fake.redirect_to(&format!("{}/chat/completions", other.endpoint()));
        let server = private_server(base).await;
        let s = setup(&server, &fake.endpoint()).await;
        for (model, stream, status, code, says) in [
            ("reject", false, 502, "upstream_error", "401"),
            ("fail", false, 502, "upstream_error", "500"),
            ("fail", true, 502, "upstream_error", "500"),
            ("garbage", false, 502, "upstream_error", "malformed"),
            ("garbage", true, 502, "upstream_error", "malformed"),
            ("no-done", false, 502, "upstream_error", "malformed"),
            ("huge", false, 502, "upstream_error", "larger"),
            ("redirect", false, 502, "upstream_error", "redirect"),
            ("stall", false, 504, "upstream_timeout", "sent nothing"),
            ("mute", true, 504, "upstream_timeout", "did not answer"),
        ] {
            let r = s.complete(json!({"model": model, "stream": stream})).await;
            r.assert_error(status, code, None);
            let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
            assert!(message.contains(says), "{model}: {message}");
            assert!(
                !r.text().contains(KEY),
                "{model}: the key leaked: {}",
                r.text()
            );
        }
        // Redirects are not followed.
        assert_eq!(other.hits(), 0);
        // TLS to an endpoint that does not speak it.
        let c = &s.ada.client;
        let r = c
            .post(
                "/chat/llm-providers",
                json!({"name": "tls", "api_endpoint": format!("https://{}/v1", fake.addr)}),
            )
            .await;
        let tls = r.json()["id"].as_str().unwrap().to_owned();
        c.post(
            "/chat/user-llm-configs",
            json!({"provider_id": tls, "api_key": KEY}),
        )
        .await;
        let r = c
            .post(
                &format!("/chat/conversations/{}/completions", s.chat),
                json!({"provider_id": tls, "model": "echo"}),
            )
            .await;
        r.assert_error(502, "upstream_error", None);
        assert!(r.text().contains("TLS"), "{}", r.text());
        // A failure after the stream began is its last event, and stores nothing either.
        let r = s.complete(json!({"model": "stall", "stream": true})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let events = events(&r.text());
        assert_eq!(
            events[0],
            ("delta".to_owned(), json!({"content": "the start"}))
        );
        let (event, data) = events.last().unwrap();
        assert_eq!(event, "error");
        assert_eq!(data["error"]["code"], "upstream_timeout");
        assert_eq!(
            data["error"]["request_id"].as_str(),
            r.header("x-request-id")
        );
        assert_eq!(s.messages().await.len(), 2);

        // What the service checks before calling anyone.
        let c = &s.ada.client;
        let path = format!("/chat/conversations/{}/completions", s.chat);
        for (body, field) in [
            (json!({"provider_id": s.provider}), "model"),
            (
                json!({"provider_id": s.provider, "model": "two words"}),
                "model",
            ),
            (
                json!({"provider_id": s.provider, "model": "x".repeat(201)}),
                "model",
            ),
            (
                json!({"provider_id": s.provider, "model": "echo", "temperature": 2.5}),
                "temperature",
            ),
            (
                json!({"provider_id": s.provider, "model": "echo", "temperature": "hot"}),
                "temperature",
            ),
            (
                json!({"provider_id": s.provider, "model": "echo", "max_tokens": 0}),
                "max_tokens",
            ),
            (
                json!({"provider_id": s.provider, "model": "echo", "max_tokens": 1_000_001}),
                "max_tokens",
            ),
            (
                json!({"provider_id": s.provider, "model": "echo", "max_tokens": 1.5}),
                "max_tokens",
            ),
            (
                json!({"provider_id": s.provider, "model": "echo", "stream": "yes"}),
                "stream",
            ),
            (
                json!({"provider_id": "nope", "model": "echo"}),
                "provider_id",
            ),
        ] {
            c.post(&path, body)
                .await
                .assert_error(400, "invalid_input", Some(field));
        }
        let unknown = uuid::Uuid::now_v7().to_string();
        c.post(&path, json!({"provider_id": unknown, "model": "echo"}))
            .await
            .assert_error(404, "not_found", Some("provider_id"));
        // A provider the caller can see but has no key for.
        let r = c
            .post(
                "/chat/llm-providers",
                json!({"name": "keyless", "api_endpoint": fake.endpoint()}),
            )
            .await;
        let keyless = r.json()["id"].as_str().unwrap().to_owned();
        c.post(&path, json!({"provider_id": keyless, "model": "echo"}))
            .await
            .assert_error(404, "not_found", Some("provider_id"));
        // Another user's conversation, and another user's provider.
        let bob = server.user("bob").await;
        bob.client
            .post(&path, json!({"provider_id": s.provider, "model": "echo"}))
            .await
            .assert_error(404, "not_found", None);
        let r = bob
            .client
            .post("/chat/conversations", json!({"title": "Bob's"}))
            .await;
        let bobs = r.json()["id"].as_str().unwrap().to_owned();
        bob.client
            .post(
                "/chat/messages",
                json!({"conversation_id": bobs, "role": "user", "content": "hi"}),
            )
            .await;
        bob.client
            .post(
                &format!("/chat/conversations/{bobs}/completions"),
                json!({"provider_id": s.provider, "model": "echo"}),
            )
            .await
            .assert_error(404, "not_found", Some("provider_id"));
        // A conversation with nothing to answer, which is checked before the provider.
        let r = c
            .post("/chat/conversations", json!({"title": "Empty"}))
            .await;
        let empty = r.json()["id"].as_str().unwrap().to_owned();
        for provider in [&s.provider, &unknown] {
            c.post(
                &format!("/chat/conversations/{empty}/completions"),
                json!({"provider_id": provider, "model": "echo"}),
            )
            .await
            .assert_error(400, "invalid_input", Some("id"));
        }
        assert_eq!(s.messages().await.len(), 2);
        server.stop().await;
    }

    pub async fn the_guard_refuses_internal_addresses(base: &Server) {
        let fake = FakeProvider::start(KEY).await;
        let port = fake.addr.port();
        // The base server has the guard on.
        let s = setup(base, &fake.endpoint()).await;
        let c = &s.ada.client;
        for (i, endpoint) in [
            format!("http://127.0.0.1:{port}/v1"),
            format!("http://localhost:{port}/v1"),
            format!("http://[::1]:{port}/v1"),
            "http://10.0.0.1/v1".to_owned(),
            "http://169.254.169.254/latest".to_owned(),
            "https://100.64.0.1/v1".to_owned(),
            format!("http://[::ffff:127.0.0.1]:{port}/v1"),
        ]
        .into_iter()
        .enumerate()
        {
            // Creating a provider with such an endpoint is allowed; using it is not.
            let r = c
                .post(
                    "/chat/llm-providers",
                    json!({"name": format!("internal {i}"), "api_endpoint": endpoint}),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text());
            let provider = r.json()["id"].as_str().unwrap().to_owned();
            c.post(
                "/chat/user-llm-configs",
                json!({"provider_id": provider, "api_key": KEY}),
            )
            .await;
            let r = c
                .post(
                    &format!("/chat/conversations/{}/completions", s.chat),
                    json!({"provider_id": provider, "model": "echo"}),
                )
                .await;
            r.assert_error(502, "upstream_error", None);
            let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
            assert!(
                message.contains("address is not allowed"),
                "{endpoint}: {message}"
            );
        }
        // The endpoint of the setup itself is on loopback too.
        s.complete(json!({"model": "echo"}))
            .await
            .assert_error(502, "upstream_error", None);
        assert_eq!(fake.connections(), 0, "no byte may reach a refused address");
        assert_eq!(s.messages().await.len(), 2);
    }
}

store_tests!(
    reply_is_stored_with_the_next_seq_and_metadata,
    stream_relays_the_pieces_in_order_and_stores_one_message,
    a_client_that_goes_away_still_gets_the_reply_stored,
    each_failure_has_its_status_and_stores_nothing,
    the_guard_refuses_internal_addresses,
);

/// The key never reaches a log line of the real binary, at the most talkative level, through
/// a success, a stream and every kind of failure; nor any answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_never_logged() {
    let fake = FakeProvider::start(KEY).await;
    let binary = common::binary::Binary::start_watching(
        "memory:",
        &[
            "--allow-private-endpoints",
            "--upstream-chunk-timeout",
            "1s",
            "--upstream-timeout",
            "3s",
        ],
        "trace",
        Some("SECRET-KEY"),
    );
    let s = configure(binary.client().user("ada").await, &fake.endpoint()).await;
    for (model, stream) in [
        ("echo", false),
        ("echo", true),
        ("reject", false),
        ("fail", true),
        ("garbage", false),
        ("stall", true),
    ] {
        let r = s.complete(json!({"model": model, "stream": stream})).await;
        assert!(!r.text().contains(KEY), "{model}: {}", r.text());
        assert!(
            r.headers
                .iter()
                .all(|(_, v)| !v.as_bytes().windows(10).any(|w| w == b"SECRET-KEY")),
            "{model}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (leaks, lines) = binary.watched();
    assert!(
        lines > 20,
        "the log is too quiet to prove anything: {lines} lines"
    );
    assert!(leaks.is_empty(), "the key is in the log: {leaks:?}");
    assert_eq!(fake.requests().len(), 6);
}

/// A non-streamed completion is not cut by the request timeout: the upstream timeouts apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_timeout_does_not_cut_a_completion() {
    let (server, fake) = loopback_server(AppConfig {
        request_timeout: Duration::from_millis(500),
        ..AppConfig::default()
    })
    .await;
    let s = setup(&server, &fake.endpoint()).await;
    // About 1.5 s, three times the request timeout.
    let r = s.complete(json!({"model": "slow"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["content"], slow_reply());
    server.stop().await;
}

/// A connection streaming a completion is busy, not idle: an idle timeout far shorter than
/// the stream does not cut it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_does_not_cut_a_stream() {
    let (server, fake) = loopback_server(AppConfig {
        idle_timeout: Duration::from_millis(200),
        ..AppConfig::default()
    })
    .await;
    let s = setup(&server, &fake.endpoint()).await;
    // About 1.5 s of pieces, each 150 ms apart.
    let r = s.complete(json!({"model": "slow", "stream": true})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let events = events(&r.text());
    let (event, message) = events.last().unwrap();
    assert_eq!(event, "message", "{events:?}");
    assert_eq!(message["content"], slow_reply());
    server.stop().await;
}

/// The chunk timeout runs between pieces of the body, so the `:` comments a provider sends
/// while its model thinks keep a call alive past it (within the overall timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_from_a_thinking_provider_count_as_progress() {
    let fake = FakeProvider::start(KEY).await;
    let backing = Backing::new(Kind::Memory).unwrap();
    let base = Server::start(&backing).await;
    // A chunk timeout of 1 s; the provider is silent but for comments for 1.5 s.
    let server = private_server(&base).await;
    let s = setup(&server, &fake.endpoint()).await;
    let r = s.complete(json!({"model": "thinking"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["content"], "done");
    server.stop().await;
    base.stop().await;
}
