//! Appends per second and newest-page reads of `SledStore`, each beside raw sled doing the
//! same writes or reads in the same run. `cargo bench -p chat-store-sled`.
//!
//! Figures are medians of several rounds; the machine is shared, so read the ratios more
//! than the absolute numbers.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chat_core::{
    Conversation, ConversationId, Limit, Message, MessageDraft, MessageId, MessageOrder,
    PasswordHash, Role, Store, User, UserId, time,
};
use chat_store_sled::{SledConfig, SledStore, bench_support};
use sled::Transactional;

const ROUNDS: usize = 5;
const APPENDS_ALONE: usize = 1000;
const APPEND_TASKS: usize = 32;
const APPENDS_PER_TASK: usize = 60;
const PAGE: u64 = 50;
const PAGE_READS: usize = 2000;
const BIG: u64 = 1_000_000;
const SMALL: u64 = 1_000;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// "lowest–highest", to show how noisy the rounds were.
fn spread(xs: &[f64]) -> String {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.0}–{hi:.0}")
}

fn user() -> User {
    User {
        id: UserId::new(),
        username: format!("b{}", UserId::new().to_string().replace('-', "")),
        email: None,
        password_hash: PasswordHash("x".into()),
        created_at: time::now(),
    }
}

fn conversation(user: UserId) -> Conversation {
    let now = time::now();
    Conversation {
        id: ConversationId::new(),
        user_id: user,
        title: "bench".into(),
        created_at: now,
        updated_at: now,
        message_count: 0,
    }
}

fn draft(c: &Conversation, i: usize) -> MessageDraft {
    MessageDraft {
        id: MessageId::new(),
        conversation_id: c.id,
        user_id: c.user_id,
        role: Role::User,
        content: format!("benchmark message number {i}, of a typical short length"),
        metadata: None,
        created_at: time::now(),
    }
}

/// Raw sled with the store's trees and bytes: per append one transaction that bumps the
/// conversation row and writes the message and its id index, then sled's flush and (like
/// the store by default) `fdatasync`, each writer flushing for itself.
#[derive(Clone)]
struct Raw {
    db: sled::Db,
    conversations: sled::Tree,
    messages: sled::Tree,
    message_ids: sled::Tree,
    file: Option<Arc<File>>,
}

impl Raw {
    fn open(path: &Path, sync_data: bool) -> Raw {
        let db = sled::open(path).unwrap();
        Raw {
            conversations: db.open_tree("conversations").unwrap(),
            messages: db.open_tree("messages").unwrap(),
            message_ids: db.open_tree("message_ids").unwrap(),
            file: sync_data.then(|| Arc::new(File::open(path.join("db")).unwrap())),
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
            if let Some(file) = &raw.file {
                file.sync_data().unwrap();
            }
        })
        .await
        .unwrap();
    }
}

/// Appends per second from `tasks` tasks, each on a conversation of its own.
async fn appends_per_second<F, Fut>(tasks: usize, per_task: usize, append: F) -> f64
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let append = Arc::new(append);
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let append = Arc::clone(&append);
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                append(t, i).await;
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    (tasks * per_task) as f64 / start.elapsed().as_secs_f64()
}

/// One round of appends through the store, in a fresh database under `dir`.
async fn store_round(dir: &Path, sync_data: bool, tasks: usize, per_task: usize) -> f64 {
    let store = SledConfig::new(dir.join("store"))
        .sync_data(sync_data)
        .open()
        .unwrap();
    let u = user();
    store.create_user(&u).await.unwrap();
    let mut convs = Vec::new();
    for _ in 0..tasks {
        let c = conversation(u.id);
        store.create_conversation(&c).await.unwrap();
        convs.push(c);
    }
    let convs = Arc::new(convs);
    appends_per_second(tasks, per_task, move |t, i| {
        let store = store.clone();
        let d = draft(&convs[t], i);
        async move {
            store.append_message(d).await.unwrap();
        }
    })
    .await
}

/// One round of the same appends on raw sled, in a fresh database under `dir`.
async fn raw_round(dir: &Path, sync_data: bool, tasks: usize, per_task: usize) -> f64 {
    let raw = Raw::open(&dir.join("raw"), sync_data);
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
    appends_per_second(tasks, per_task, move |t, i| {
        let raw = raw.clone();
        let d = draft(&convs[t], i);
        async move { raw.append(d).await }
    })
    .await
}

async fn bench_appends(sync_data: bool) {
    let label = if sync_data {
        "flush + fdatasync (default)"
    } else {
        "sled flush only"
    };
    println!("\nappends/s, {label}: median of {ROUNDS} rounds");
    for (tasks, per_task) in [(1, APPENDS_ALONE), (APPEND_TASKS, APPENDS_PER_TASK)] {
        let mut store_rates = Vec::new();
        let mut raw_rates = Vec::new();
        for round in 0..ROUNDS {
            let dir = tempfile::tempdir().unwrap();
            // Which goes first alternates, so neither always meets the other's leftovers
            // (sled's background threads, the disk's queue).
            if round % 2 == 0 {
                store_rates.push(store_round(dir.path(), sync_data, tasks, per_task).await);
                raw_rates.push(raw_round(dir.path(), sync_data, tasks, per_task).await);
            } else {
                raw_rates.push(raw_round(dir.path(), sync_data, tasks, per_task).await);
                store_rates.push(store_round(dir.path(), sync_data, tasks, per_task).await);
            }
        }
        let (s_spread, r_spread) = (spread(&store_rates), spread(&raw_rates));
        let (s, r) = (median(store_rates), median(raw_rates));
        println!(
            "  {tasks:>2} task(s): store {s:>6.0}/s ({s_spread})   raw sled {r:>6.0}/s ({r_spread})   store/raw {:.2}",
            s / r
        );
    }
}

/// Fills a conversation with `n` messages through the store's key layout, in batches.
fn fill(store: &SledStore, c: &Conversation, n: u64) {
    const BATCH: u64 = 20_000;
    let mut seq = 1;
    while seq <= n {
        let end = (seq + BATCH - 1).min(n);
        let batch: Vec<Message> = (seq..=end)
            .map(|s| draft(c, s as usize).with_seq(s))
            .collect();
        store.bench_bulk_append(c.id, &batch).unwrap();
        seq = end + 1;
    }
}

/// Microseconds per newest page through the store, and through a raw sled range scan.
async fn page_micros(store: &SledStore, c: &Conversation) -> (f64, f64) {
    let limit = Limit::new(PAGE).unwrap();
    let newest = MessageOrder::Descending { before: None };
    let start = Instant::now();
    for _ in 0..PAGE_READS {
        let page = store.list_messages(c.id, newest, limit).await.unwrap();
        assert_eq!(page.len(), PAGE as usize);
    }
    let via_store = start.elapsed().as_secs_f64() * 1e6 / PAGE_READS as f64;

    let messages = store.bench_db().open_tree("messages").unwrap();
    let mut upper = c.id.to_bytes().to_vec();
    upper.extend_from_slice(&[0xff; 8]);
    let start = Instant::now();
    for _ in 0..PAGE_READS {
        let n = messages
            .range(c.id.to_bytes().as_slice()..=upper.as_slice())
            .rev()
            .take(PAGE as usize)
            .map(|kv| kv.unwrap())
            .collect::<Vec<_>>()
            .len();
        assert_eq!(n, PAGE as usize);
    }
    let raw = start.elapsed().as_secs_f64() * 1e6 / PAGE_READS as f64;
    (via_store, raw)
}

async fn bench_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let u = user();
    store.create_user(&u).await.unwrap();
    let big = conversation(u.id);
    store.create_conversation(&big).await.unwrap();
    let started = Instant::now();
    fill(&store, &big, BIG);
    println!(
        "\nfilled a conversation of {BIG} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let small = conversation(u.id);
    store.create_conversation(&small).await.unwrap();
    fill(&store, &small, SMALL);

    println!("newest page of {PAGE}, µs per page: median of {ROUNDS} rounds of {PAGE_READS} reads");
    // Rounds alternate between the two conversations, so that whatever the machine is
    // doing meanwhile weighs on both alike.
    let sizes = [(SMALL, &small), (BIG, &big)];
    let mut via_store = [Vec::new(), Vec::new()];
    let mut raw = [Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        for (i, (_, c)) in sizes.iter().enumerate() {
            let (s, r) = page_micros(&store, c).await;
            via_store[i].push(s);
            raw[i].push(r);
        }
    }
    let mut results = Vec::new();
    for (i, (n, _)) in sizes.iter().enumerate() {
        let (s, r) = (median(via_store[i].clone()), median(raw[i].clone()));
        println!("  {n:>9} messages: store {s:>7.1} µs   raw sled range {r:>7.1} µs");
        results.push(s);
    }
    println!(
        "  1,000,000 vs 1,000: {:.2}× (target: within 1.5×)",
        results[1] / results[0]
    );

    // Not a target, but worth knowing: the delete itself is one small transaction; the
    // purge of what the conversation held follows in transactions of bounded size.
    let started = Instant::now();
    assert!(store.delete_conversation(big.id).await.unwrap());
    println!(
        "\ndeleting the {BIG}-message conversation, purge included: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let left = store
        .list_messages(big.id, MessageOrder::default(), Limit::MAX)
        .await
        .unwrap();
    assert!(left.is_empty());
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (a filter) is ignored on purpose.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    runtime.block_on(async {
        bench_appends(true).await;
        bench_appends(false).await;
        bench_pages().await;
    });
    println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
}
