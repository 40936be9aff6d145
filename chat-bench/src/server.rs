//! Child servers: the real `chat-server` binary over a store, and the bare server; and
//! the HTTP calls that set up a user, conversations and messages on them.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::loadgen::{Client, Req};

/// The master key the servers run with (the PostgreSQL store requires one).
const MASTER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A running child server; killed when dropped.
pub struct Server {
    /// What it is, for the report.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    /// Starts `binary` with `args` (plus `--listen`) and waits until it answers.
    pub async fn start(name: &str, binary: &Path, args: &[String]) -> Server {
        let addr = free_port();
        let child = Command::new(binary)
            .args(args)
            .arg("--listen")
            .arg(addr.to_string())
            .env("CHAT_MASTER_KEY", MASTER_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let server = Server {
            name: name.to_owned(),
            addr,
            child,
        };
        server.wait_ready().await;
        server
    }

    /// The real server over the store at `url`.
    pub async fn chat(name: &str, binary: &Path, url: &str) -> Server {
        if !binary.is_file() {
            panic!(
                "no chat-server at {}: build it with `cargo build --release -p chat-server` \
                 or give --server",
                binary.display()
            );
        }
        Server::start(name, binary, &["--store".into(), url.into()]).await
    }

    /// The process id, for reading its memory.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Kills the server and waits for it to be gone.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if let Ok(mut client) = Client::connect(self.addr, None).await {
                if let Ok((status, _)) = client.send(&Req::get("/healthz".into())).await {
                    if status.as_u16() < 500 {
                        return;
                    }
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} did not start",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A loopback address with a port nobody listens on now.
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// A user on a server: its token and a connection.
pub struct Session {
    /// The bearer token.
    pub token: String,
    client: Client,
}

impl Session {
    /// Registers a new user and logs in.
    pub async fn new(addr: SocketAddr) -> Session {
        let mut client = Client::connect(addr, None).await.expect("connecting");
        let username = format!("bench{}", &uuid::Uuid::now_v7().simple().to_string()[16..]);
        let creds = json!({ "username": username, "password": "benchmark password" });
        let (status, _) = client.send(&Req::post("/users", &creds)).await.unwrap();
        assert!(status.is_success(), "registration: {status}");
        let (status, body) = client
            .send(&Req::post("/users/login", &creds))
            .await
            .unwrap();
        assert!(status.is_success(), "login: {status}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        let token = body["token"].as_str().expect("a token").to_owned();
        let client = Client::connect(addr, Some(&token)).await.unwrap();
        Session { token, client }
    }

    /// Sends `req` as this user; panics unless it succeeds. Answers the body.
    pub async fn send(&mut self, req: &Req) -> bytes::Bytes {
        let (status, body) = self.client.send(req).await.expect("a request");
        assert!(
            status.is_success(),
            "{} {}: {status} {}",
            req.method,
            req.path,
            String::from_utf8_lossy(&body)
        );
        body
    }

    /// Creates a conversation; answers its id.
    pub async fn conversation(&mut self) -> String {
        let body = self
            .send(&Req::post(
                "/chat/conversations",
                &json!({ "title": "bench" }),
            ))
            .await;
        let c: Value = serde_json::from_slice(&body).unwrap();
        c["id"].as_str().expect("an id").to_owned()
    }
}

/// The body of a message the benchmark posts to `conversation`.
pub fn message(conversation: &str) -> Value {
    json!({
        "conversation_id": conversation,
        "role": "user",
        "content": "benchmark message, a sentence of ordinary length",
    })
}

/// Appends `n` messages to `conversation` over `connections` connections.
pub async fn fill(addr: SocketAddr, token: &str, conversation: &str, n: usize) {
    let connections = 8;
    let mut set = tokio::task::JoinSet::new();
    for c in 0..connections {
        let token = token.to_owned();
        let req = Req::post("/chat/messages", &message(conversation));
        set.spawn(async move {
            let mut client = Client::connect(addr, Some(&token)).await.unwrap();
            for _ in (c..n).step_by(connections) {
                let (status, _) = client.send(&req).await.unwrap();
                assert!(status.is_success(), "filling: {status}");
            }
        });
    }
    set.join_all().await;
}
