//! Appends batched into shared transactions (group commit), run through SQLite's own API.
//!
//! SQLite has one writer at a time, so concurrent appends queue for the writer connection
//! anyway. Each one committing on its own pays a pool hand-off, a commit and a WAL write
//! per message. Instead, appends go to one task that takes every append queued meanwhile,
//! runs them in one `BEGIN IMMEDIATE` transaction, commits once and only then answers
//! each: an append is acknowledged only after the commit that holds it succeeded, at the
//! store's `synchronous` setting, exactly as before.
//!
//! The batch runs whole on one blocking thread, on a rusqlite connection of the appender's
//! own: through sqlx every statement was a round trip to the connection's thread, and a
//! batch of a few hundred appends spent its time in those hand-offs. While it runs, the
//! task holds the store's sqlx writer connection, so the store's other writes wait in
//! that pool's queue, as they did behind a batch before, rather than in SQLite's
//! sleep-and-retry busy handler.
//!
//! An append's own failure (its conversation is gone or not the caller's, its id is
//! taken) fails only that append: its statement is rolled back by SQLite on its own and
//! the transaction goes on. Any other error in a statement (a full disk, say) may have
//! rolled back the whole transaction, so that append is answered with its error, what is
//! left of the transaction is rolled back, and the others are run again in a fresh
//! transaction: nothing of theirs was acknowledged. A failed `BEGIN` or `COMMIT` fails
//! every append of the batch.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use chat_core::{Entity, Error, Message, MessageDraft, Result, Unavailable};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use sqlx::sqlite::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::{BACKEND, SqliteSynchronous};
use crate::faults::{sqlite_native as be, sqlite_native_shared};
use crate::values::{metadata_to_text, to_micros, to_u64, uuid};

/// Most appends one transaction takes, so that other writes waiting for the writer
/// connection are not held up behind an unbounded batch.
const MAX_BATCH: usize = 256;

/// One statement per append: it reads the conversation's last_seq and inserts under
/// SQLite's write lock, and the schema's trigger moves the counters in the same statement.
/// So every appender, in this process or another, gets the next number, and a failed
/// insert leaves the counters alone (SQLite backs out a failed statement on its own).
const INSERT: &str = "INSERT INTO messages
         (id, conversation_id, user_id, seq, role, content, metadata, created_at)
     SELECT ?1, id, user_id, last_seq + 1, ?4, ?5, ?6, ?7 FROM conversations
     WHERE id = ?2 AND user_id = ?3
     RETURNING seq";

/// Why an append could not be run.
#[derive(Debug, thiserror::Error)]
enum Stopped {
    #[error("the SQLite store's append task has stopped")]
    Task,
    #[error("the SQLite store is closed")]
    Closed,
}

/// One append waiting for its transaction.
struct Pending {
    draft: MessageDraft,
    answer: oneshot::Sender<Result<Message>>,
}

/// The queue in front of the task that commits appends in batches.
#[derive(Debug, Clone)]
pub(crate) struct Appender {
    queue: mpsc::UnboundedSender<Pending>,
    connection: Shared,
}

/// The appender's connection, opened when first needed and again after one is lost. The
/// lock is held for a whole batch; the store takes it only to set test limits.
#[derive(Clone)]
struct Shared {
    connection: Arc<Mutex<Option<Connection>>>,
    open: Arc<dyn Fn() -> rusqlite::Result<Connection> + Send + Sync>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// Runs `work` on the connection, opening one if there is none; a connection left
    /// inside a transaction it cannot end is dropped, so the next call opens a fresh one.
    fn with<T>(&self, work: impl FnOnce(&mut Connection) -> T) -> rusqlite::Result<T> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some((self.open)()?);
        }
        let connection = slot.as_mut().expect("opened above");
        let answer = work(connection);
        if !connection.is_autocommit() && connection.execute_batch("ROLLBACK").is_err() {
            *slot = None;
        }
        Ok(answer)
    }
}

impl Appender {
    /// Starts the append task on the current Tokio runtime; it ends when the last
    /// `Appender` is dropped. Its connection to `path` commits at `synchronous`.
    pub(crate) fn start(
        writer: SqlitePool,
        path: &Path,
        synchronous: SqliteSynchronous,
        busy_timeout: std::time::Duration,
    ) -> Self {
        let path = path.to_path_buf();
        let connection = Shared {
            connection: Arc::new(Mutex::new(None)),
            open: Arc::new(move || {
                let connection = Connection::open(&path)?;
                connection.busy_timeout(busy_timeout)?;
                // Per connection in SQLite: the same as sqlx sets on the writer.
                connection.pragma_update(None, "foreign_keys", true)?;
                let synchronous = match synchronous {
                    SqliteSynchronous::Normal => "NORMAL",
                    SqliteSynchronous::Full => "FULL",
                };
                connection.pragma_update(None, "synchronous", synchronous)?;
                Ok(connection)
            }),
        };
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(run(writer, connection.clone(), pending));
        Self { queue, connection }
    }

    /// Appends `draft` once the transaction that holds it has committed.
    pub(crate) async fn append(&self, draft: MessageDraft) -> Result<Message> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Pending { draft, answer })
            .map_err(|_| stopped(Stopped::Task))?;
        answered.await.map_err(|_| stopped(Stopped::Task))?
    }

    /// Runs `work` on the appender's connection, between batches.
    pub(crate) async fn with_connection<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || connection.with(work))
            .await
            .map_err(|_| stopped(Stopped::Task))?
            .and_then(|answer| answer)
            .map_err(be)
    }
}

fn stopped(why: Stopped) -> Error {
    Error::unavailable(BACKEND, Unavailable::Unreachable, why)
}

async fn run(writer: SqlitePool, connection: Shared, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let todo = std::mem::take(&mut batch);
        // Held, unused, until the batch is done: the other writes queue behind it.
        let Ok(turn) = writer.acquire().await else {
            // The pool only refuses once the store is closed.
            for pending in todo {
                let _ = pending.answer.send(Err(stopped(Stopped::Closed)));
            }
            continue;
        };
        let connection = connection.clone();
        let done = tokio::task::spawn_blocking(move || commit(&connection, todo)).await;
        drop(turn);
        // A batch whose thread panicked has dropped its answers: each caller hears that
        // the task stopped, and nothing it did not see committed is acknowledged.
        let _ = done;
    }
}

/// Why a transaction did not commit.
enum Failure {
    /// The append at this index failed for a reason that may have ended the transaction.
    Append(usize, Error),
    /// `BEGIN` or `COMMIT` failed, or no connection could be opened.
    Transaction(rusqlite::Error),
}

/// Runs `todo` in as few transactions as its failures allow and answers each append.
fn commit(connection: &Shared, mut todo: Vec<Pending>) {
    while !todo.is_empty() {
        let attempt = connection
            .with(|c| attempt(c, &todo))
            .unwrap_or_else(|error| Err(Failure::Transaction(error)));
        match attempt {
            Ok(outcomes) => {
                for (Pending { draft, answer }, outcome) in todo.into_iter().zip(outcomes) {
                    // A caller that gave up no longer listens; its append stands.
                    let _ = answer.send(outcome.map(|seq| draft.with_seq(seq)));
                }
                return;
            }
            Err(Failure::Append(at, error)) => {
                let _ = todo.remove(at).answer.send(Err(error));
            }
            Err(Failure::Transaction(error)) => {
                for pending in todo {
                    let _ = pending.answer.send(Err(sqlite_native_shared(&error)));
                }
                return;
            }
        }
    }
}

/// One transaction over `todo`: each append's seq, or its own failure (a conflict, a
/// missing conversation). Whatever it leaves open, [`Shared::with`] rolls back.
fn attempt(connection: &mut Connection, todo: &[Pending]) -> Result<Vec<Result<u64>>, Failure> {
    // Taking the write lock up front: see `SqliteStore::write_tx`.
    connection
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(Failure::Transaction)?;
    let mut outcomes = Vec::with_capacity(todo.len());
    for (at, pending) in todo.iter().enumerate() {
        match insert(connection, &pending.draft) {
            Ok(seq) => outcomes.push(Ok(seq)),
            Err(e @ (Error::Conflict { .. } | Error::NotFound(_))) => outcomes.push(Err(e)),
            Err(e) => return Err(Failure::Append(at, e)),
        }
    }
    connection
        .execute_batch("COMMIT")
        .map_err(Failure::Transaction)?;
    Ok(outcomes)
}

/// Inserts one message inside the open transaction and answers its seq.
fn insert(connection: &Connection, draft: &MessageDraft) -> Result<u64> {
    let mut statement = connection.prepare_cached(INSERT).map_err(be)?;
    let inserted = statement
        .query_row(
            params![
                uuid(draft.id),
                uuid(draft.conversation_id),
                uuid(draft.user_id),
                draft.role.as_str(),
                draft.content,
                metadata_to_text(draft.metadata.as_ref()),
                to_micros(draft.created_at),
            ],
            |row| row.get::<_, i64>(0),
        )
        .optional();
    let seq = match inserted {
        Ok(Some(seq)) => seq,
        // No row: the conversation is not there, or not this user's; unless the id is
        // taken, which MemoryStore reports first.
        Ok(None) if id_taken(connection, draft)? => return Err(conflict()),
        Ok(None) => return Err(Error::NotFound(Entity::Conversation)),
        Err(error) => {
            return Err(match constraint(&error) {
                Some(UNIQUE | PRIMARY_KEY) => conflict(),
                Some(FOREIGN_KEY) => Error::NotFound(Entity::Conversation),
                _ => be(error),
            });
        }
    };
    to_u64(BACKEND, seq, "seq")
}

fn id_taken(connection: &Connection, draft: &MessageDraft) -> Result<bool> {
    connection
        .prepare_cached("SELECT 1 FROM messages WHERE id = ?1")
        .and_then(|mut s| s.exists([uuid(draft.id)]))
        .map_err(be)
}

fn conflict() -> Error {
    Error::Conflict {
        entity: Entity::Message,
        field: "id",
    }
}

const UNIQUE: i32 = rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE;
const PRIMARY_KEY: i32 = rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY;
const FOREIGN_KEY: i32 = rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY;

/// The extended code of a constraint violation.
fn constraint(error: &rusqlite::Error) -> Option<i32> {
    match error {
        rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation => {
            Some(e.extended_code)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::sqlite::{SqliteOptions, SqliteStore, SqliteSynchronous};

    async fn synchronous_of_appends(synchronous: SqliteSynchronous) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            synchronous,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open_with(dir.path().join("chat.sqlite3"), options)
            .await
            .unwrap();
        store
            .appends
            .with_connection(|c| c.query_row("PRAGMA synchronous", [], |row| row.get(0)))
            .await
            .unwrap()
    }

    /// Appends commit on a connection of their own, and `synchronous` is a setting of each
    /// connection: the store's durability must be that connection's.
    #[tokio::test]
    async fn appends_commit_at_the_store_s_synchronous_setting() {
        // SQLite's numbers: NORMAL is 1, FULL is 2.
        assert_eq!(synchronous_of_appends(SqliteSynchronous::Normal).await, 1);
        assert_eq!(synchronous_of_appends(SqliteSynchronous::Full).await, 2);
    }
}
