//! Scale: the server's resident memory while a client pages through a large conversation
//! on sled and on SQLite, beside the same server's resident memory at rest once the data
//! is there.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_core::ConversationId;
use chat_store_sled::SledStore;
use chat_store_sql::SqliteStore;

use crate::loadgen::{Client, Req};
use crate::report::{Better, Report};
use crate::server::{Server, Session};
use crate::{Scale, StoreKind};

/// Resident memory of process `pid` in KiB, from `/proc`.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Fills, restarts, pages through and reports, for each of `stores` that is a file on this
/// machine (sled and SQLite).
pub async fn run(report: &mut Report, scale: &Scale, stores: &[StoreKind], binary: &Path) {
    for kind in stores {
        match kind {
            StoreKind::Sled => one(report, scale, binary, Filled::Sled).await,
            StoreKind::Sqlite => one(report, scale, binary, Filled::Sqlite).await,
            StoreKind::Postgres => {}
        }
    }
}

#[derive(Clone, Copy)]
enum Filled {
    Sled,
    Sqlite,
}

async fn one(report: &mut Report, scale: &Scale, binary: &Path, kind: Filled) {
    let name = match kind {
        Filled::Sled => "sled",
        Filled::Sqlite => "sqlite",
    };
    report.section(&format!("rss (chat-server on {name})"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let url = format!("{name}:{}", path.display());
    let server = Server::chat(name, binary, &url).await;
    let mut session = Session::new(server.addr).await;
    let id = session.conversation().await;
    server.stop().await;

    // The messages go in through the store's own layout, in batches or one statement: a
    // million POSTs would take longer than the rest of the benchmark.
    let started = Instant::now();
    let id: ConversationId = id.parse().unwrap();
    match kind {
        Filled::Sled => {
            let store = SledStore::open(&path).unwrap();
            let conversation = chat_core::Store::get_conversation(&store, id)
                .await
                .unwrap()
                .expect("the conversation");
            crate::store::sled_fill(&store, &conversation, scale.big);
        }
        Filled::Sqlite => {
            let store = SqliteStore::open(&path).await.unwrap();
            let conversation = chat_core::Store::get_conversation(&store, id)
                .await
                .unwrap()
                .expect("the conversation");
            store.close().await;
            let writer = sqlx::SqlitePool::connect_with(
                sqlx::sqlite::SqliteConnectOptions::new().filename(&path),
            )
            .await
            .unwrap();
            let n = i64::try_from(scale.big).unwrap();
            crate::store::sqlite_fill(&writer, id, conversation.user_id, n).await;
            writer.close().await;
        }
    }
    report.note(format!(
        "filled {} messages in {:.1} s",
        scale.big,
        started.elapsed().as_secs_f64()
    ));

    let server = Server::chat(name, binary, &url).await;
    let pid = server.pid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_rest = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(at_rest));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut client = Client::connect(server.addr, Some(&session.token))
        .await
        .unwrap();
    let (mut after, mut read) = (0u64, 0u64);
    let started = Instant::now();
    loop {
        let req = Req::get(format!(
            "/chat/conversations/{id}/messages?limit=1000&after={after}"
        ));
        let (status, body) = client.send(&req).await.unwrap();
        assert!(status.is_success(), "paging: {status}");
        let page: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        read += page.len() as u64;
        match page.last() {
            Some(m) => after = m["seq"].as_u64().unwrap(),
            None => break,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    assert_eq!(read, scale.big, "every message read");
    let peak = peak.load(Ordering::Relaxed);
    report.add(
        format!("peak RSS paging {} messages (pages of 1000)", scale.big),
        peak as f64 / 1024.0,
        "MiB",
        Better::Lower,
        "RSS at rest after start",
        at_rest as f64 / 1024.0,
        format!(
            "target: below 100 MiB; {:.0} messages/s read",
            read as f64 / elapsed
        ),
    );
    server.stop().await;
    drop(session);
}
