//! The harness: a server on a loopback port over a chosen store, and a small HTTP client.

#![allow(dead_code)]

pub mod binary;
pub mod fake_provider;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chat_core::accounts::PasswordCost;
use chat_core::{ChatService, MasterKey, MemoryStore, Sealer, ServiceConfig, Store};
use chat_server::{App, AppConfig};
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs each case of the calling file's `cases` module against each store, one named test
/// per (store, case): `store_tests!(case_a, case_b)` with `cases::case_a(&Server)`.
#[allow(unused_macros)]
macro_rules! store_tests {
    ($($case:ident),* $(,)?) => {
        store_tests!(@store memory, Kind::Memory, $($case),*);
        store_tests!(@store sled, Kind::Sled, $($case),*);
        store_tests!(@store sqlite, Kind::Sqlite, $($case),*);
        store_tests!(@store postgres, Kind::Postgres, $($case),*);
    };
    (@store $store:ident, $kind:expr, $($case:ident),*) => {
        mod $store {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(backing) = Backing::new($kind) else { return };
                    let server = Server::start(&backing).await;
                    cases::$case(&server).await;
                    server.stop().await;
                    backing.cleanup().await;
                }
            )*
        }
    };
}

/// Which store a test runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Sled,
    Sqlite,
    Postgres,
}

/// Where a store's data lives, kept alive for the test's length so it can be reopened.
pub struct Backing {
    pub kind: Kind,
    pub dir: Option<tempfile::TempDir>,
    pub pg: Option<(String, String)>,
    memory: Option<Arc<MemoryStore>>,
    pub key: String,
}

/// The PostgreSQL URL for tests, or `None` to skip them. With `CI` set a missing URL fails.
pub fn postgres_url() -> Option<String> {
    match std::env::var("CHAT_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but CHAT_TEST_POSTGRES_URL is not: the PostgreSQL tests must run")
        }
        _ => {
            eprintln!("CHAT_TEST_POSTGRES_URL is not set: skipping the PostgreSQL case");
            None
        }
    }
}

impl Backing {
    /// A fresh, empty store of `kind`; `None` when PostgreSQL is not configured.
    pub fn new(kind: Kind) -> Option<Self> {
        let key = MasterKey::generate().to_hex().to_string();
        let (dir, pg, memory) = match kind {
            Kind::Memory => (None, None, Some(Arc::new(MemoryStore::new()))),
            Kind::Sled | Kind::Sqlite => (Some(tempfile::tempdir().unwrap()), None, None),
            Kind::Postgres => {
                let url = postgres_url()?;
                // Each run gets a schema of its own, so runs and tests never see each
                // other's rows, and nothing needs cleaning between them.
                let schema = format!("server_test_{}", uuid::Uuid::now_v7().simple());
                (None, Some((url, schema)), None)
            }
        };
        Some(Self {
            kind,
            dir,
            pg,
            memory,
            key,
        })
    }

    /// Removes what the test left outside its temporary directory: a PostgreSQL schema.
    /// Runs after the servers over it have stopped.
    pub async fn cleanup(self) {
        if let Some((url, schema)) = &self.pg {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                .await
                .unwrap();
            sqlx::Executor::execute(
                &mut conn,
                format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE").as_str(),
            )
            .await
            .unwrap();
        }
    }

    /// Opens the store (again).
    pub async fn open(&self) -> Arc<dyn Store> {
        match self.kind {
            Kind::Memory => self.memory.clone().unwrap(),
            Kind::Sled => {
                let path = self.dir.as_ref().unwrap().path().join("sled");
                Arc::new(
                    tokio::task::spawn_blocking(move || chat_store_sled::SledStore::open(path))
                        .await
                        .unwrap()
                        .unwrap(),
                )
            }
            Kind::Sqlite => {
                let path = self.dir.as_ref().unwrap().path().join("chat.db");
                Arc::new(chat_store_sql::SqliteStore::open(path).await.unwrap())
            }
            Kind::Postgres => {
                let (url, schema) = self.pg.as_ref().unwrap();
                let mut options = chat_store_sql::PostgresOptions::default();
                options.schema = Some(schema.clone());
                Arc::new(
                    chat_store_sql::PostgresStore::connect_with(url, options)
                        .await
                        .unwrap(),
                )
            }
        }
    }
}

pub fn service_config() -> ServiceConfig {
    ServiceConfig {
        password_cost: PasswordCost::INSECURE_FOR_TESTS,
        ..ServiceConfig::default()
    }
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Starts a server over `backing` with the test defaults.
    pub async fn start(backing: &Backing) -> Self {
        Self::start_with(backing, service_config(), AppConfig::default()).await
    }

    pub async fn start_with(backing: &Backing, service: ServiceConfig, config: AppConfig) -> Self {
        let store = backing.open().await;
        let key = MasterKey::from_hex(&backing.key).unwrap();
        let service = ChatService::new(store, Sealer::new(1, key), service);
        Self::start_app(chat_server::app(service, config)).await
    }

    pub async fn start_app(app: App) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(chat_server::serve(listener, app.clone(), async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            app,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has finished.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("the server stops")
                .unwrap()
                .unwrap();
        }
    }

    pub fn client(&self) -> Client {
        Client {
            addr: self.addr,
            token: None,
        }
    }

    /// Registers `name` (password `password-of-<name>`) and logs in.
    pub async fn user(&self, name: &str) -> User {
        self.client().user(name).await
    }
}

pub struct User {
    pub id: String,
    pub token: String,
    pub client: Client,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Checks an error answer: status, code, field, and that the body's request id is the
    /// header's.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.text());
        let body = self.json();
        let error = &body["error"];
        assert_eq!(error["code"], code, "{body}");
        assert_eq!(error["field"].as_str(), field, "{body}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            error["request_id"].as_str(),
            self.header("x-request-id"),
            "{body}"
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

/// A client that opens a connection per request.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

impl Client {
    /// Registers `name` (password `password-of-<name>`) and logs in.
    pub async fn user(&self, name: &str) -> User {
        let password = format!("password-of-{name}");
        let r = self
            .post("/users", json!({"username": name, "password": password}))
            .await;
        assert_eq!(r.status, 201, "register {name}: {}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let r = self
            .post(
                "/users/login",
                json!({"username": name, "password": password}),
            )
            .await;
        assert_eq!(r.status, 200, "login {name}: {}", r.text());
        let token = r.json()["token"].as_str().unwrap().to_owned();
        User {
            id,
            client: self.with_token(&token),
            token,
        }
    }

    pub fn with_token(&self, token: &str) -> Client {
        Client {
            addr: self.addr,
            token: Some(token.to_owned()),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.json("POST", path, body).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.json("PATCH", path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.json("PUT", path, body).await
    }

    pub async fn json(&self, method: &str, path: &str, body: Value) -> Resp {
        self.send(
            method,
            path,
            &[("content-type", "application/json")],
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
    }

    /// Sends raw bytes as the body with the given content type.
    pub async fn raw(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Resp {
        self.send(
            method,
            path,
            &[("content-type", content_type)],
            Some(body.to_vec()),
        )
        .await
    }
}

/// Writes `request` on a fresh connection and reads until the server closes or `limit`
/// bytes arrive; for requests a well-behaved client cannot send.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") && response_complete(&out) {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `out` holds a whole response head and as much body as its `Content-Length` says.
pub fn response_complete(out: &[u8]) -> bool {
    let text = String::from_utf8_lossy(out);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    body.len() >= length
}

/// A log writer that keeps what the log says, for tests that read the log.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
