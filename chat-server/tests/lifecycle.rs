//! Restarts, the key file, logs, closed registration, graceful shutdown and the OpenAPI
//! document.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chat_core::{Caller, ChatService, NewProvider, Sealer, ServiceConfig};
use chat_server::AppConfig;
use chat_server::keyfile::{self, KeySource};
use chat_server::store_url::StoreUrl;
use common::{Backing, Captured, Kind, Server, service_config};
use serde_json::json;

/// Starts a server the way the binary does: store from its URL, key from the key file.
async fn start_from_url(url: &StoreUrl) -> (Server, KeySource) {
    // The previous server's store may take a moment to let go of its files.
    let mut attempts = 0;
    let store = loop {
        match url.open().await {
            Ok(store) => break store,
            Err(e) if attempts < 50 => {
                attempts += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{}", chat_server::error_chain(&e)),
        }
    };
    let (key, source) = keyfile::load(url, None, None).unwrap();
    let service = ChatService::new(store, Sealer::new(1, key), service_config());
    let app = chat_server::app(service, AppConfig::default());
    (Server::start_app(app).await, source)
}

async fn restart_keeps_everything(url: StoreUrl, key_file: &Path) {
    let (server, source) = start_from_url(&url).await;
    assert_eq!(source, KeySource::Created(key_file.to_owned()));
    let shared = server
        .app
        .service()
        .create_shared_provider(NewProvider::parse("Shared", "https://api.example").unwrap())
        .await
        .unwrap();
    let ada = server.user("ada").await;
    let c = &ada.client;
    let conv = c
        .post("/chat/conversations", json!({"title": "kept"}))
        .await
        .json();
    let cid = conv["id"].as_str().unwrap().to_owned();
    let msg = c
        .post(
            "/chat/messages",
            json!({"conversation_id": cid, "role": "user", "content": "hi"}),
        )
        .await
        .json();
    let mid = msg["id"].as_str().unwrap().to_owned();
    let att = c
        .post(
            "/chat/attachments",
            json!({"message_id": mid, "file_type": "text", "file_path": "a.txt"}),
        )
        .await
        .json();
    let provider = c
        .post(
            "/chat/llm-providers",
            json!({"name": "Mine", "api_endpoint": "https://mine.example"}),
        )
        .await
        .json();
    let secret = "sk-restart-0123456789";
    assert_eq!(
        c.post(
            "/chat/user-llm-configs",
            json!({"provider_id": shared.id.to_string(), "api_key": secret})
        )
        .await
        .status,
        201
    );
    server.stop().await;

    let (server, source) = start_from_url(&url).await;
    assert_eq!(source, KeySource::File(key_file.to_owned()));
    // The token still works, and everything is there.
    let c = server.client().with_token(&ada.token);
    assert_eq!(
        c.get(&format!("/chat/conversations/{cid}")).await.json()["message_count"],
        1
    );
    assert_eq!(c.get(&format!("/chat/messages/{mid}")).await.json(), msg);
    assert_eq!(
        c.get(&format!(
            "/chat/attachments/{}",
            att["id"].as_str().unwrap()
        ))
        .await
        .json(),
        att
    );
    assert_eq!(
        c.get(&format!(
            "/chat/llm-providers/{}",
            provider["id"].as_str().unwrap()
        ))
        .await
        .json(),
        provider
    );
    let r = c
        .post(
            "/chat/messages",
            json!({"conversation_id": cid, "role": "assistant", "content": "again"}),
        )
        .await;
    assert_eq!(r.json()["seq"], 2);
    // The key file opens the sealed key.
    let caller = Caller::trusted(ada.id.parse().unwrap());
    let key = server
        .app
        .service()
        .reveal_api_key(&caller, shared.id)
        .await
        .unwrap();
    assert_eq!(key.expose_secret(), secret);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    restart_keeps_everything(StoreUrl::Sled(data.clone()), &data.join("master.key")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chat.db");
    restart_keeps_everything(StoreUrl::Sqlite(file), &dir.path().join("chat.db.key")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_keeps_everything() {
    let Some(backing) = Backing::new(Kind::Postgres) else {
        return;
    };
    let server = Server::start(&backing).await;
    let ada = server.user("ada").await;
    let cid = ada
        .client
        .post("/chat/conversations", json!({"title": "kept"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.stop().await;
    let server = Server::start(&backing).await;
    let c = server.client().with_token(&ada.token);
    assert_eq!(
        c.get(&format!("/chat/conversations/{cid}")).await.json()["title"],
        "kept"
    );
    server.stop().await;
    backing.cleanup().await;
}

// One thread, so the server's tasks log through this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn secrets_never_reach_responses_or_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let backing = Backing::new(Kind::Memory).unwrap();
    let server = Server::start(&backing).await;
    let shared = server
        .app
        .service()
        .create_shared_provider(NewProvider::parse("Shared", "https://api.example").unwrap())
        .await
        .unwrap();
    let ada = server.user("ada").await;
    let secret = "sk-never-logged-0123456789";
    let path = format!("/chat/user-llm-configs/{}/{}", ada.id, shared.id);
    let mut bodies = Vec::new();
    let r = ada
        .client
        .post(
            "/chat/user-llm-configs",
            json!({"provider_id": shared.id.to_string(), "api_key": secret}),
        )
        .await;
    assert_eq!(r.status, 201);
    bodies.push(r.text());
    bodies.push(ada.client.get(&path).await.text());
    let other = "sk-also-never-logged-987654321";
    bodies.push(
        ada.client
            .put(&path, json!({"api_key": other}))
            .await
            .text(),
    );
    // Failing requests too.
    bodies.push(
        ada.client
            .post(
                "/chat/user-llm-configs",
                json!({"provider_id": shared.id.to_string(), "api_key": secret}),
            )
            .await
            .text(),
    );
    bodies.push(
        ada.client
            .put(&path, json!({"api_key": "has space sk-never"}))
            .await
            .text(),
    );
    let r = ada
        .client
        .send("GET", "/users/me", &[("x-request-id", "trace-me-42")], None)
        .await;
    assert_eq!(r.status, 200);
    server.stop().await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for body in &bodies {
        assert!(!body.contains(secret) && !body.contains(other), "{body}");
        assert!(!body.contains("sealed"), "{body}");
    }
    assert!(
        log.contains("trace-me-42"),
        "the request id is logged:\n{log}"
    );
    assert!(
        log.contains("route=\"/chat/user-llm-configs/{user_id}/{provider_id}\""),
        "{log}"
    );
    assert!(log.contains("status=201"), "{log}");
    for forbidden in [
        secret,
        other,
        "sk-never",
        ada.token.as_str(),
        "password-of-ada",
    ] {
        assert!(
            !log.contains(forbidden),
            "{forbidden} leaked into the log:\n{log}"
        );
    }
}

#[tokio::test]
async fn closed_registration_answers_403_after_validation() {
    let backing = Backing::new(Kind::Memory).unwrap();
    let config = ServiceConfig {
        registration_open: false,
        ..service_config()
    };
    let server = Server::start_with(&backing, config, AppConfig::default()).await;
    let c = server.client();
    c.post(
        "/users",
        json!({"username": "ada", "password": "correct horse"}),
    )
    .await
    .assert_error(403, "forbidden", None);
    c.post(
        "/users",
        json!({"username": "a", "password": "correct horse"}),
    )
    .await
    .assert_error(400, "invalid_input", Some("username"));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backing = Backing::new(Kind::Memory).unwrap();
    let server = Server::start(&backing).await;
    let ada = server.user("ada").await;
    let body = br#"{"title":"finished during shutdown"}"#;
    let head = format!(
        "POST /chat/conversations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-length: {}\r\n\r\n",
        ada.token,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(&body[10..]).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn openapi_describes_every_route_and_nothing_else() {
    let backing = Backing::new(Kind::Memory).unwrap();
    let server = Server::start(&backing).await;
    let r = server.client().get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    server.stop().await;

    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            let protected =
                path.starts_with("/chat/") || path == "/users/me" || path == "/users/logout";
            assert_eq!(op.get("security").is_some(), protected, "{method} {path}");
            if protected {
                assert!(op["responses"].get("401").is_some(), "{method} {path}");
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    let routes: BTreeSet<_> = chat_server::route_table()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    assert_eq!(documented, routes);

    let schemes = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["type"], "http");
    assert_eq!(schemes["scheme"], "bearer");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("ErrorBody"));
    for (name, schema) in schemas {
        let props = schema["properties"].as_object();
        for secret in ["password_hash", "sealed_key", "api_key"] {
            if !name.ends_with("Request") {
                assert!(
                    props.is_none_or(|p| !p.contains_key(secret)),
                    "{name} has {secret}"
                );
            }
        }
    }
    for name in ["MessageOut", "AttachmentOut"] {
        assert!(
            !schemas[name]["properties"]
                .as_object()
                .unwrap()
                .contains_key("user_id")
        );
    }
    // Every referenced schema exists.
    let text = doc.to_string();
    for piece in text.split("#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
}

#[tokio::test]
async fn http2_is_served_on_the_same_port() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let backing = Backing::new(Kind::Memory).unwrap();
    let server = Server::start(&backing).await;
    let ada = server.user("ada").await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::post(format!("http://{}/chat/conversations", server.addr))
        .header("authorization", format!("Bearer {}", ada.token))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from_static(
            br#"{"title":"over h2"}"#,
        )))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert_eq!(response.status(), 201);
    assert!(response.headers().contains_key("location"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let conv: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(conv["title"], "over h2");
    drop(sender);
    server.stop().await;
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backing = Backing::new(Kind::Memory).unwrap();
    let config = AppConfig {
        header_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(500),
        ..AppConfig::default()
    };
    let server = Server::start_with(&backing, service_config(), config).await;
    let ada = server.user("ada").await;

    // Headers that never finish: the connection is closed.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server closes a connection whose headers stall"
    );
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));

    // A body that never finishes: 503 when the request timeout passes.
    let head = format!(
        "POST /chat/conversations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-length: 100\r\n\r\n{{\"ti",
        ada.token
    );
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"unavailable\""), "{answer}");

    assert_eq!(ada.client.get("/users/me").await.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_answers_500_and_503_without_details() {
    let dir = tempfile::tempdir().unwrap();
    let store = chat_store_sql::SqliteStore::open(dir.path().join("chat.db"))
        .await
        .unwrap();
    let handle = store.clone();
    let service = ChatService::new(
        Arc::new(store),
        Sealer::new(1, chat_core::MasterKey::generate()),
        service_config(),
    );
    let server = Server::start_app(chat_server::app(service, AppConfig::default())).await;
    let ada = server.user("ada").await;
    assert_eq!(server.client().get("/readyz").await.status, 200);

    // A store failing in a way nobody planned for (its table is gone) is a 500, and the
    // answer says nothing of the store.
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.path().join("chat.db").display());
        let mut side = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("DROP TABLE conversations")
            .execute(&mut side)
            .await
            .unwrap();
        side.close().await.unwrap();
    }
    let r = ada.client.get("/chat/conversations").await;
    r.assert_error(500, "internal", None);
    assert_eq!(r.json()["error"]["message"], "internal server error");
    assert!(!r.text().contains("chat.db") && !r.text().to_lowercase().contains("sql"));

    // A closed store cannot serve: readiness and requests say so with a 503 (a closed pool
    // passes, by a restart or another instance), naming no file.
    handle.close().await;
    let r = server.client().get("/readyz").await;
    r.assert_error(503, "unavailable", None);
    let r = ada.client.get("/users/me").await;
    r.assert_error(503, "unavailable", None);
    assert!(!r.text().contains("chat.db"), "{}", r.text());
    assert_eq!(server.client().get("/healthz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn connections_past_the_cap_wait_their_turn() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backing = Backing::new(Kind::Memory).unwrap();
    let config = AppConfig {
        max_connections: 1,
        ..AppConfig::default()
    };
    let server = Server::start_with(&backing, service_config(), config).await;
    let request = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut buf = [0u8; 1024];

    // The first connection is busy: its request's body is still on its way. (An idle one
    // would be closed to make room; tests/connections.rs holds the server to that.)
    let mut first = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    first
        .write_all(b"POST /users HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"user")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The first connection stays open and busy, so the second is not served yet.
    let mut second = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    second.write_all(request).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
    assert!(waited.is_err(), "served past the connection cap");

    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
        .await
        .expect("served once the first connection closed")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    drop(second);
    server.stop().await;
}
