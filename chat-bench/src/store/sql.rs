//! Throughput and page latency of the SQL stores beside raw sqlx doing the same work.
//!
//! Run with `cargo bench -p chat-store-sql`. PostgreSQL is measured when
//! `CHAT_BENCH_POSTGRES_URL` or `CHAT_TEST_POSTGRES_URL` is set. Prints medians of several
//! rounds and the ratios; nothing is asserted, since timings belong to the machine.
//!
//! - appends per second from 1 task and from 32 tasks (each on its own conversation, as
//!   32 users would be), against a raw baseline that inserts the same message rows with
//!   one autocommit `INSERT … RETURNING seq` each, stepped to its end as the store does
//!   (`fetch_all`: sqlx-sqlite's `fetch_optional` stops at the first row, before SQLite
//!   commits, so it would time writes whose commit is never checked), and keeps `seq` in a
//!   local counter, which is only right
//!   for a single process (in SQLite the schema's trigger still moves the conversation's
//!   counters for it; in PostgreSQL the baseline skips that update);
//! - the newest page of 50 messages from a conversation of 1,000 and one of 1,000,000,
//!   against the same SELECT through raw sqlx.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{
    Conversation, ConversationId, Limit, MessageDraft, MessageId, MessageOrder, PasswordHash, Role,
    Store, User, UserId,
};
use chat_store_sql::{PostgresOptions, PostgresStore, SqliteStore};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

const ROUNDS: usize = 9;
const CONCURRENT_TASKS: usize = 32;
const PAGE: u64 = 50;
const SMALL: i64 = 1_000;
const LARGE: i64 = 1_000_000;
const PAGE_READS: usize = 100;

type Job = Arc<dyn Fn(usize, usize) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

fn main() {
    // Cargo passes --bench under `cargo bench`; `cargo test --all-targets` runs this binary
    // without it, and a benchmark has no business running there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("store benchmark: skipped (run it with `cargo bench -p chat-store-sql`)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    rt.block_on(async {
        sqlite().await;
        match std::env::var("CHAT_BENCH_POSTGRES_URL")
            .or_else(|_| std::env::var("CHAT_TEST_POSTGRES_URL"))
        {
            Ok(url) if !url.is_empty() => postgres(&url).await,
            _ => println!(
                "\nPostgreSQL: skipped (set CHAT_TEST_POSTGRES_URL, e.g. from \
                 scripts/postgres-test-db.sh)"
            ),
        }
    });
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Runs `job(task, i)` for `per_task` values of `i` in each of `tasks` tasks at once;
/// answers operations per second.
async fn throughput(tasks: usize, per_task: usize, job: &Job) -> f64 {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let job = Arc::clone(job);
        set.spawn(async move {
            for i in 0..per_task {
                job(t, i).await;
            }
        });
    }
    set.join_all().await;
    (tasks * per_task) as f64 / started.elapsed().as_secs_f64()
}

/// Mean time of one call of `read`, over `PAGE_READS` calls.
async fn latency(read: impl AsyncFn()) -> Duration {
    let started = Instant::now();
    for _ in 0..PAGE_READS {
        read().await;
    }
    started.elapsed() / PAGE_READS as u32
}

struct Report {
    name: String,
    lines: Vec<String>,
}

impl Report {
    fn appends(&mut self, tasks: usize, store: f64, raw: f64, ratio: f64) {
        self.lines.push(format!(
            "  appends/s from {tasks:>2} task(s):  store {store:>8.0}   raw {raw:>8.0}   \
             store/raw {:>4.0}%",
            100.0 * ratio
        ));
    }

    fn page(&mut self, size: i64, store: f64, raw: f64, ratio: f64) {
        self.lines.push(format!(
            "  newest {PAGE} of {size:>9}:  store {store:>6.0} µs  raw {raw:>6.0} µs   \
             speed vs raw {:>4.0}%",
            100.0 * ratio
        ));
    }

    fn print(&self) {
        println!("\n{}", self.name);
        for line in &self.lines {
            println!("{line}");
        }
    }
}

fn user() -> User {
    User {
        id: UserId::new(),
        username: format!("bench{}", Uuid::now_v7().simple()),
        email: None,
        password_hash: PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at: chat_core::time::now(),
    }
}

async fn conversations(store: &dyn Store, owner: UserId, n: usize) -> Vec<ConversationId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let now = chat_core::time::now();
        let c = Conversation {
            id: ConversationId::new(),
            user_id: owner,
            title: "bench".into(),
            created_at: now,
            updated_at: now,
            message_count: 0,
        };
        store
            .create_conversation(&c)
            .await
            .expect("create_conversation");
        ids.push(c.id);
    }
    ids
}

fn store_append_job(store: Arc<dyn Store>, owner: UserId, convs: Arc<Vec<ConversationId>>) -> Job {
    Arc::new(move |t, i| {
        let store = Arc::clone(&store);
        let conversation_id = convs[t];
        Box::pin(async move {
            store
                .append_message(MessageDraft {
                    id: MessageId::new(),
                    conversation_id,
                    user_id: owner,
                    role: Role::User,
                    content: format!("message {i} of task {t}, a sentence of ordinary length"),
                    metadata: None,
                    created_at: chat_core::time::now(),
                })
                .await
                .expect("append_message");
        })
    })
}

/// Appends through the store and through `raw`, one right after the other in every round
/// and taking turns at going first, so that the machine's changing load (other builds on a
/// shared machine) touches both alike; the ratio is the median of the rounds' ratios.
async fn compare_appends(
    report: &mut Report,
    store: Arc<dyn Store>,
    owner: UserId,
    raw: impl Fn(Arc<Vec<ConversationId>>) -> Job,
    tasks: usize,
    per_task: usize,
) {
    let (mut s, mut r, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Fresh conversations every round, so the raw seq counters start at 1.
        let store_job = store_append_job(
            Arc::clone(&store),
            owner,
            Arc::new(conversations(&*store, owner, tasks).await),
        );
        let raw_job = raw(Arc::new(conversations(&*store, owner, tasks).await));
        let (a, b) = if round % 2 == 0 {
            let a = throughput(tasks, per_task, &store_job).await;
            (a, throughput(tasks, per_task, &raw_job).await)
        } else {
            let b = throughput(tasks, per_task, &raw_job).await;
            (throughput(tasks, per_task, &store_job).await, b)
        };
        s.push(a);
        r.push(b);
        ratios.push(a / b);
    }
    report.appends(tasks, median(s), median(r), median(ratios));
}

/// Median time of the newest page through the store and through `raw`, measured as
/// [`compare_appends`] measures; answers the store's median in µs.
async fn compare_pages(
    report: &mut Report,
    size: i64,
    store: &dyn Store,
    conversation: ConversationId,
    raw: impl AsyncFn(),
) -> f64 {
    let through_store = async || {
        let page = store
            .list_messages(
                conversation,
                MessageOrder::Descending { before: None },
                Limit::new(PAGE).unwrap(),
            )
            .await
            .expect("list_messages");
        assert_eq!(page.len() as u64, PAGE);
    };
    let (mut s, mut r, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (a, b) = if round % 2 == 0 {
            let a = latency(&through_store).await;
            (a, latency(&raw).await)
        } else {
            let b = latency(&raw).await;
            (latency(&through_store).await, b)
        };
        let (a, b) = (a.as_secs_f64() * 1e6, b.as_secs_f64() * 1e6);
        s.push(a);
        r.push(b);
        ratios.push(b / a);
    }
    let store_median = median(s);
    report.page(size, store_median, median(r), median(ratios));
    store_median
}

// ----- SQLite -----

async fn sqlite() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bench.sqlite3");
    let store = SqliteStore::open(&path).await.expect("open");
    let store: Arc<dyn Store> = Arc::new(store);
    let owner = user();
    store.create_user(&owner).await.unwrap();

    // The baseline gets the store's settings and pool layout (one writer, four readers, no
    // ping before use), the best a hand-written sqlx program on SQLite would do.
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(options.clone())
        .await
        .unwrap();
    let reader = SqlitePoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .unwrap();

    let mut report = Report {
        name: "SQLite (WAL, synchronous = NORMAL, one writer connection)".into(),
        lines: Vec::new(),
    };
    let raw = |convs: Arc<Vec<ConversationId>>| -> Job {
        let writer = writer.clone();
        let counters: Arc<Vec<std::sync::atomic::AtomicI64>> =
            Arc::new((0..convs.len()).map(|_| Default::default()).collect());
        Arc::new(move |t, i| {
            let writer = writer.clone();
            let conversation = Uuid::from(convs[t]);
            let seq = counters[t].fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let owner = Uuid::from(owner.id);
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO messages
                         (id, conversation_id, user_id, seq, role, content, metadata, created_at)
                     VALUES (?1, ?2, ?3, ?4, 'user', ?5, NULL, ?6) RETURNING seq",
                )
                .bind(Uuid::now_v7())
                .bind(conversation)
                .bind(owner)
                .bind(seq)
                .bind(format!(
                    "message {i} of task {t}, a sentence of ordinary length"
                ))
                .bind(chat_core::time::now().timestamp_micros())
                .fetch_all(&writer)
                .await
                .expect("raw insert");
            })
        })
    };
    compare_appends(&mut report, Arc::clone(&store), owner.id, raw, 1, 400).await;
    compare_appends(
        &mut report,
        Arc::clone(&store),
        owner.id,
        raw,
        CONCURRENT_TASKS,
        20,
    )
    .await;

    let started = Instant::now();
    let small = sqlite_fill(&writer, owner.id, &*store, SMALL).await;
    let large = sqlite_fill(&writer, owner.id, &*store, LARGE).await;
    sqlx::query("ANALYZE").execute(&writer).await.unwrap();
    // The fill left a WAL the size of the data; readers would otherwise measure their way
    // through it rather than the steady state a server runs in.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&writer)
        .await
        .unwrap();
    let fill = started.elapsed();

    let mut times = Vec::new();
    for (size, conversation) in [(SMALL, small), (LARGE, large)] {
        let raw = async || {
            type Row = (Uuid, Uuid, Uuid, i64, String, String, Option<String>, i64);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, conversation_id, user_id, seq, role, content, metadata, created_at
                     FROM messages WHERE conversation_id = ?1 AND seq < ?2
                     ORDER BY seq DESC LIMIT ?3",
            )
            .bind(Uuid::from(conversation))
            .bind(i64::MAX)
            .bind(PAGE as i64)
            .fetch_all(&reader)
            .await
            .expect("raw page");
            assert_eq!(rows.len() as u64, PAGE);
        };
        times.push(compare_pages(&mut report, size, &*store, conversation, raw).await);
    }
    report.lines.push(format!(
        "  newest page, 1,000,000 vs 1,000 messages (store): {:.2}×   (filled in {:.1} s)",
        times[1] / times[0],
        fill.as_secs_f64()
    ));
    report.print();
}

/// A conversation of `n` messages, written in one statement.
async fn sqlite_fill(
    writer: &sqlx::SqlitePool,
    owner: UserId,
    store: &dyn Store,
    n: i64,
) -> ConversationId {
    let conversation = conversations(store, owner, 1).await[0];
    // Ids: a random 8-byte prefix and the big-endian position, so the id index fills in
    // order as a real conversation's UUIDv7s would.
    let prefix = &Uuid::now_v7().simple().to_string()[..16];
    let t0 = chat_core::time::now().timestamp_micros();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO messages
             (id, conversation_id, user_id, seq, role, content, metadata, created_at)
         SELECT unhex(printf('%s%016x', ?2, i)), ?3, ?4, i,
                CASE i % 2 WHEN 0 THEN 'assistant' ELSE 'user' END,
                'message ' || i || ', a sentence of ordinary length', NULL, ?5 + i
         FROM n",
    )
    .bind(n)
    .bind(prefix)
    .bind(Uuid::from(conversation))
    .bind(Uuid::from(owner))
    .bind(t0)
    .execute(writer)
    .await
    .expect("filling a conversation");
    sqlx::query("UPDATE conversations SET last_seq = ?1, message_count = ?1 WHERE id = ?2")
        .bind(n)
        .bind(Uuid::from(conversation))
        .execute(writer)
        .await
        .unwrap();
    conversation
}

// ----- PostgreSQL -----

async fn postgres(url: &str) {
    let schema = format!("chat_bench_{}", std::process::id());
    let mut options = PostgresOptions::default();
    options.schema = Some(schema.clone());
    options.max_connections = 16;
    let store = PostgresStore::connect_with(url, options)
        .await
        .expect("connect");
    let store: Arc<dyn Store> = Arc::new(store.clone());
    let owner = user();
    store.create_user(&owner).await.unwrap();

    let connect: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let raw_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect_with(connect.options([("search_path", schema.as_str())]))
        .await
        .unwrap();

    let mut report = Report {
        name: "PostgreSQL (pool of 16, synchronous_commit as the server has it)".into(),
        lines: Vec::new(),
    };
    let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&raw_pool)
        .await
        .unwrap();
    report.name = format!("PostgreSQL (pool of 16, synchronous_commit = {sync})");
    let raw = |convs: Arc<Vec<ConversationId>>| -> Job {
        let pool = raw_pool.clone();
        let counters: Arc<Vec<std::sync::atomic::AtomicI64>> =
            Arc::new((0..convs.len()).map(|_| Default::default()).collect());
        Arc::new(move |t, i| {
            let pool = pool.clone();
            let conversation = Uuid::from(convs[t]);
            let seq = counters[t].fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let owner = Uuid::from(owner.id);
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO messages
                         (id, conversation_id, user_id, seq, role, content, metadata, created_at)
                     VALUES ($1, $2, $3, $4, 'user', $5, NULL, $6) RETURNING seq",
                )
                .bind(Uuid::now_v7())
                .bind(conversation)
                .bind(owner)
                .bind(seq)
                .bind(format!(
                    "message {i} of task {t}, a sentence of ordinary length"
                ))
                .bind(chat_core::time::now())
                .fetch_optional(&pool)
                .await
                .expect("raw insert");
            })
        })
    };
    compare_appends(&mut report, Arc::clone(&store), owner.id, raw, 1, 100).await;
    compare_appends(
        &mut report,
        Arc::clone(&store),
        owner.id,
        raw,
        CONCURRENT_TASKS,
        10,
    )
    .await;

    let started = Instant::now();
    let small = postgres_fill(&raw_pool, owner.id, &*store, SMALL).await;
    let large = postgres_fill(&raw_pool, owner.id, &*store, LARGE).await;
    sqlx::query("VACUUM ANALYZE messages")
        .execute(&raw_pool)
        .await
        .unwrap();
    let fill = started.elapsed();

    let mut times = Vec::new();
    for (size, conversation) in [(SMALL, small), (LARGE, large)] {
        let raw = async || {
            type Row = (
                Uuid,
                Uuid,
                Uuid,
                i64,
                String,
                String,
                Option<String>,
                chrono::DateTime<chrono::Utc>,
            );
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, conversation_id, user_id, seq, role, content,
                        metadata::text AS metadata, created_at
                 FROM messages WHERE conversation_id = $1 AND seq < $2
                 ORDER BY seq DESC LIMIT $3",
            )
            .bind(Uuid::from(conversation))
            .bind(i64::MAX)
            .bind(PAGE as i64)
            .fetch_all(&raw_pool)
            .await
            .expect("raw page");
            assert_eq!(rows.len() as u64, PAGE);
        };
        times.push(compare_pages(&mut report, size, &*store, conversation, raw).await);
    }
    report.lines.push(format!(
        "  newest page, 1,000,000 vs 1,000 messages (store): {:.2}×   (filled in {:.1} s)",
        times[1] / times[0],
        fill.as_secs_f64()
    ));
    report.print();

    raw_pool.close().await;
    drop(store);
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await
        .expect("dropping the benchmark's schema");
}

/// A conversation of `n` messages, written in one statement.
async fn postgres_fill(
    pool: &sqlx::PgPool,
    owner: UserId,
    store: &dyn Store,
    n: i64,
) -> ConversationId {
    let conversation = conversations(store, owner, 1).await[0];
    // Ids: a random prefix and the position, so the id index fills in order as a real
    // conversation's UUIDv7s would.
    let prefix = &Uuid::now_v7().hyphenated().to_string()[..24];
    sqlx::query(
        "INSERT INTO messages
             (id, conversation_id, user_id, seq, role, content, metadata, created_at)
         SELECT ($2 || lpad(to_hex(i), 12, '0'))::uuid, $3, $4, i,
                CASE i % 2 WHEN 0 THEN 'assistant' ELSE 'user' END,
                'message ' || i || ', a sentence of ordinary length', NULL,
                now() + i * interval '1 microsecond'
         FROM generate_series(1, $1::bigint) AS i",
    )
    .bind(n)
    .bind(prefix)
    .bind(Uuid::from(conversation))
    .bind(Uuid::from(owner))
    .execute(pool)
    .await
    .expect("filling a conversation");
    sqlx::query("UPDATE conversations SET last_seq = $1, message_count = $1 WHERE id = $2")
        .bind(n)
        .bind(Uuid::from(conversation))
        .execute(pool)
        .await
        .unwrap();
    conversation
}
