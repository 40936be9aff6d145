//! Appends batched into shared transactions (group commit).
//!
//! SQLite has one writer at a time, so concurrent appends queue for the writer connection
//! anyway. Each one committing on its own pays a pool hand-off, a commit and a WAL write
//! per message. Instead, appends go to one task that takes every append queued meanwhile,
//! runs them in one `BEGIN IMMEDIATE` transaction, commits once and only then answers
//! each: an append is acknowledged only after the commit that holds it succeeded, at the
//! store's `synchronous` setting, exactly as before.
//!
//! An append's own failure (its conversation is gone or not the caller's, its id is
//! taken) fails only that append: its statement is rolled back by SQLite on its own and
//! the transaction goes on. Any other error in a statement (a full disk, say) may have
//! rolled back the whole transaction, so that append is answered with its error and the
//! others are run again in a fresh transaction: nothing of theirs was acknowledged. A
//! failed `BEGIN` or `COMMIT` fails every append of the batch.

use chat_core::{Entity, Error, Message, MessageDraft, Result, Unavailable};
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::BACKEND;
use super::store::returned;
use crate::faults::{self, sqlite as be};
use crate::inserts::{found, insert_under};
use crate::values::{metadata_to_text, to_micros, to_u64, uuid};

/// Most appends one transaction takes, so that other writes waiting for the writer
/// connection are not held up behind an unbounded batch.
const MAX_BATCH: usize = 256;

/// The append task is gone: the runtime that ran it has shut down.
#[derive(Debug, thiserror::Error)]
#[error("the SQLite store's append task has stopped")]
struct Stopped;

/// One append waiting for its transaction.
struct Pending {
    draft: MessageDraft,
    answer: oneshot::Sender<Result<Message>>,
}

/// The queue in front of the task that commits appends in batches.
#[derive(Debug, Clone)]
pub(crate) struct Appender {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Appender {
    /// Starts the append task on the current Tokio runtime; it ends when the last
    /// `Appender` is dropped.
    pub(crate) fn start(writer: SqlitePool) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(run(writer, pending));
        Self { queue }
    }

    /// Appends `draft` once the transaction that holds it has committed.
    pub(crate) async fn append(&self, draft: MessageDraft) -> Result<Message> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Pending { draft, answer })
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::unavailable(BACKEND, Unavailable::Unreachable, Stopped)
}

async fn run(writer: SqlitePool, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&writer, std::mem::take(&mut batch)).await;
    }
}

/// Why a transaction did not commit.
enum Failure {
    /// The append at this index failed for a reason that may have ended the transaction.
    Append(usize, Error),
    /// `BEGIN` or `COMMIT` failed.
    Transaction(sqlx::Error),
}

/// Runs `todo` in as few transactions as its failures allow and answers each append.
async fn commit(writer: &SqlitePool, mut todo: Vec<Pending>) {
    while !todo.is_empty() {
        match attempt(writer, &todo).await {
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
                let mut todo = todo.into_iter();
                let first = todo.next();
                for pending in todo {
                    let _ = pending.answer.send(Err(faults::sqlite_shared(&error)));
                }
                if let Some(first) = first {
                    let _ = first.answer.send(Err(be(error)));
                }
                return;
            }
        }
    }
}

/// One transaction over `todo`: each append's seq, or its own failure (a conflict, a
/// missing conversation).
async fn attempt(writer: &SqlitePool, todo: &[Pending]) -> Result<Vec<Result<u64>>, Failure> {
    // Taking the write lock up front: see `SqliteStore::write_tx`.
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(Failure::Transaction)?;
    let mut outcomes = Vec::with_capacity(todo.len());
    for (at, pending) in todo.iter().enumerate() {
        match insert(&mut tx, &pending.draft).await {
            Ok(seq) => outcomes.push(Ok(seq)),
            Err(e @ (Error::Conflict { .. } | Error::NotFound(_))) => outcomes.push(Err(e)),
            // Dropping `tx` rolls back whatever SQLite kept of the transaction.
            Err(e) => return Err(Failure::Append(at, e)),
        }
    }
    tx.commit().await.map_err(Failure::Transaction)?;
    Ok(outcomes)
}

/// Inserts one message inside `tx` and answers its seq.
async fn insert(tx: &mut Transaction<'static, Sqlite>, draft: &MessageDraft) -> Result<u64> {
    let metadata = metadata_to_text(draft.metadata.as_ref());
    // One statement: it reads the conversation's last_seq and inserts under SQLite's write
    // lock, and the schema's trigger moves the counters in the same statement. So every
    // appender, in this process or another, gets the next number, and a failed insert
    // leaves the counters alone (SQLite backs out a failed statement on its own).
    let inserted = sqlx::query_scalar::<_, i64>(
        "INSERT INTO messages
             (id, conversation_id, user_id, seq, role, content, metadata, created_at)
         SELECT ?1, id, user_id, last_seq + 1, ?4, ?5, ?6, ?7 FROM conversations
         WHERE id = ?2 AND user_id = ?3
         RETURNING seq",
    )
    .bind(uuid(draft.id))
    .bind(uuid(draft.conversation_id))
    .bind(uuid(draft.user_id))
    .bind(draft.role.as_str())
    .bind(&draft.content)
    .bind(metadata)
    .bind(to_micros(draft.created_at))
    .fetch_all(&mut **tx)
    .await;
    let id_taken = found(
        sqlx::query("SELECT 1 FROM messages WHERE id = ?1")
            .bind(uuid(draft.id))
            .fetch_optional(&mut **tx),
    );
    let seq = insert_under(
        BACKEND,
        returned(inserted),
        Entity::Message,
        Entity::Conversation,
        id_taken,
    )
    .await?;
    to_u64(BACKEND, seq, "seq")
}
