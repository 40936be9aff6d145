//! SQLite and PostgreSQL: the stores beside raw sqlx doing the same work.
//!
//! - appends per second from 1 task and from `scale.tasks` (each on its own conversation,
//!   as that many users would be), against a raw baseline that inserts the same message
//!   rows with one autocommit `INSERT … RETURNING seq` each, stepped to its end as the
//!   store does (`fetch_all`: sqlx-sqlite's `fetch_optional` stops at the first row,
//!   before SQLite commits, so it would time writes whose commit is never checked), and
//!   keeps `seq` in a local counter, which is only right for a single process (in SQLite
//!   the schema's trigger still moves the conversation's counters for it; in PostgreSQL
//!   the baseline skips that update);
//! - the newest page and an `after` page of 50 messages from a conversation of 1,000 and
//!   a large one, against the same SELECT through raw sqlx.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{ConversationId, MessageOrder, Store, UserId};
use chat_store_sql::{PostgresOptions, PostgresStore, SqliteStore};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

use super::{PAGE, SMALL, page_limit, page_orders};
use crate::Scale;
use crate::report::{Better, Report, median};

type Job = Arc<dyn Fn(usize, usize) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

async fn throughput(tasks: usize, per_task: usize, job: &Job) -> f64 {
    let job = Arc::clone(job);
    super::throughput(tasks, per_task, move |t, i| job(t, i)).await
}

async fn conversations(store: &dyn Store, owner: UserId, n: usize) -> Vec<ConversationId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let c = super::conversation(owner);
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
        let d = super::draft(convs[t], owner, i);
        Box::pin(async move {
            store.append_message(d).await.expect("append_message");
        })
    })
}

/// Appends through the store and through `raw`, one right after the other in every round
/// and taking turns at going first, so that the machine's changing load touches both
/// alike.
#[allow(clippy::too_many_arguments)]
async fn compare_appends(
    report: &mut Report,
    scale: &Scale,
    store: Arc<dyn Store>,
    owner: UserId,
    raw: impl Fn(Arc<Vec<ConversationId>>) -> Job,
    baseline: &str,
    tasks: usize,
    per_task: usize,
) {
    let (mut s, mut r) = (Vec::new(), Vec::new());
    for round in 0..scale.rounds {
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
    }
    let s = median(s);
    report.add(
        format!("durable appends/s, {tasks} task(s)"),
        s,
        "/s",
        Better::Higher,
        baseline,
        median(r),
        format!("mean {:.0} µs per append per task", 1e6 * tasks as f64 / s),
    );
}

/// The page reads of one conversation through the store and through `raw`, measured as
/// [`compare_appends`] measures; answers the newest page's median through the store.
async fn compare_pages<R, F>(
    report: &mut Report,
    scale: &Scale,
    size: u64,
    store: &dyn Store,
    conversation: ConversationId,
    raw: R,
) -> f64
where
    R: Fn(MessageOrder) -> F,
    F: Future<Output = ()>,
{
    let reads = if scale.full { 300 } else { 100 };
    let mut newest = f64::NAN;
    for (what, order) in page_orders(size) {
        let through_store = async || {
            let page = store
                .list_messages(conversation, order, page_limit())
                .await
                .expect("list_messages");
            assert_eq!(page.len() as u64, PAGE);
        };
        let raw_read = async || raw(order).await;
        let (mut s, mut r) = (Vec::new(), Vec::new());
        for round in 0..scale.rounds {
            if round % 2 == 0 {
                s.push(super::micros(reads, &through_store).await);
                r.push(super::micros(reads, &raw_read).await);
            } else {
                r.push(super::micros(reads, &raw_read).await);
                s.push(super::micros(reads, &through_store).await);
            }
        }
        let s = median(s);
        if what == "newest page" {
            newest = s;
        }
        report.add(
            format!("{what} of {PAGE}, {size} messages"),
            s,
            "µs",
            Better::Lower,
            "raw sqlx, same SELECT",
            median(r),
            "",
        );
    }
    newest
}

/// The page query of the baseline, for `order`: (condition on seq, direction, bound).
fn raw_order(order: MessageOrder) -> (&'static str, &'static str, i64) {
    match order {
        MessageOrder::Descending { before } => ("<", "DESC", before.map_or(i64::MAX, |b| b as i64)),
        MessageOrder::Ascending { after } => (">", "ASC", after.map_or(0, |a| a as i64)),
    }
}

// ----- SQLite -----

/// The SQLite comparisons.
pub async fn sqlite(report: &mut Report, scale: &Scale) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bench.sqlite3");
    let store = SqliteStore::open(&path).await.expect("open");
    let store: Arc<dyn Store> = Arc::new(store);
    let owner = super::user();
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

    report.section("store/sqlite (WAL, synchronous = NORMAL)");
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
    let baseline = "raw sqlx, autocommit INSERT";
    let alone = if scale.full { 400 } else { 100 };
    let per_task = if scale.full { 20 } else { 8 };
    compare_appends(
        report,
        scale,
        Arc::clone(&store),
        owner.id,
        raw,
        baseline,
        1,
        alone,
    )
    .await;
    let tasks = scale.tasks;
    compare_appends(
        report,
        scale,
        Arc::clone(&store),
        owner.id,
        raw,
        baseline,
        tasks,
        per_task,
    )
    .await;

    let started = Instant::now();
    let small = sqlite_fill(&writer, owner.id, &*store, SMALL as i64).await;
    let large = sqlite_fill(&writer, owner.id, &*store, scale.big as i64).await;
    sqlx::query("ANALYZE").execute(&writer).await.unwrap();
    // The fill left a WAL the size of the data; readers would otherwise measure their way
    // through it rather than the steady state a server runs in.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&writer)
        .await
        .unwrap();
    let fill = started.elapsed();

    let mut times = Vec::new();
    for (size, conversation) in [(SMALL, small), (scale.big, large)] {
        let reader = &reader;
        let raw = async |order| {
            let (cmp, dir, bound) = raw_order(order);
            type Row = (Uuid, Uuid, Uuid, i64, String, String, Option<String>, i64);
            let rows: Vec<Row> = sqlx::query_as(&format!(
                "SELECT id, conversation_id, user_id, seq, role, content, metadata, created_at
                     FROM messages WHERE conversation_id = ?1 AND seq {cmp} ?2
                     ORDER BY seq {dir} LIMIT ?3"
            ))
            .bind(Uuid::from(conversation))
            .bind(bound)
            .bind(PAGE as i64)
            .fetch_all(reader)
            .await
            .expect("raw page");
            assert_eq!(rows.len() as u64, PAGE);
        };
        times.push(compare_pages(report, scale, size, &*store, conversation, raw).await);
        sqlite_itself(report, scale, &path, size, conversation, &*store).await;
    }
    report.note(format!("filled in {:.1} s", fill.as_secs_f64()));
    newest_ratio(report, scale, &times);
}

/// The newest page through the store beside SQLite itself (rusqlite, a prepared
/// statement, rows read into the same Rust values), on the caller's thread: what the
/// store's read path (the same, on a blocking thread) adds.
async fn sqlite_itself(
    report: &mut Report,
    scale: &Scale,
    path: &std::path::Path,
    size: u64,
    conversation: ConversationId,
    store: &dyn Store,
) {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("opening SQLite without sqlx");
    let id = Uuid::from(conversation);
    let order = MessageOrder::Descending { before: None };
    let reads = if scale.full { 300 } else { 100 };
    let read_raw = || {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, conversation_id, user_id, seq, role, content, metadata, created_at
                 FROM messages WHERE conversation_id = ?1 AND seq < ?2
                 ORDER BY seq DESC LIMIT ?3",
            )
            .unwrap();
        let rows = stmt
            .query_map(
                rusqlite::params![id.as_bytes().as_slice(), i64::MAX, PAGE as i64],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                },
            )
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(rows.len() as u64, PAGE);
    };
    let (mut s, mut r) = (Vec::new(), Vec::new());
    for _ in 0..scale.rounds {
        let started = Instant::now();
        for _ in 0..reads {
            read_raw();
        }
        r.push(started.elapsed().as_secs_f64() * 1e6 / reads as f64);
        s.push(
            super::micros(reads, async || {
                let page = store.list_messages(conversation, order, page_limit()).await;
                assert_eq!(page.unwrap().len() as u64, PAGE);
            })
            .await,
        );
    }
    report.add(
        format!("newest page of {PAGE}, {size} messages"),
        median(s),
        "µs",
        Better::Lower,
        "SQLite itself (rusqlite)",
        median(r),
        "",
    );
}

/// The newest page from the large conversation beside the same from the small one.
fn newest_ratio(report: &mut Report, scale: &Scale, times: &[f64]) {
    report.add(
        format!("newest page, {} messages", scale.big),
        times[1],
        "µs",
        Better::Lower,
        format!("the same from {SMALL}"),
        times[0],
        "target: ×0.67 or better (within 1.5×)",
    );
}

/// A conversation of `n` messages, written in one statement.
async fn sqlite_fill(
    writer: &sqlx::SqlitePool,
    owner: UserId,
    store: &dyn Store,
    n: i64,
) -> ConversationId {
    let conversation = conversations(store, owner, 1).await[0];
    sqlite_fill_conversation(writer, conversation, owner, n).await;
    conversation
}

/// Fills the existing, empty `conversation` of `owner` with `n` messages, in one statement.
pub async fn sqlite_fill_conversation(
    writer: &sqlx::SqlitePool,
    conversation: ConversationId,
    owner: UserId,
    n: i64,
) {
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
}

// ----- PostgreSQL -----

/// The PostgreSQL comparisons.
pub async fn postgres(report: &mut Report, scale: &Scale, url: &str) {
    let schema = format!("chat_bench_{}", std::process::id());
    let mut options = PostgresOptions::default();
    options.schema = Some(schema.clone());
    options.max_connections = 16;
    let store = PostgresStore::connect_with(url, options)
        .await
        .expect("connect");
    let store: Arc<dyn Store> = Arc::new(store.clone());
    let owner = super::user();
    store.create_user(&owner).await.unwrap();

    let connect: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let raw_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect_with(connect.options([("search_path", schema.as_str())]))
        .await
        .unwrap();

    let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&raw_pool)
        .await
        .unwrap();
    report.section(&format!(
        "store/postgres (pool of 16, synchronous_commit = {sync})"
    ));
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
    let baseline = "raw sqlx, autocommit INSERT";
    let alone = if scale.full { 200 } else { 50 };
    let per_task = if scale.full { 10 } else { 4 };
    compare_appends(
        report,
        scale,
        Arc::clone(&store),
        owner.id,
        raw,
        baseline,
        1,
        alone,
    )
    .await;
    let tasks = scale.tasks;
    compare_appends(
        report,
        scale,
        Arc::clone(&store),
        owner.id,
        raw,
        baseline,
        tasks,
        per_task,
    )
    .await;

    let started = Instant::now();
    let small = postgres_fill(&raw_pool, owner.id, &*store, SMALL as i64).await;
    let large = postgres_fill(&raw_pool, owner.id, &*store, scale.big as i64).await;
    sqlx::query("VACUUM ANALYZE messages")
        .execute(&raw_pool)
        .await
        .unwrap();
    let fill = started.elapsed();

    let mut times = Vec::new();
    for (size, conversation) in [(SMALL, small), (scale.big, large)] {
        let pool = &raw_pool;
        let raw = async |order| {
            let (cmp, dir, bound) = raw_order(order);
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
            let rows: Vec<Row> = sqlx::query_as(&format!(
                "SELECT id, conversation_id, user_id, seq, role, content,
                        metadata::text AS metadata, created_at
                 FROM messages WHERE conversation_id = $1 AND seq {cmp} $2
                 ORDER BY seq {dir} LIMIT $3"
            ))
            .bind(Uuid::from(conversation))
            .bind(bound)
            .bind(PAGE as i64)
            .fetch_all(pool)
            .await
            .expect("raw page");
            assert_eq!(rows.len() as u64, PAGE);
        };
        times.push(compare_pages(report, scale, size, &*store, conversation, raw).await);
    }
    report.note(format!("filled in {:.1} s", fill.as_secs_f64()));
    newest_ratio(report, scale, &times);

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
