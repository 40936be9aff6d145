//! Appends committed in batches: concurrent appends share one sled transaction, then one
//! group flush, and each is answered once that flush has ended.
//!
//! Why: every sled transaction takes sled's process-wide lock in write mode, which waits
//! for any flush's disk write, and each append on a blocking thread of its own meant 64
//! concurrent appenders were 64 threads queueing on that lock, each woken in turn, then
//! each woken again by every flush to see whether it was theirs. Now an append is queued;
//! one committer (a blocking thread, started by the append that finds none running) takes
//! everything queued, applies it in one transaction, and takes the next batch, until the
//! queue is empty; then it asks for the group flush (running it itself if none is
//! running) and hands the batch's answers to it. Each appender is woken once, with its
//! final answer.
//!
//! What each append is promised is unchanged: an `Ok` means its change is in a flush that
//! began after it committed; a failed flush fails every append it covered (and latches the
//! store, see `health`); an append that fails (its conversation missing or another user's,
//! its id taken) fails alone and writes nothing, while the rest of its batch commits. If
//! the batch's transaction itself fails, the appends are tried again one by one, so each
//! gets the answer it would have had alone, except when sled failed to write, which
//! latches the store for all of them. An append whose caller has gone away before the
//! committer took it is dropped unapplied; one taken is applied whole: either way nothing
//! is left half-done.

use std::sync::{Arc, Mutex, PoisonError};

use chat_core::{Message, MessageDraft, Result};
use tokio::sync::oneshot;

use crate::error::{FlushError, StoreError};
use crate::trees::Append;
use crate::{Inner, Written, sled_io_failure, written};

/// The most appends answered by one flush: beyond it, the committer hands the queue on and
/// flushes what it has, so a steady stream cannot hold answers back for ever.
const MAX_BATCH: usize = 256;

/// An append's answer, and the failure of the flush that was to cover it, if it failed.
type Reply = (Result<Message>, Option<Arc<FlushError>>);

struct Queued {
    append: Append,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Queued>,
    /// Whether a committer is running; it takes whatever is pending before it stops.
    committing: bool,
}

/// The appends waiting for the committer.
#[derive(Default)]
pub(crate) struct Appends {
    queue: Mutex<Queue>,
    /// How many transactions the committer ran, for tests that check appends share them.
    #[cfg(test)]
    pub(crate) batches: std::sync::atomic::AtomicU64,
}

impl Appends {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues an append; answers whether the caller must start a committer.
    fn push(&self, queued: Queued) -> bool {
        let mut queue = self.lock();
        queue.pending.push(queued);
        !std::mem::replace(&mut queue.committing, true)
    }

    /// The next batch, or `None` (and the committer marked as stopped) if nothing is
    /// queued, so an append queued after this starts a committer of its own.
    fn take(&self) -> Option<Vec<Queued>> {
        let mut queue = self.lock();
        if queue.pending.is_empty() {
            queue.committing = false;
            return None;
        }
        let n = queue.pending.len().min(MAX_BATCH);
        Some(queue.pending.drain(..n).collect())
    }

    /// Whether appends are still queued, for a committer that stops at [`MAX_BATCH`]: if
    /// so it must start another, else it is marked as stopped.
    fn hand_over(&self) -> bool {
        let mut queue = self.lock();
        if queue.pending.is_empty() {
            queue.committing = false;
        }
        queue.committing
    }
}

/// Appends `draft` through the committer and waits for its answer.
pub(crate) async fn append(inner: &Arc<Inner>, draft: MessageDraft) -> Result<Message> {
    inner.health.check_write()?;
    let _in_flight = inner.writes.begin();
    // Encoded here, so the committer's transaction does only what must be in it.
    let append = Append::new(draft);
    let (reply, answer) = oneshot::channel();
    if inner.appends.push(Queued { append, reply }) {
        start_committer(inner);
    }
    let (result, flush) = answer.await.map_err(|_| StoreError::Unanswered)?;
    match flush {
        Some(e) => Err(inner.health.fail(&StoreError::Flush(e))),
        None => result,
    }
}

fn start_committer(inner: &Arc<Inner>) {
    let inner = Arc::clone(inner);
    tokio::task::spawn_blocking(move || commit_queued(&inner));
}

/// The committer: commits batches until the queue is empty (or [`MAX_BATCH`] appends wait
/// for a flush), then has the group flush answer them.
fn commit_queued(inner: &Arc<Inner>) {
    let mut flushed: Vec<(oneshot::Sender<Reply>, Result<Message>)> = Vec::new();
    while let Some(batch) = inner.appends.take() {
        // A caller that went away before its append was applied wants nothing done.
        let batch: Vec<Queued> = batch.into_iter().filter(|q| !q.reply.is_closed()).collect();
        if batch.is_empty() {
            continue;
        }
        let written = commit(inner, &batch);
        for (queued, written) in batch.into_iter().zip(written) {
            match written {
                Written::Answer(result) => {
                    let _ = queued.reply.send((result, None));
                }
                Written::Flush(result) => flushed.push((queued.reply, result)),
            }
        }
        if flushed.len() >= MAX_BATCH {
            if inner.appends.hand_over() {
                start_committer(inner);
            }
            break;
        }
    }
    if flushed.is_empty() {
        return;
    }
    inner
        .commit
        .flush_after_commit_then(Box::new(move |outcome| {
            for (reply, result) in flushed {
                let _ = reply.send((result, outcome.as_ref().err().cloned()));
            }
        }));
}

/// What each append of a batch needs before it is answered: one transaction, or one by
/// one if that transaction failed.
fn commit(inner: &Inner, batch: &[Queued]) -> Vec<Written<Message>> {
    #[cfg(test)]
    inner
        .appends
        .batches
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let health = &inner.health;
    let appends: Vec<&Append> = batch.iter().map(|q| &q.append).collect();
    match inner.trees.append_batch(&appends) {
        Ok(results) => results.into_iter().map(|r| written(health, r)).collect(),
        // sled cannot write again once a write failed: the store is latched for them all.
        Err(e) if sled_io_failure(Some(&e)).is_some() => {
            let mut answers: Vec<_> = appends[1..]
                .iter()
                .map(|_| Written::Answer(Err(health.fail(&e))))
                .collect();
            answers.insert(0, written(health, Err(e)));
            answers
        }
        Err(e) if appends.len() == 1 => vec![written(health, Err(e))],
        Err(_) => appends
            .iter()
            .map(|a| written(health, inner.trees.append_one(a)))
            .collect(),
    }
}
