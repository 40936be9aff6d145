//! sled: `SledStore` beside raw sled writing the same keys and bytes, each append made
//! durable the same way (sled's flush, then `fdatasync` of its log file), and the same
//! range scans for pages.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chat_core::{Conversation, Message, MessageDraft, MessageOrder, Store, UserId};
use chat_store_sled::{SledConfig, SledStore, bench_support};
use sled::Transactional;

use super::{PAGE, SMALL, conversation, draft, micros, page_limit, page_orders, throughput};
use crate::Scale;
use crate::report::{Better, Report, median};

/// Raw sled with the store's trees and bytes: per append one transaction that bumps the
/// conversation row and writes the message and its id index, then sled's flush and
/// `fdatasync`, each writer flushing for itself.
#[derive(Clone)]
struct Raw {
    db: sled::Db,
    conversations: sled::Tree,
    messages: sled::Tree,
    message_ids: sled::Tree,
    file: Arc<File>,
}

impl Raw {
    fn open(path: &Path) -> Raw {
        let db = sled::Config::new()
            .path(path)
            .flush_every_ms(None)
            .open()
            .expect("raw sled");
        Raw {
            conversations: db.open_tree("conversations").unwrap(),
            messages: db.open_tree("messages").unwrap(),
            message_ids: db.open_tree("message_ids").unwrap(),
            file: Arc::new(File::open(path.join("db")).unwrap()),
            db,
        }
    }

    fn create(&self, c: &Conversation) {
        let mut row = bench_support::conversation_value(c);
        row[..8].copy_from_slice(&0u64.to_be_bytes());
        self.conversations.insert(c.id.to_bytes(), row).unwrap();
    }

    async fn append(&self, draft: MessageDraft) {
        let raw = self.clone();
        tokio::task::spawn_blocking(move || {
            let conv = draft.conversation_id.to_bytes();
            let id = draft.id.to_bytes();
            (&raw.conversations, &raw.messages, &raw.message_ids)
                .transaction(|(convs, messages, ids)| {
                    let mut row = convs.get(conv)?.unwrap().to_vec();
                    let seq = u64::from_be_bytes(row[..8].try_into().unwrap()) + 1;
                    row[..8].copy_from_slice(&seq.to_be_bytes());
                    let m = draft.clone().with_seq(seq);
                    convs.insert(&conv, row)?;
                    messages.insert(
                        &bench_support::message_key(&m),
                        bench_support::message_value(&m),
                    )?;
                    let mut pos = conv.to_vec();
                    pos.extend_from_slice(&seq.to_be_bytes());
                    pos.push(0);
                    ids.insert(&id, pos)?;
                    Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
                })
                .unwrap();
            raw.db.flush().unwrap();
            raw.file.sync_data().unwrap();
        })
        .await
        .unwrap();
    }
}

/// One round of appends through the store, in a fresh database under `dir`.
async fn store_round(dir: &Path, tasks: usize, per_task: usize) -> f64 {
    let store = SledConfig::new(dir.join("store")).open().unwrap();
    let u = super::user();
    store.create_user(&u).await.unwrap();
    let mut convs = Vec::new();
    for _ in 0..tasks {
        let c = conversation(u.id);
        store.create_conversation(&c).await.unwrap();
        convs.push(c.id);
    }
    let convs = Arc::new(convs);
    throughput(tasks, per_task, move |t, i| {
        let store = store.clone();
        let d = draft(convs[t], u.id, i);
        async move {
            store.append_message(d).await.unwrap();
        }
    })
    .await
}

/// One round of the same appends on raw sled, in a fresh database under `dir`.
async fn raw_round(dir: &Path, tasks: usize, per_task: usize) -> f64 {
    let raw = Raw::open(&dir.join("raw"));
    let user = UserId::new();
    let convs: Arc<Vec<Conversation>> = Arc::new(
        (0..tasks)
            .map(|_| {
                let c = conversation(user);
                raw.create(&c);
                c
            })
            .collect(),
    );
    raw.db.flush().unwrap();
    throughput(tasks, per_task, move |t, i| {
        let raw = raw.clone();
        let d = draft(convs[t].id, user, i);
        async move { raw.append(d).await }
    })
    .await
}

/// `fdatasync` alone: writes of 100 bytes, each to a page of its own in a file already
/// allocated (as sled's log segments are), each followed by `fdatasync`, on the same file
/// system. The floor under one durable append.
fn fdatasync_micros(dir: &Path, n: usize) -> f64 {
    use std::os::unix::fs::FileExt;
    let file = File::create(dir.join("fdatasync-probe")).unwrap();
    file.write_all_at(&vec![0u8; 4096 * (n + 1)], 0).unwrap();
    file.sync_all().unwrap();
    let started = Instant::now();
    for i in 0..n {
        file.write_all_at(&[7u8; 100], (4096 * i) as u64).unwrap();
        file.sync_data().unwrap();
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Durable appends from 1 task and from `scale.tasks`, then page reads.
pub async fn run(report: &mut Report, scale: &Scale) {
    report.section("store/sled");
    let alone = if scale.full { 1000 } else { 200 };
    let per_task = if scale.full { 60 } else { 20 };
    let dir = tempfile::tempdir().unwrap();
    let sync = fdatasync_micros(dir.path(), alone);
    report.note(format!(
        "fdatasync of a 100-byte append on this file system: {sync:.0} µs"
    ));
    for (tasks, per_task) in [(1, alone), (scale.tasks, per_task)] {
        let (mut store_rates, mut raw_rates) = (Vec::new(), Vec::new());
        for round in 0..scale.rounds {
            let dir = tempfile::tempdir().unwrap();
            // Which goes first alternates, so neither always meets the other's leftovers
            // (sled's background threads, the disk's queue).
            if round % 2 == 0 {
                store_rates.push(store_round(dir.path(), tasks, per_task).await);
                raw_rates.push(raw_round(dir.path(), tasks, per_task).await);
            } else {
                raw_rates.push(raw_round(dir.path(), tasks, per_task).await);
                store_rates.push(store_round(dir.path(), tasks, per_task).await);
            }
        }
        let s = median(store_rates);
        let name = format!("durable appends/s, {tasks} task(s)");
        let detail = format!("mean {:.0} µs per append per task", 1e6 * tasks as f64 / s);
        report.add(
            name,
            s,
            "/s",
            Better::Higher,
            "raw sled, flush+fdatasync per append",
            median(raw_rates),
            detail,
        );
    }
    pages(report, scale).await;
}

/// Fills a conversation with `n` messages through the store's key layout, in batches.
pub fn fill(store: &SledStore, c: &Conversation, n: u64) {
    const BATCH: u64 = 20_000;
    let mut seq = 1;
    while seq <= n {
        let end = (seq + BATCH - 1).min(n);
        let batch: Vec<Message> = (seq..=end)
            .map(|s| draft(c.id, c.user_id, s as usize).with_seq(s))
            .collect();
        store.bench_bulk_append(c.id, &batch).unwrap();
        seq = end + 1;
    }
}

/// The same page as `order` through a raw range scan of the messages tree.
fn raw_page(messages: &sled::Tree, c: &Conversation, order: MessageOrder) -> usize {
    let id = c.id.to_bytes();
    let key = |seq: u64| {
        let mut k = id.to_vec();
        k.extend_from_slice(&seq.to_be_bytes());
        k
    };
    let rows: Vec<_> = match order {
        MessageOrder::Descending { before } => messages
            .range(key(0)..key(before.unwrap_or(u64::MAX)))
            .rev()
            .take(PAGE as usize)
            .map(|kv| kv.unwrap())
            .collect(),
        MessageOrder::Ascending { after } => messages
            .range(key(after.unwrap_or(0) + 1)..=key(u64::MAX))
            .take(PAGE as usize)
            .map(|kv| kv.unwrap())
            .collect(),
    };
    rows.len()
}

async fn pages(report: &mut Report, scale: &Scale) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let u = super::user();
    store.create_user(&u).await.unwrap();
    let mut convs = Vec::new();
    let started = Instant::now();
    for size in [SMALL, scale.big] {
        let c = conversation(u.id);
        store.create_conversation(&c).await.unwrap();
        fill(&store, &c, size);
        convs.push((size, c));
    }
    report.note(format!(
        "filled conversations of {SMALL} and {} messages in {:.1} s",
        scale.big,
        started.elapsed().as_secs_f64()
    ));
    let messages = store.bench_db().open_tree("messages").unwrap();
    let reads = if scale.full { 2000 } else { 500 };
    let mut newest = Vec::new();
    for (size, c) in &convs {
        for (what, order) in page_orders(*size) {
            let (mut s, mut r) = (Vec::new(), Vec::new());
            // The first round warms caches and is not counted.
            for round in 0..=scale.rounds {
                s.push(
                    micros(reads, async || {
                        let page = store.list_messages(c.id, order, page_limit()).await;
                        assert_eq!(page.unwrap().len(), PAGE as usize);
                    })
                    .await,
                );
                r.push(
                    micros(reads, async || {
                        assert_eq!(raw_page(&messages, c, order), PAGE as usize);
                    })
                    .await,
                );
                if round == 0 {
                    s.clear();
                    r.clear();
                }
            }
            let s = median(s);
            if what == "newest page" {
                newest.push(s);
            }
            report.add(
                format!("{what} of {PAGE}, {size} messages"),
                s,
                "µs",
                Better::Lower,
                "raw sled range scan",
                median(r),
                "",
            );
        }
    }
    report.add(
        format!("newest page, {} messages", scale.big),
        newest[1],
        "µs",
        Better::Lower,
        format!("the same from {SMALL}"),
        newest[0],
        "target: ×0.67 or better (within 1.5×)",
    );
}
