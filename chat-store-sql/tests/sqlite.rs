//! The shared suite against SQLite, one temporary file per case, plus what only a file on
//! disk can show: two stores on one file, and a schema from a newer program.

#![cfg(feature = "sqlite")]

use std::path::{Path, PathBuf};

use sqlx::Connection as _;
use std::sync::Arc;

use chat_core::Store;
use chat_core::testkit::faults::CommitFaultFactory;
use chat_core::testkit::{ReopenableStoreFactory, StoreFactory, several_stores};
use chat_store_sql::{OpenError, SqliteOptions, SqliteStore};
use tempfile::TempDir;

const FILE: &str = "chat.sqlite3";

struct Fresh;

impl StoreFactory for Fresh {
    type Store = SqliteStore;
    type Guard = TempDir;

    async fn create(&self) -> (SqliteStore, TempDir) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(dir.path().join(FILE))
            .await
            .expect("opening a fresh SQLite store");
        (store, dir)
    }
}

impl ReopenableStoreFactory for Fresh {
    async fn reopen(&self, dir: &TempDir) -> SqliteStore {
        SqliteStore::open(dir.path().join(FILE))
            .await
            .expect("reopening the SQLite store")
    }
}

chat_core::store_tests!(suite, Fresh, durable);

/// The tables every write touches, for the commit-fault triggers.
const TABLES: [&str; 7] = [
    "users",
    "sessions",
    "conversations",
    "messages",
    "attachments",
    "providers",
    "configs",
];

/// Fresh stores whose commits the test can make fail: while `fault_switch.armed` is set,
/// every change to a table also leaves a row breaking a deferred foreign key, which SQLite
/// checks only when the change commits. So every statement of a write succeeds, and then
/// its commit fails, which is where a store that answered before committing is caught.
struct CommitFaults;

impl StoreFactory for CommitFaults {
    type Store = SqliteStore;
    type Guard = TempDir;

    async fn create(&self) -> (SqliteStore, TempDir) {
        let (store, dir) = Fresh.create().await;
        let mut sql = String::from(
            "CREATE TABLE fault_switch (armed INTEGER NOT NULL);
             INSERT INTO fault_switch VALUES (0);
             CREATE TABLE fault_parent (id INTEGER PRIMARY KEY);
             CREATE TABLE fault_orphans (
                 parent INTEGER REFERENCES fault_parent (id) DEFERRABLE INITIALLY DEFERRED
             );",
        );
        for table in TABLES {
            for op in ["INSERT", "UPDATE", "DELETE"] {
                sql.push_str(&format!(
                    "CREATE TRIGGER fault_{table}_{op} AFTER {op} ON {table}
                     WHEN (SELECT armed FROM fault_switch)
                     BEGIN INSERT INTO fault_orphans VALUES (1); END;"
                ));
            }
        }
        let mut conn = connect(&path_in(&dir)).await;
        sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        (store, dir)
    }
}

impl CommitFaultFactory for CommitFaults {
    async fn fail_commits(&self, dir: &TempDir, fail: bool) {
        let mut conn = connect(&path_in(dir)).await;
        sqlx::query("UPDATE fault_switch SET armed = ?1")
            .bind(fail)
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
}

chat_core::store_fault_tests!(faults, CommitFaults);

async fn connect(path: &Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

fn path_in(dir: &TempDir) -> PathBuf {
    dir.path().join(FILE)
}

#[test]
fn two_stores_on_one_file_append_gaplessly() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteStore::open(path_in(&dir)).await.unwrap();
        let b = SqliteStore::open(path_in(&dir)).await.unwrap();
        let stores: Vec<Arc<dyn Store>> = vec![Arc::new(a), Arc::new(b)];
        several_stores::appends_are_gapless(&stores, 32, 10).await;
    });
}

async fn mark_applied_by_newer_program(path: &Path, version: i64) {
    // What a newer build would leave behind: a migration row this build does not carry.
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations
             (version, description, success, checksum, execution_time)
         VALUES (?1, 'from the future', TRUE, x'00', 0)",
    )
    .bind(version)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

#[test]
fn a_schema_from_a_newer_program_is_refused() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(path_in(&dir)).await.unwrap();
        store.close().await;
        mark_applied_by_newer_program(&path_in(&dir), 9_999).await;

        let error = SqliteStore::open(path_in(&dir)).await.unwrap_err();
        match &error {
            OpenError::SchemaTooNew { found, known, .. } => {
                assert_eq!(*found, 9_999);
                assert!(*known < 9_999);
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
        let text = error.to_string();
        assert!(text.contains("newer"), "{text}");
        assert!(
            text.contains(FILE),
            "the error should name the file: {text}"
        );

        let mut options = SqliteOptions::default();
        options.migrate_on_open = false;
        assert!(matches!(
            SqliteStore::open_with(path_in(&dir), options).await,
            Err(OpenError::SchemaTooNew { .. })
        ));
    });
}

#[test]
fn without_migrate_on_open_an_old_schema_waits_for_migrate() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut options = SqliteOptions::default();
        options.migrate_on_open = false;
        assert!(matches!(
            SqliteStore::open_with(path_in(&dir), options.clone()).await,
            Err(OpenError::SchemaTooOld { found: 0, .. })
        ));
        let store = SqliteStore::open(path_in(&dir)).await.unwrap();
        store.migrate().await.expect("migrating again is a no-op");
        store.close().await;
        let store = SqliteStore::open_with(path_in(&dir), options)
            .await
            .unwrap();
        store.ping().await.unwrap();
    });
}

#[test]
fn a_file_that_cannot_be_opened_is_named() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join(FILE);
        let error = SqliteStore::open(&missing).await.unwrap_err();
        assert!(matches!(error, OpenError::Connect { .. }), "{error:?}");
        assert!(error.to_string().contains("no-such-dir"), "{error}");
        let core: chat_core::Error = error.into();
        assert!(matches!(
            core,
            chat_core::Error::Backend {
                backend: "sqlite",
                ..
            }
        ));
    });
}

/// Concurrent appends share transactions (`sqlite/appends.rs`); an append whose
/// conversation is missing or whose id is taken must fail alone, and every other append of
/// its batch must be kept, numbered without gaps.
#[test]
fn a_failing_append_fails_only_itself_among_concurrent_appends() {
    use chat_core::{
        Conversation, ConversationId, Entity, Error, MessageDraft, MessageId, Role, UserId, time,
    };

    fn draft(conversation: ConversationId, user: UserId, id: MessageId) -> MessageDraft {
        MessageDraft {
            id,
            conversation_id: conversation,
            user_id: user,
            role: Role::User,
            content: "in a batch".into(),
            metadata: None,
            created_at: time::now(),
        }
    }

    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(path_in(&dir)).await.unwrap());
        let now = time::now();
        let c = Conversation {
            id: ConversationId::new(),
            user_id: UserId::new(),
            title: "batches".into(),
            created_at: now,
            updated_at: now,
            message_count: 0,
        };
        store.create_conversation(&c).await.unwrap();
        let taken = store
            .append_message(draft(c.id, c.user_id, MessageId::new()))
            .await
            .unwrap()
            .id;

        // Every third append names a missing conversation, every third after that a taken
        // id; all are started before any is answered, so they meet in shared batches.
        let mut tasks = Vec::new();
        for n in 0..96 {
            let d = match n % 3 {
                0 => draft(c.id, c.user_id, MessageId::new()),
                1 => draft(ConversationId::new(), c.user_id, MessageId::new()),
                _ => draft(c.id, c.user_id, taken),
            };
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(
                async move { (n, store.append_message(d).await) },
            ));
        }
        let mut seqs = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (n, Ok(m)) if n % 3 == 0 => seqs.push(m.seq),
                (n, Err(Error::NotFound(Entity::Conversation))) if n % 3 == 1 => {}
                (n, Err(Error::Conflict { field: "id", .. })) if n % 3 == 2 => {}
                (n, other) => panic!("append {n} answered {other:?}"),
            }
        }
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (2..=33).collect::<Vec<u64>>(),
            "kept appends are gapless"
        );
        let kept = store.get_conversation(c.id).await.unwrap().unwrap();
        assert_eq!(kept.message_count, 33);
    });
}
