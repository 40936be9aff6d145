//! The shared suite against SQLite, one temporary file per case, plus what only a file on
//! disk can show: two stores on one file, and a schema from a newer program.

#![cfg(feature = "sqlite")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chat_core::testkit::{ReopenableStoreFactory, StoreFactory};
use chat_core::{Conversation, ConversationId, Limit, MessageDraft, MessageId, MessageOrder, Role};
use chat_core::{PasswordHash, Store, User, UserId};
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

async fn owner_and_conversation(store: &dyn Store) -> (User, Conversation) {
    let now = chat_core::time::now();
    let user = User {
        id: UserId::new(),
        username: "appender".into(),
        email: None,
        password_hash: PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at: now,
    };
    store.create_user(&user).await.expect("create_user");
    let conversation = Conversation {
        id: ConversationId::new(),
        user_id: user.id,
        title: "two writers".into(),
        created_at: now,
        updated_at: now,
        message_count: 0,
    };
    store
        .create_conversation(&conversation)
        .await
        .expect("create_conversation");
    (user, conversation)
}

/// Appends `tasks × per_task` messages to one conversation through `stores` in turn, all at
/// once, and checks that the seqs are exactly 1..=N and every message is there.
async fn append_through_all(stores: Vec<Arc<dyn Store>>, tasks: usize, per_task: usize) {
    let (user, conversation) = owner_and_conversation(&*stores[0]).await;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let store = Arc::clone(&stores[t % stores.len()]);
        let conversation = conversation.id;
        let user = user.id;
        set.spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..per_task {
                let message = store
                    .append_message(MessageDraft {
                        id: MessageId::new(),
                        conversation_id: conversation,
                        user_id: user,
                        role: Role::User,
                        content: format!("{t}/{i}"),
                        metadata: None,
                        created_at: chat_core::time::now(),
                    })
                    .await
                    .expect("a concurrent append through one of several stores");
                seqs.push(message.seq);
            }
            seqs
        });
    }
    let mut seqs: Vec<u64> = set.join_all().await.into_iter().flatten().collect();
    seqs.sort_unstable();
    let n = (tasks * per_task) as u64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "seqs must be 1..=N");
    for store in &stores {
        let c = store
            .get_conversation(conversation.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.message_count, n);
        let mut listed = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_messages(
                    conversation.id,
                    MessageOrder::Ascending { after },
                    Limit::MAX,
                )
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            listed.extend(page.iter().map(|m| m.seq));
        }
        assert_eq!(listed, (1..=n).collect::<Vec<_>>());
    }
}

#[test]
fn two_stores_on_one_file_append_gaplessly() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteStore::open(path_in(&dir)).await.unwrap();
        let b = SqliteStore::open(path_in(&dir)).await.unwrap();
        append_through_all(vec![Arc::new(a), Arc::new(b)], 32, 10).await;
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
