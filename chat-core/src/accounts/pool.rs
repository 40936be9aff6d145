//! A fixed set of threads that do the Argon2 work, each reusing its own working memory.
//!
//! The permit that bounds the work is taken before a job is queued and dropped by the thread
//! when the job is done, so it travels with the job: a caller that gives up (a client that
//! disconnects) frees nothing that is still in use. At most `threads` hashes run or wait in
//! memory whatever callers do, and each thread holds one hash's memory, reused.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, oneshot};

use super::{HashMemory, PasswordCost};

/// A unit of work for a hashing thread.
type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// The hashing threads could not take or finish a job: they could not be started, or a job
/// panicked.
#[derive(Debug, thiserror::Error)]
#[error("the password hashing threads could not do the work")]
pub struct HashingGone(#[source] Option<std::io::Error>);

/// The hashing threads of one service. They start on first use and end when the pool is
/// dropped.
pub(crate) struct HashingPool {
    threads: usize,
    cost: PasswordCost,
    permits: Arc<Semaphore>,
    jobs: Mutex<Option<Sender<Job>>>,
}

impl HashingPool {
    /// A pool of `threads` threads (at least one) hashing at `cost`.
    pub(crate) fn new(threads: usize, cost: PasswordCost) -> Self {
        let threads = threads.max(1);
        Self {
            threads,
            cost,
            permits: Arc::new(Semaphore::new(threads)),
            jobs: Mutex::new(None),
        }
    }

    /// Runs `work` on a hashing thread and answers its result. Waits (asynchronously, and
    /// without holding any memory) while every thread is busy.
    ///
    /// Dropping the returned future before it ends lets a job that has started finish on its
    /// thread, holding its permit, and skips a job that has not.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T, HashingGone> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| HashingGone(None))?;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _permit = permit;
            if !answer.is_closed() {
                let _ = answer.send(work(memory));
            }
        });
        self.sender()?.send(job).map_err(|_| HashingGone(None))?;
        answered.await.map_err(|_| HashingGone(None))
    }

    /// The queue of the threads, starting them on first use.
    fn sender(&self) -> Result<Sender<Job>, HashingGone> {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = &*jobs {
            return Ok(sender.clone());
        }
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..self.threads {
            let receiver = Arc::clone(&receiver);
            let memory = HashMemory::new(self.cost);
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work_loop(&receiver, memory))
                .map_err(|e| HashingGone(Some(e)))?;
        }
        *jobs = Some(sender.clone());
        Ok(sender)
    }
}

impl std::fmt::Debug for HashingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingPool")
            .field("threads", &self.threads)
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

/// One hashing thread: takes jobs until the pool is dropped.
fn work_loop(jobs: &Mutex<Receiver<Job>>, mut memory: HashMemory) {
    loop {
        // The lock is held only while waiting for a job, never while running one.
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        // A panicking job drops its answer (its caller sees `HashingGone`) and its permit;
        // the thread lives on, so the pool keeps its size.
        let _ = catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn abandoned_jobs_keep_their_permit_until_done() {
        let pool = Arc::new(HashingPool::new(2, PasswordCost::INSECURE_FOR_TESTS));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut callers = Vec::new();
        for _ in 0..20 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            callers.push(tokio::spawn(async move {
                pool.run(move |_| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        // Every caller gives up at once; the jobs that started run on, two at a time.
        tokio::time::sleep(Duration::from_millis(5)).await;
        for caller in &callers {
            caller.abort();
        }
        let answer = pool.run(|_| 42).await.unwrap();
        assert_eq!(answer, 42);
        assert!(
            most.load(Ordering::SeqCst) <= 2,
            "more jobs ran than threads"
        );
    }

    #[tokio::test]
    async fn a_panicking_job_leaves_the_pool_whole() {
        let pool = HashingPool::new(1, PasswordCost::INSECURE_FOR_TESTS);
        assert!(pool.run(|_| panic!("boom")).await.is_err());
        assert_eq!(pool.run(|_| 7).await.unwrap(), 7);
    }
}
