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
    // Not counted as a write in flight (see `quiet`): its transaction never waits for a
    // flush, so reads need not keep off the runtime's threads for it.
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
    let _gate = inner.commit.gate();
    match inner.trees.append_batch(&appends) {
        Ok(results) => results.into_iter().map(|r| written(health, r)).collect(),
        // sled cannot write again once a write failed: the store is latched for them all.
        Err(e) if sled_io_failure(&e).is_some() => {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::mpsc;
    use std::time::Duration;

    use chat_core::{Entity, Error, Limit, MessageOrder, Store, Unavailable, UserId};

    use crate::SledStore;
    use crate::tests::{conversation, draft};

    impl super::Appends {
        fn queued(&self) -> usize {
            self.lock().pending.len()
        }

        fn batches(&self) -> u64 {
            self.batches.load(Ordering::Relaxed)
        }
    }

    /// Holds the committer's gate on a thread of its own until the returned sender is
    /// dropped or sent to, so appends pile up in the queue meanwhile.
    fn hold_gate(store: &SledStore) -> mpsc::Sender<()> {
        let (locked_tx, locked) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let store = store.clone();
        std::thread::spawn(move || {
            let _gate = store.inner.commit.gate();
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        locked.recv().unwrap();
        release
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what} never happened"));
    }

    /// Many tasks appending at once over many conversations: every append is acknowledged
    /// with the next `seq` of its conversation, they share transactions, and all of them
    /// are there after the store is closed and opened again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_transactions_and_survive_a_reopen() {
        const CONVERSATIONS: usize = 16;
        const TASKS_EACH: usize = 4;
        const APPENDS_EACH: usize = 8;
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let user = UserId::new();
        let mut conversations = Vec::new();
        for _ in 0..CONVERSATIONS {
            let c = conversation(user);
            store.create_conversation(&c).await.unwrap();
            conversations.push(c);
        }
        let before = store.inner.appends.batches();
        let mut tasks = Vec::new();
        for c in &conversations {
            for _ in 0..TASKS_EACH {
                let (store, c) = (store.clone(), c.clone());
                tasks.push(tokio::spawn(async move {
                    let mut acknowledged = Vec::new();
                    for _ in 0..APPENDS_EACH {
                        acknowledged.push(store.append_message(draft(&c)).await.unwrap());
                    }
                    acknowledged
                }));
            }
        }
        let mut acknowledged = Vec::new();
        for task in tasks {
            acknowledged.extend(task.await.unwrap());
        }
        let appends = acknowledged.len() as u64;
        let batches = store.inner.appends.batches() - before;
        assert!(
            batches < appends / 2,
            "{appends} concurrent appends took {batches} transactions"
        );
        drop(store);

        let store = SledStore::open(dir.path()).unwrap();
        let per_conversation = (TASKS_EACH * APPENDS_EACH) as u64;
        for c in &conversations {
            let page = store
                .list_messages(c.id, MessageOrder::default(), Limit::MAX)
                .await
                .unwrap();
            let seqs: Vec<u64> = page.iter().map(|m| m.seq).collect();
            assert_eq!(seqs, (1..=per_conversation).collect::<Vec<_>>());
            let stored = store.get_conversation(c.id).await.unwrap().unwrap();
            assert_eq!(stored.message_count, per_conversation);
        }
        for message in acknowledged {
            assert_eq!(store.get_message(message.id).await.unwrap(), Some(message));
        }
    }

    /// Appends that fail in a batch (a missing conversation, another user's, a message id
    /// already taken) fail alone and write nothing; the others of the same transaction
    /// commit with the next `seq` of their conversation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_append_fails_alone_in_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (c1, c2) = (conversation(UserId::new()), conversation(UserId::new()));
        store.create_conversation(&c1).await.unwrap();
        store.create_conversation(&c2).await.unwrap();
        let earlier = store.append_message(draft(&c1)).await.unwrap();

        // The committer takes the first append and waits at the gate; the rest queue.
        let release = hold_gate(&store);
        let before = store.inner.appends.batches();
        let spawn = |d| {
            let store = store.clone();
            tokio::spawn(async move { store.append_message(d).await })
        };
        let first = spawn(draft(&c1));
        until("the first batch", || store.inner.appends.batches() > before).await;
        let good = spawn(draft(&c1));
        let missing = spawn(draft(&conversation(UserId::new())));
        let mut taken = draft(&c2);
        taken.id = earlier.id;
        let taken = spawn(taken);
        let other = spawn(draft(&c2));
        let mut not_theirs = draft(&c2);
        not_theirs.user_id = c1.user_id;
        let not_theirs = spawn(not_theirs);
        until("five queued appends", || store.inner.appends.queued() == 5).await;
        release.send(()).unwrap();

        assert_eq!(first.await.unwrap().unwrap().seq, 2);
        let good = good.await.unwrap().unwrap();
        assert_eq!(good.seq, 3);
        assert!(matches!(
            missing.await.unwrap(),
            Err(Error::NotFound(Entity::Conversation))
        ));
        assert!(matches!(
            taken.await.unwrap(),
            Err(Error::Conflict {
                entity: Entity::Message,
                field: "id"
            })
        ));
        assert_eq!(other.await.unwrap().unwrap().seq, 1);
        assert!(matches!(
            not_theirs.await.unwrap(),
            Err(Error::NotFound(Entity::Conversation))
        ));
        assert_eq!(
            store.inner.appends.batches() - before,
            2,
            "the five queued appends shared one transaction"
        );

        // What failed wrote nothing.
        assert_eq!(store.get_message(earlier.id).await.unwrap(), Some(earlier));
        assert_eq!(store.get_message(good.id).await.unwrap(), Some(good));
        let count = |c| {
            let store = store.clone();
            async move {
                store
                    .get_conversation(c)
                    .await
                    .unwrap()
                    .unwrap()
                    .message_count
            }
        };
        assert_eq!(count(c1.id).await, 3);
        assert_eq!(count(c2.id).await, 1);
    }

    /// A flush that fails fails every append it was to cover, across the batches that
    /// waited for it, and none of them is acknowledged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_flush_fails_every_append_it_covered() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let c = conversation(UserId::new());
        store.create_conversation(&c).await.unwrap();

        let release = hold_gate(&store);
        let before = store.inner.appends.batches();
        let spawn = || {
            let (store, d) = (store.clone(), draft(&c));
            tokio::spawn(async move { store.append_message(d).await })
        };
        let first = spawn();
        until("the first batch", || store.inner.appends.batches() > before).await;
        let rest: Vec<_> = (0..4).map(|_| spawn()).collect();
        until("four queued appends", || store.inner.appends.queued() == 4).await;
        store.inner.commit.fail_flushes(true);
        release.send(()).unwrap();

        for task in std::iter::once(first).chain(rest) {
            match task.await.unwrap() {
                Err(Error::Unavailable {
                    reason: Unavailable::Failed,
                    ..
                }) => {}
                other => panic!("an append covered by a failed flush answered {other:?}"),
            }
        }
        assert_eq!(store.inner.appends.batches() - before, 2);
    }
}
