//! Requests whose clients go away before the answer, over real sockets: password hashing
//! stays bounded in memory however many logins and registrations are abandoned, and every
//! abandoned request still leaves its log line.

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use chat_core::accounts::PasswordCost;
use chat_core::{NewUser, ServiceConfig};
use chat_server::AppConfig;
use common::{Backing, Captured, Kind, Server, service_config};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Sends `POST path` with `body` and closes the connection `after` later, before the answer.
async fn abandon(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
    id: &str,
    after: Duration,
) {
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nx-request-id: {id}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(after).await;
}

/// A field of this process's `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_logins_and_registrations_keep_memory_bounded() {
    log();
    // 8 MiB a hash: small enough for a test, large enough to see.
    let cost = PasswordCost {
        memory_kib: 8 * 1024,
        iterations: 1,
        parallelism: 1,
    };
    let hashes = 2;
    let backing = Backing::new(Kind::Memory).unwrap();
    let config = ServiceConfig {
        password_cost: cost,
        max_concurrent_hashes: hashes,
        ..service_config()
    };
    let server = Server::start_with(&backing, config, AppConfig::default()).await;
    let ada = NewUser::parse("ada", "password-of-ada", None).unwrap();
    server.app.service().register(ada).await.unwrap();
    let before = status_kib("VmRSS");

    let mut clients = Vec::new();
    for n in 0..100 {
        let addr = server.addr;
        clients.push(tokio::spawn(async move {
            let (path, body) = if n % 2 == 0 {
                (
                    "/users/login",
                    json!({"username": "ada", "password": format!("guess-{n}")}),
                )
            } else {
                (
                    "/users",
                    json!({"username": format!("user{n}"), "password": "password-123"}),
                )
            };
            abandon(
                addr,
                path,
                &body,
                &format!("gone-{n}"),
                Duration::from_millis(2),
            )
            .await;
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    // A login that waits for its turn: when it is answered, the abandoned work is done.
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        server.client().post(
            "/users/login",
            json!({"username": "ada", "password": "password-of-ada"}),
        ),
    )
    .await
    .expect("a login after the flood is answered");
    assert_eq!(r.status, 200, "{}", r.text());
    let peak = status_kib("VmHWM");
    server.stop().await;

    // Each hashing thread holds one hash's memory, plus room for the allocator and the
    // connections. (Before the hashing threads, this grew by about 100 MiB.)
    let bound = hashes as u64 * u64::from(cost.memory_kib) + 24 * 1024;
    let grew = peak.saturating_sub(before);
    eprintln!("resident before: {before} KiB, peak: {peak} KiB, grew: {grew} KiB");
    assert!(
        grew <= bound,
        "resident memory grew by {grew} KiB under 100 abandoned requests (bound {bound} KiB)"
    );
    // Every abandoned request left its line, naming its route even when hyper dropped it
    // before it ever ran.
    for n in 0..100 {
        let line = line_with(log(), &format!("request_id=gone-{n} ")).await;
        assert!(line.contains("route=\"/users"), "{line}");
    }
}

/// The first line of `log` holding `needle`, waiting up to five seconds for it.
async fn line_with(log: &Captured, needle: &str) -> String {
    let text = || String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    for _ in 0..100 {
        if let Some(line) = text().lines().find(|l| l.contains(needle)) {
            return line.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no line with {needle:?} in the log:\n{}", text())
}

/// This binary's log. A global subscriber, set before any test logs: a scoped one
/// (`set_default`) can miss events while other tests log from other threads.
fn log() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_request_still_gets_its_log_line() {
    let captured = log();
    // A hash slow enough that the client is gone before it ends, in little memory, so as
    // not to disturb the measure of the test beside this one.
    let config = ServiceConfig {
        password_cost: PasswordCost {
            memory_kib: 2 * 1024,
            iterations: 32,
            parallelism: 1,
        },
        max_concurrent_hashes: 1,
        ..service_config()
    };
    let backing = Backing::new(Kind::Memory).unwrap();
    let server = Server::start_with(&backing, config, AppConfig::default()).await;
    let body = json!({"username": "nobody", "password": "a guess"});
    abandon(
        server.addr,
        "/users/login",
        &body,
        "gone-away-1",
        Duration::from_millis(20),
    )
    .await;

    let line = line_with(captured, "request_id=gone-away-1 ").await;
    assert!(line.contains("status=499"), "{line}");
    assert!(line.contains("route=\"/users/login\""), "{line}");
    assert!(line.contains("method=POST"), "{line}");
    assert!(!line.contains("a guess"), "{line}");
    server.stop().await;
}
