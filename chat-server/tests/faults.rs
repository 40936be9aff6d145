//! Faults a store meets in the field, tried on the real binary or a real database: a full
//! disk (sled and SQLite on a small tmpfs, filled through the API and then grown), a sled
//! engine that fails under a disk filled behind its back, and a PostgreSQL server that goes
//! away (a TCP proxy between the server and it, cut and restored).
//!
//! The tmpfs cases mount file systems, which takes root: elsewhere they say that they are
//! skipped, and under `CI` they fail instead.

mod common;

use chat_core::testkit::Tmpfs;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chat_core::{ChatService, MasterKey, Sealer};
use chat_server::AppConfig;
use common::binary::Binary;
use common::{Client, Server, service_config};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// `extra` after the short timeouts the fault tests run with.
fn with_timeouts<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--shutdown-timeout", "3s", "--request-timeout", "5s"];
    args.extend_from_slice(extra);
    args
}

/// Registers and logs in `name` and creates one conversation; answers its client and id.
async fn user_with_conversation(client: &Client, name: &str) -> (Client, String) {
    let password = "a long enough password";
    let r = client
        .post("/users", json!({"username": name, "password": password}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = client
        .post(
            "/users/login",
            json!({"username": name, "password": password}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let authed = client.with_token(r.json()["token"].as_str().unwrap());
    let r = authed
        .post("/chat/conversations", json!({"title": "filling"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    (authed, id)
}

/// A message body of about 64 KiB, different for each `n`.
fn content(n: usize) -> String {
    let mut s = format!("message {n} ");
    while s.len() < 64 * 1024 {
        s.push_str("all work and no play ");
    }
    s
}

async fn append(client: &Client, conversation: &str, n: usize) -> common::Resp {
    client
        .post(
            "/chat/messages",
            json!({"conversation_id": conversation, "role": "user", "content": content(n)}),
        )
        .await
}

/// Appends until writes are refused, checking each answer: a 201 carries the next `seq`,
/// a refusal is 503 `unavailable` with `Retry-After`. Answers what was acknowledged, as
/// (seq, n), and the first refusal.
async fn fill(client: &Client, conversation: &str) -> (Vec<(u64, usize)>, common::Resp) {
    let mut acked = Vec::new();
    for n in 0..10_000 {
        let r = append(client, conversation, n).await;
        match r.status {
            201 => {
                let seq = r.json()["seq"].as_u64().unwrap();
                assert_eq!(seq, acked.len() as u64 + 1, "each 201 carries a new seq");
                acked.push((seq, n));
            }
            503 => return (acked, r),
            _ => panic!("an append answered {}: {}", r.status, r.text()),
        }
    }
    panic!("the disk never filled");
}

#[track_caller]
fn assert_out_of_space(r: &common::Resp) {
    r.assert_error(503, "unavailable", None);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("out of space"), "{message}");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry > 0);
}

/// Every acknowledged message reads back with its content, in order.
async fn assert_all_kept(client: &Client, conversation: &str, acked: &[(u64, usize)]) {
    let mut read: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let r = client
            .get(&format!(
                "/chat/conversations/{conversation}/messages?after={after}&limit=100"
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.json().as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap()["seq"].as_u64().unwrap();
        read.extend(page);
    }
    assert_eq!(
        read.len(),
        acked.len(),
        "every acknowledged message is kept"
    );
    for (message, (seq, n)) in read.iter().zip(acked) {
        assert_eq!(message["seq"].as_u64(), Some(*seq));
        assert_eq!(message["content"].as_str(), Some(content(*n).as_str()));
    }
}

/// Fills the store's disk through the API, grows it, and restarts: the whole promise of a
/// full disk, for one embedded store.
async fn full_disk_refuses_then_recovers(scheme: &str, extra: &[&str]) {
    let Some(disk) = Tmpfs::mount(24) else { return };
    let store = format!("{scheme}:{}", disk.path().join("data").display());
    let server = Binary::start(&store, &with_timeouts(extra));
    let (client, conversation) = user_with_conversation(&server.client(), "filler").await;

    let (acked, refusal) = fill(&client, &conversation).await;
    assert!(acked.len() > 10, "only {} appends fit", acked.len());
    assert_out_of_space(&refusal);
    // Refusals go on while the disk is full, and change nothing.
    for n in 0..3 {
        assert_out_of_space(&append(&client, &conversation, 100_000 + n).await);
    }
    // Reads go on, and show exactly what was acknowledged.
    let r = client
        .get(&format!("/chat/conversations/{conversation}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message_count"].as_u64(), Some(acked.len() as u64));
    let ready = server.client().get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("out of space"), "{}", ready.text());

    // Space returns: writes resume without a restart.
    disk.grow(64);
    let r = append(&client, &conversation, 200_000).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut acked = acked;
    let seq = r.json()["seq"].as_u64().unwrap();
    assert_eq!(seq, acked.len() as u64 + 1);
    acked.push((seq, 200_000));
    assert_eq!(server.client().get("/readyz").await.status, 200);

    let took = server.terminate();
    assert!(took < Duration::from_secs(3 + 2), "SIGTERM took {took:?}");
    eprintln!(
        "{scheme} on a 24 MiB tmpfs: {} appends of 64 KiB acknowledged, then 503 out of space; \
         writes resumed after growing it; SIGTERM exit in {took:?}",
        acked.len() - 1
    );

    // Everything acknowledged survives a restart, with its content.
    let server = Binary::start(&store, &with_timeouts(extra));
    let r = server
        .client()
        .post(
            "/users/login",
            json!({"username": "filler", "password": "a long enough password"}),
        )
        .await;
    let client = server
        .client()
        .with_token(r.json()["token"].as_str().unwrap());
    assert_all_kept(&client, &conversation, &acked).await;
    server.terminate();
}

/// sled is kept from the full disk by its free-space reserve.
#[tokio::test]
async fn sled_on_a_full_disk_refuses_writes_then_recovers() {
    full_disk_refuses_then_recovers("sled", &["--min-free-space", "4MiB"]).await;
}

/// SQLite meets the full disk itself (no reserve): its refusals must still be honest.
#[tokio::test]
async fn sqlite_on_a_full_disk_refuses_writes_then_recovers() {
    full_disk_refuses_then_recovers("sqlite", &["--min-free-space", "0"]).await;
}

/// With no reserve, a disk filled behind sled's back makes sled's log write fail, after
/// which sled 0.34 cannot write again in this process. The server must still answer
/// honestly (never 500, never a 201 that is lost), say it is not ready, stop on SIGTERM
/// within its shutdown timeout, and keep on restart everything it acknowledged.
#[tokio::test]
async fn sled_engine_failure_is_refused_and_the_server_still_stops() {
    let Some(disk) = Tmpfs::mount(24) else { return };
    let store = format!("sled:{}", disk.path().join("data").display());
    let server = Binary::start(&store, &with_timeouts(&["--min-free-space", "0"]));
    let (client, conversation) = user_with_conversation(&server.client(), "filler").await;
    let mut acked: Vec<(u64, usize)> = Vec::new();
    for n in 0..5 {
        let r = append(&client, &conversation, n).await;
        assert_eq!(r.status, 201, "{}", r.text());
        acked.push((r.json()["seq"].as_u64().unwrap(), n));
    }
    // Another process takes the rest of the disk.
    let ballast = disk.path().join("ballast");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64"])
        .arg(format!("of={}", ballast.display()))
        .stderr(Stdio::null())
        .status();
    let mut refused = 0;
    for n in 5..40 {
        let r = append(&client, &conversation, n).await;
        match r.status {
            201 => {
                let seq = r.json()["seq"].as_u64().unwrap();
                assert_eq!(seq, acked.len() as u64 + 1);
                acked.push((seq, n));
            }
            503 => {
                r.assert_error(503, "unavailable", None);
                if refused == 0 {
                    eprintln!("the first refusal: {}", r.text());
                }
                refused += 1;
            }
            _ => panic!("an append answered {}: {}", r.status, r.text()),
        }
    }
    assert!(refused > 0, "a full disk refused nothing");
    assert_eq!(server.client().get("/readyz").await.status, 503);
    // Stopped while the disk is still full, where sled's own shutdown cannot finish.
    let took = server.terminate();
    assert!(took < Duration::from_secs(3 + 2), "SIGTERM took {took:?}");
    std::fs::remove_file(&ballast).unwrap();
    eprintln!(
        "sled with the disk filled behind its back: {} acknowledged, {refused} refused with 503; \
         SIGTERM exit in {took:?} (shutdown timeout 3 s)",
        acked.len()
    );

    let server = Binary::start(&store, &with_timeouts(&["--min-free-space", "0"]));
    let r = server
        .client()
        .post(
            "/users/login",
            json!({"username": "filler", "password": "a long enough password"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let client = server
        .client()
        .with_token(r.json()["token"].as_str().unwrap());
    let r = client
        .get(&format!("/chat/conversations/{conversation}"))
        .await;
    // What was acknowledged is there; an append refused mid-flush may have reached the
    // disk too (a 503 is "not acknowledged", not "undone"), so only a lower bound holds.
    let count = r.json()["message_count"].as_u64().unwrap();
    assert!(count >= acked.len() as u64, "{count} < {}", acked.len());
    for (seq, n) in &acked {
        let r = client
            .get(&format!(
                "/chat/conversations/{conversation}/messages?after={}&limit=1",
                seq - 1
            ))
            .await;
        assert_eq!(
            r.json()[0]["content"].as_str(),
            Some(content(*n).as_str()),
            "seq {seq}"
        );
    }
    server.terminate();
}

/// A TCP proxy on loopback that can be cut (every connection dropped, new ones refused)
/// and restored.
struct Proxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(tokio::sync::watch::Sender::new(0u64));
        let (accepting, cuts) = (Arc::clone(&open), Arc::clone(&generation));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !accepting.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            open,
            generation,
        }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// PostgreSQL goes away under load and comes back: requests answer 503 within the pool's
/// acquire timeout (never 500, never a hang), `/readyz` says not ready, and the server
/// serves again by itself, with every acknowledged append kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_that_goes_away_is_503_and_comes_back() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let mut parsed = url::Url::parse(&url).unwrap();
    let upstream: SocketAddr = tokio::net::lookup_host((
        parsed.host_str().unwrap().to_owned(),
        parsed.port().unwrap_or(5432),
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let proxy = Proxy::start(upstream).await;
    parsed.set_ip_host(proxy.addr.ip()).unwrap();
    parsed.set_port(Some(proxy.addr.port())).unwrap();

    let schema = format!("faults_{}", uuid::Uuid::now_v7().simple());
    let mut options = chat_store_sql::PostgresOptions::default();
    options.schema = Some(schema.clone());
    options.acquire_timeout = Duration::from_secs(2);
    let store = chat_store_sql::PostgresStore::connect_with(parsed.as_str(), options)
        .await
        .unwrap();
    let service = ChatService::new(
        Arc::new(store),
        Sealer::new(1, MasterKey::generate()),
        service_config(),
    );
    let server = Server::start_app(chat_server::app(service, AppConfig::default())).await;
    let (client, conversation) = user_with_conversation(&server.client(), "outage").await;

    let mut acked = Vec::new();
    for n in 0..5 {
        let r = append(&client, &conversation, n).await;
        assert_eq!(r.status, 201, "{}", r.text());
        acked.push((r.json()["seq"].as_u64().unwrap(), n));
    }

    proxy.cut();
    let mut slowest = Duration::ZERO;
    for n in 5..8 {
        let started = Instant::now();
        let r = append(&client, &conversation, n).await;
        r.assert_error(503, "unavailable", None);
        assert!(r.header("retry-after").is_some());
        slowest = slowest.max(started.elapsed());
        assert!(slowest < Duration::from_secs(2 + 3), "took {slowest:?}");
    }
    let r = client
        .get(&format!("/chat/conversations/{conversation}"))
        .await;
    r.assert_error(503, "unavailable", None);
    let ready = server.client().get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text());

    proxy.restore();
    let restored = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(15);
    let r = loop {
        let r = append(&client, &conversation, 1_000).await;
        if r.status == 201 || Instant::now() > deadline {
            break r;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(r.status, 201, "the server did not come back: {}", r.text());
    eprintln!(
        "PostgreSQL cut: appends answered 503 in {slowest:?} at most (acquire timeout 2 s); \
         the first append after the proxy came back succeeded {:?} later",
        restored.elapsed()
    );
    let seq = r.json()["seq"].as_u64().unwrap();
    assert_eq!(seq, acked.len() as u64 + 1, "no refused append took a seq");
    acked.push((seq, 1_000));
    assert_eq!(server.client().get("/readyz").await.status, 200);
    assert_all_kept(&client, &conversation, &acked).await;

    server.stop().await;
    drop_schema(&url, &schema).await;
}

async fn drop_schema(url: &str, schema: &str) {
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
