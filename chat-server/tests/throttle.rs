//! Login throttling and per-address limits, over real HTTP on a loopback port.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use chat_server::{AppConfig, Rate, ThrottleConfig};
use common::{Backing, Client, Kind, Resp, Server, service_config};
use serde_json::json;

/// A lock short enough for a test to outwait, and long enough that a loaded machine does
/// not outwait it by accident.
const LOCK: Duration = Duration::from_millis(500);

async fn start(kind: Kind, throttle: ThrottleConfig) -> Option<(Backing, Server)> {
    let backing = Backing::new(kind)?;
    let config = AppConfig {
        throttle,
        ..AppConfig::default()
    };
    let server = Server::start_with(&backing, service_config(), config).await;
    Some((backing, server))
}

fn short_locks() -> ThrottleConfig {
    ThrottleConfig {
        first_lock: LOCK,
        max_lock: LOCK * 4,
        ..ThrottleConfig::default()
    }
}

async fn login(c: &Client, username: &str, password: &str) -> Resp {
    c.post(
        "/users/login",
        json!({"username": username, "password": password}),
    )
    .await
}

#[track_caller]
fn assert_limited(r: &Resp) {
    r.assert_error(429, "rate_limited", None);
    let secs: u32 = r
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("whole seconds");
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
}

/// Five wrong passwords lock the username; during the lock even the right password is
/// refused without being checked, and such refusals do not count as failures; once the lock
/// is over the right password works and clears the count.
async fn lock_after_five_failures(kind: Kind) {
    let Some((backing, server)) = start(kind, short_locks()).await else {
        return;
    };
    server.user("alice").await;
    let c = server.client();
    for _ in 0..5 {
        login(&c, "alice", "wrong-password")
            .await
            .assert_error(401, "unauthorized", None);
    }
    let r = login(&c, "alice", "password-of-alice").await;
    assert_limited(&r);
    assert_eq!(r.header("retry-after"), Some("1"));
    // The body checks come first.
    c.post("/users/login", json!({"username": "alice"}))
        .await
        .assert_error(400, "invalid_input", Some("password"));
    // Attempts during the lock are not failures: they would otherwise lock it again.
    for _ in 0..5 {
        assert_limited(&login(&c, "alice", "wrong-password").await);
    }
    tokio::time::sleep(LOCK + Duration::from_millis(50)).await;
    let r = login(&c, "alice", "password-of-alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The success cleared the count: four more failures do not lock.
    for _ in 0..4 {
        login(&c, "alice", "wrong-password")
            .await
            .assert_error(401, "unauthorized", None);
    }
    let r = login(&c, "alice", "password-of-alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
    server.stop().await;
    backing.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_after_five_failures_memory() {
    lock_after_five_failures(Kind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_after_five_failures_sqlite() {
    lock_after_five_failures(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_after_five_failures_postgres() {
    lock_after_five_failures(Kind::Postgres).await;
}

/// A failure after a lock locks again for twice as long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_after_a_lock_doubles_the_next() {
    let (backing, server) = start(Kind::Memory, short_locks()).await.unwrap();
    server.user("bob").await;
    let c = server.client();
    for _ in 0..5 {
        login(&c, "bob", "wrong-password")
            .await
            .assert_error(401, "unauthorized", None);
    }
    assert_limited(&login(&c, "bob", "password-of-bob").await);
    tokio::time::sleep(LOCK + Duration::from_millis(50)).await;
    login(&c, "bob", "wrong-password")
        .await
        .assert_error(401, "unauthorized", None);
    // Longer than the first lock, shorter than the second.
    tokio::time::sleep(LOCK + Duration::from_millis(50)).await;
    assert_limited(&login(&c, "bob", "password-of-bob").await);
    tokio::time::sleep(LOCK).await;
    let r = login(&c, "bob", "password-of-bob").await;
    assert_eq!(r.status, 200, "{}", r.text());
    server.stop().await;
    backing.cleanup().await;
}

/// The username is compared ignoring case, for unknown names as for known ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_are_compared_ignoring_case() {
    let (backing, server) = start(Kind::Memory, ThrottleConfig::default())
        .await
        .unwrap();
    server.user("Carol").await;
    let c = server.client();
    for name in ["carol", "CAROL", "Carol", "cArOl", "caROL"] {
        login(&c, name, "wrong-password")
            .await
            .assert_error(401, "unauthorized", None);
    }
    assert_limited(&login(&c, "CaRoL", "password-of-Carol").await);
    for name in ["Nobody", "NOBODY", "nobody", "noBody", "nobodY"] {
        login(&c, name, "wrong-password")
            .await
            .assert_error(401, "unauthorized", None);
    }
    assert_limited(&login(&c, "NoBoDy", "wrong-password").await);
    // Another username is not affected.
    let r = login(&c, "dave", "wrong-password").await;
    r.assert_error(401, "unauthorized", None);
    server.stop().await;
    backing.cleanup().await;
}

fn per_address(limit_loopback: bool, trusted_proxies: Vec<IpAddr>) -> ThrottleConfig {
    ThrottleConfig {
        failed_logins: Rate {
            count: 3,
            per: Duration::from_secs(60),
        },
        registrations: Rate {
            count: 3,
            per: Duration::from_secs(60),
        },
        limit_loopback,
        trusted_proxies,
        ..ThrottleConfig::default()
    }
}

async fn register(c: &Client, username: &str, forwarded_for: Option<&str>) -> Resp {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(xff) = forwarded_for {
        headers.push(("x-forwarded-for", xff));
    }
    let body = json!({"username": username, "password": "long-enough-password"});
    c.send(
        "POST",
        "/users",
        &headers,
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .await
}

/// Registrations are limited per address once loopback is limited; the body checks come
/// first; without the flag loopback is not limited at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_limited_per_address() {
    let (backing, server) = start(Kind::Memory, per_address(true, vec![]))
        .await
        .unwrap();
    let c = server.client();
    for i in 0..3 {
        assert_eq!(register(&c, &format!("user{i}"), None).await.status, 201);
    }
    let r = register(&c, "user3", None).await;
    assert_limited(&r);
    assert!(r.header("retry-after").unwrap().parse::<u32>().unwrap() >= 20);
    c.post(
        "/users",
        json!({"username": "x", "password": "long-enough-password"}),
    )
    .await
    .assert_error(400, "invalid_input", Some("username"));
    server.stop().await;
    backing.cleanup().await;

    let (backing, server) = start(Kind::Memory, per_address(false, vec![]))
        .await
        .unwrap();
    let c = server.client();
    for i in 0..6 {
        assert_eq!(register(&c, &format!("user{i}"), None).await.status, 201);
    }
    server.stop().await;
    backing.cleanup().await;
}

/// Failed logins are limited per address whatever the usernames, the right password included
/// once the address is over its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_address() {
    let (backing, server) = start(Kind::Memory, per_address(true, vec![]))
        .await
        .unwrap();
    server.user("erin").await;
    let c = server.client();
    for name in ["frank", "grace", "heidi"] {
        login(&c, name, "wrong-password")
            .await
            .assert_error(401, "unauthorized", None);
    }
    assert_limited(&login(&c, "erin", "password-of-erin").await);
    server.stop().await;
    backing.cleanup().await;
}

/// `X-Forwarded-For` names the client only when the peer is a trusted proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_honoured_only_from_a_trusted_proxy() {
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    // The peer (loopback) is a trusted proxy: each forwarded client has its own bucket, and
    // loopback itself is not limited, so only the forwarded address can be.
    let (backing, server) = start(Kind::Memory, per_address(false, vec![loopback]))
        .await
        .unwrap();
    let c = server.client();
    for i in 0..3 {
        let r = register(&c, &format!("aa{i}"), Some("198.51.100.7, 203.0.113.5")).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    assert_limited(&register(&c, "aa3", Some("203.0.113.5")).await);
    // The entry a client wrote left of the proxy's is not believed.
    assert_limited(&register(&c, "aa4", Some("198.51.100.8, 203.0.113.5")).await);
    assert_eq!(register(&c, "bb0", Some("203.0.113.6")).await.status, 201);
    assert_eq!(register(&c, "cc0", None).await.status, 201);
    server.stop().await;
    backing.cleanup().await;

    // The peer is not trusted: the header changes nothing, every request is the peer's.
    let other: IpAddr = "10.9.9.9".parse().unwrap();
    let (backing, server) = start(Kind::Memory, per_address(true, vec![other]))
        .await
        .unwrap();
    let c = server.client();
    for i in 0..3 {
        let xff = format!("203.0.113.{i}");
        assert_eq!(
            register(&c, &format!("dd{i}"), Some(&xff)).await.status,
            201
        );
    }
    assert_limited(&register(&c, "dd3", Some("203.0.113.99")).await);
    server.stop().await;
    backing.cleanup().await;
}
