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
//! The flush runs on a blocking thread of its own, not in the writer's future: a writer
//! whose request is dropped half-way cannot leave the flusher stuck.

use std::fs::File;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::error::{FlushError, StoreError};

/// What makes the data durable: sled's flush, then optionally `fdatasync` of its log file.
pub(crate) struct Flusher {
    pub db: sled::Db,
    /// A handle on sled's log file, for `fdatasync`; `None` when the store is configured
    /// to trust sled's own flush.
    pub sync_file: Option<File>,
}

impl Flusher {
    pub(crate) fn flush(&self) -> Result<(), FlushError> {
        self.db.flush()?;
        if let Some(file) = &self.sync_file {
            // sled on Linux ends a flush with sync_file_range, which neither writes the
            // file's size nor empties the drive's cache; fdatasync does both.
            file.sync_data()?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct State {
    /// The number of the flush running or last run.
    started: u64,
    /// The highest flush number any writer is waiting for.
    wanted: u64,
    running: bool,
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

    /// Returns once a flush that began after this call has succeeded, so everything the
    /// caller committed before calling is durable.
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        let mut done = self.shared.done.subscribe();
        let target = {
            let mut state = self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let target = state.started + 1;
            state.wanted = state.wanted.max(target);
            if !state.running {
                state.running = true;
                state.started = target;
                let flusher = Arc::clone(&self.flusher);
                let shared = Arc::clone(&self.shared);
                tokio::task::spawn_blocking(move || run(flusher, shared, target));
            }
            target
        };
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

/// Runs flush `number`, then the next ones for as long as writers are waiting for them.
fn run(flusher: Arc<Flusher>, shared: Arc<Shared>, mut number: u64) {
    let mut flusher = Some(flusher);
    loop {
        let result = flusher
            .as_ref()
            .map_or(Err(FlushError::Stopped), |f| f.flush());
        let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        let more = state.wanted > number;
        if more {
            state.started = number + 1;
        } else {
            state.running = false;
            // Let go of the database before anyone hears that the flush ended: a caller
            // that drops the store and reopens it at once must find the files unlocked.
            flusher = None;
        }
        // Told while the lock is held, so outcomes are published in flush order.
        shared.done.send_modify(|outcome| {
            outcome.finished = outcome.finished.max(number);
            match result {
                Ok(()) => outcome.ok_through = outcome.ok_through.max(number),
                Err(e) => outcome.error = Some(Arc::new(e)),
            }
        });
        drop(state);
        if !more {
            return;
        }
        number += 1;
    }
}
