//! Group commit: writers share flushes, so durability costs one flush per group of
//! concurrent writers rather than one per request.
//!
//! Flushes are numbered. A writer that committed its transaction asks for flush
//! `started + 1`: the next flush to *begin*, which therefore begins after its commit and
//! covers it. If no flush is running, it starts that flush; otherwise the running flusher
//! starts it as soon as the current one ends. Everyone who arrived during one flush is
//! covered by the next, so under load flushes run back to back and each covers everything
//! committed while the previous one ran.
//!
//! A flush runs on a blocking thread (the first waiting writer's own, or a flusher's when
//! flushes follow one another), never in a writer's future: a writer whose request is
//! dropped half-way cannot leave the flusher stuck.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::error::{FlushError, StoreError};

/// What makes the data durable: sled's flush, then optionally `fdatasync` of its log file.
pub(crate) struct Flusher {
    pub db: sled::Db,
    /// A handle on sled's log file, for `fdatasync`; `None` when the store is configured
    /// to trust sled's own flush.
    pub sync_file: Option<File>,
    /// Held while sled writes its log during a flush, and by the append committer while
    /// its transaction runs (see [`GroupCommit::gate`]).
    pub gate: Mutex<()>,
    /// How many flushes ran, for tests that check writers share them.
    pub flushes: AtomicU64,
    /// Makes the next flushes fail as a full disk would, for tests of what follows.
    #[cfg(test)]
    pub fail: std::sync::atomic::AtomicBool,
    /// Runs as each flush begins, so a test can hold a flush open.
    #[cfg(test)]
    pub hook: Mutex<Option<FlushHook>>,
}

/// What a test runs as each flush begins.
#[cfg(test)]
pub(crate) type FlushHook = Arc<dyn Fn() + Send + Sync>;

impl Flusher {
    pub(crate) fn flush(&self) -> Result<(), FlushError> {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        if let Some(hook) = self
            .hook
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            hook();
        }
        #[cfg(test)]
        if self.fail.load(Ordering::Relaxed) {
            return Err(FlushError::Sync(std::io::ErrorKind::StorageFull.into()));
        }
        {
            let _gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            self.db.flush()?;
        }
        if let Some(file) = &self.sync_file {
            // sled on Linux ends a flush with sync_file_range, which neither writes the
            // file's size nor empties the drive's cache; fdatasync does both.
            file.sync_data()?;
        }
        Ok(())
    }
}

/// What runs once the flush a writer waits for has ended, with its outcome.
pub(crate) type Answer = Box<dyn FnOnce(Result<(), Arc<FlushError>>) + Send>;

#[derive(Default)]
struct State {
    /// The number of the flush running or last run.
    started: u64,
    /// The highest flush number any writer is waiting for.
    wanted: u64,
    running: bool,
    /// Answers to give as flushes end, each with the number of the flush it waits for.
    /// Waking each writer once, when its own flush ends, is cheaper than waking every
    /// waiter at each flush to look at the outcome.
    answers: Vec<(u64, Answer)>,
}

#[derive(Clone, Default)]
struct Outcome {
    /// The last flush that ended, well or not.
    finished: u64,
    /// The last flush that succeeded.
    ok_through: u64,
    /// Why the last failed flush failed.
    error: Option<Arc<FlushError>>,
}

struct Shared {
    state: Mutex<State>,
    done: watch::Sender<Outcome>,
}

/// Hands out shared flushes.
pub(crate) struct GroupCommit {
    flusher: Arc<Flusher>,
    shared: Arc<Shared>,
}

impl GroupCommit {
    pub(crate) fn new(flusher: Flusher) -> Self {
        Self {
            flusher: Arc::new(flusher),
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                done: watch::Sender::new(Outcome::default()),
            }),
        }
    }

    /// Keeps sled's part of a flush (writing its log, during which sled holds its global
    /// lock in read mode) and the caller apart until the guard drops.
    ///
    /// The append committer holds it for its transaction, so that transaction never waits
    /// in sled's lock for a flush's disk write; while a transaction waits there, sled
    /// holds every new read behind it too, and reads of the store run inline on the
    /// runtime's threads (see `quiet`). The committer waits here instead, on a blocking
    /// thread, and a flush that begins during its transaction waits for one transaction,
    /// not the other way round. `fdatasync` runs outside the gate, so transactions go on
    /// during it.
    pub(crate) fn gate(&self) -> std::sync::MutexGuard<'_, ()> {
        self.flusher
            .gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes every later flush fail (or succeed again).
    #[cfg(test)]
    pub(crate) fn fail_flushes(&self, fail: bool) {
        self.flusher.fail.store(fail, Ordering::Relaxed);
    }

    /// Sets (or with `None` clears) what runs as each flush begins.
    #[cfg(test)]
    pub(crate) fn set_hook(&self, hook: Option<FlushHook>) {
        *self
            .flusher
            .hook
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = hook;
    }

    /// The highest flush number a writer has asked for.
    #[cfg(test)]
    pub(crate) fn wanted(&self) -> u64 {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .wanted
    }

    /// How many flushes have run.
    #[cfg(test)]
    pub(crate) fn flushes(&self) -> u64 {
        self.flusher.flushes.load(Ordering::Relaxed)
    }

    /// Called on a blocking thread right after the caller's transaction committed: asks
    /// for the next flush to begin, and answers its number for [`wait`](Self::wait).
    ///
    /// When no flush is running, the caller's own thread runs it, so a lone writer pays no
    /// hand-off to another thread. If more writers arrived meanwhile, the flushes they need
    /// go on on a thread of their own, and this caller returns.
    pub(crate) fn flush_after_commit(&self) -> u64 {
        self.request(None)
    }

    /// As [`flush_after_commit`](Self::flush_after_commit), but instead of being waited
    /// for, the flush runs `answer` with its outcome once it has ended. The commits of a
    /// whole batch of appends are answered this way, from the thread that ran the flush.
    pub(crate) fn flush_after_commit_then(&self, answer: Answer) {
        self.request(Some(answer));
    }

    fn request(&self, answer: Option<Answer>) -> u64 {
        let target = {
            let mut state = self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let target = state.started + 1;
            state.wanted = state.wanted.max(target);
            if let Some(answer) = answer {
                state.answers.push((target, answer));
            }
            if state.running {
                return target;
            }
            state.running = true;
            state.started = target;
            target
        };
        let more = flush_once(&self.flusher, &self.shared, target);
        if more {
            let flusher = Arc::clone(&self.flusher);
            let shared = Arc::clone(&self.shared);
            tokio::task::spawn_blocking(move || run(flusher, shared, target + 1));
        }
        target
    }

    /// Returns once flush `target` (or a later one) has succeeded.
    pub(crate) async fn wait(&self, target: u64) -> Result<(), StoreError> {
        let mut done = self.shared.done.subscribe();
        loop {
            {
                let outcome = done.borrow_and_update();
                if outcome.ok_through >= target {
                    return Ok(());
                }
                if outcome.finished >= target {
                    let error = outcome
                        .error
                        .clone()
                        .unwrap_or_else(|| Arc::new(FlushError::Stopped));
                    return Err(StoreError::Flush(error));
                }
            }
            if done.changed().await.is_err() {
                return Err(StoreError::Flush(Arc::new(FlushError::Stopped)));
            }
        }
    }
}

/// Runs flush `number` and publishes its outcome. Answers whether writers are waiting for
/// a later flush, in which case the caller must run flush `number + 1` (already marked as
/// started); otherwise the flusher is marked as stopped.
fn flush_once(flusher: &Flusher, shared: &Shared, number: u64) -> bool {
    publish(shared, number, flusher.flush(), || {})
}

/// Publishes the outcome of flush `number`; see [`flush_once`]. `on_stop` runs, under the
/// lock and before anyone hears of the outcome, when no later flush is wanted.
fn publish(
    shared: &Shared,
    number: u64,
    result: Result<(), FlushError>,
    on_stop: impl FnOnce(),
) -> bool {
    let result = result.map_err(Arc::new);
    let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
    let more = state.wanted > number;
    if more {
        state.started = number + 1;
    } else {
        state.running = false;
        on_stop();
    }
    // Told while the lock is held, so outcomes are published in flush order.
    shared.done.send_modify(|outcome| {
        outcome.finished = outcome.finished.max(number);
        match &result {
            Ok(()) => outcome.ok_through = outcome.ok_through.max(number),
            Err(e) => outcome.error = Some(Arc::clone(e)),
        }
    });
    // Answers wait for the flush after the last one begun when they were given, and
    // flushes end in order, so those due now are all of them but the ones given since
    // this flush began.
    let (due, later) = std::mem::take(&mut state.answers)
        .into_iter()
        .partition::<Vec<_>, _>(|(target, _)| *target <= number);
    state.answers = later;
    drop(state);
    for (_, answer) in due {
        answer(result.clone());
    }
    more
}

/// Runs flush `number`, then the next ones for as long as writers are waiting for them.
fn run(flusher: Arc<Flusher>, shared: Arc<Shared>, mut number: u64) {
    let mut flusher = Some(flusher);
    loop {
        let result = flusher
            .as_ref()
            .map_or(Err(FlushError::Stopped), |f| f.flush());
        // The last flush lets go of the database before anyone hears that it ended: a
        // caller that drops the store and reopens it at once must find the files unlocked.
        if !publish(&shared, number, result, || flusher = None) {
            return;
        }
        number += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Duration;

    use chat_core::{Store, UserId};

    use crate::SledStore;
    use crate::tests::{conversation, draft};

    /// Waits until a flush has begun (and is held by the hook).
    async fn held(entered: &mut tokio::sync::mpsc::UnboundedReceiver<()>, what: &str) {
        tokio::time::timeout(Duration::from_secs(10), entered.recv())
            .await
            .unwrap_or_else(|_| panic!("{what} never began"));
    }

    /// A writer that commits while flush N runs may have committed after N began, so it is
    /// answered only once flush N+1 has ended. A hook holds each flush open until the test
    /// lets it go, so the window a crash test can only hope to hit is held open here.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_during_a_flush_waits_for_the_next_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let c = conversation(UserId::new());
        store.create_conversation(&c).await.unwrap();

        let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel::<()>();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let commit = &store.inner.commit;
        commit.set_hook(Some(Arc::new(move || {
            let _ = entered_tx.send(());
            let _ = release_rx.lock().unwrap().recv();
        })));

        // Flush N begins for the first writer and is held open.
        let first = tokio::spawn({
            let (store, d) = (store.clone(), draft(&c));
            async move { store.append_message(d).await }
        });
        held(&mut entered, "flush N").await;
        let n = commit.flushes();

        // The second writer commits meanwhile and asks for a flush.
        let second = tokio::spawn({
            let (store, d) = (store.clone(), draft(&c));
            async move { store.append_message(d).await }
        });
        while commit.wanted() < n + 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            commit.wanted(),
            n + 1,
            "the second writer waits for flush N+1"
        );

        // Flush N ends: the first writer is answered, and flush N+1 begins and is held.
        release.send(()).unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), first).await;
        assert_eq!(first.unwrap().unwrap().unwrap().seq, 1);
        held(&mut entered, "flush N+1").await;
        assert_eq!(commit.flushes(), n + 1);

        // While flush N+1 is held, the second writer is not answered, however long it waits.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !second.is_finished(),
            "a writer that committed during flush N was answered before flush N+1 ended"
        );

        release.send(()).unwrap();
        let second = tokio::time::timeout(Duration::from_secs(10), second).await;
        assert_eq!(second.unwrap().unwrap().unwrap().seq, 2);
        commit.set_hook(None);
        drop(release);
        drop(entered);
    }
}
