//! Whether the store may serve: free disk space against a reserve, and a latch for the
//! engine failure sled cannot come back from.
//!
//! sled 0.34 handles a full disk badly: once a write to its log fails (`ENOSPC` or any
//! other I/O error) it records a global error, the next write blocks forever, and dropping
//! the database blocks too, so its file lock is never released and it cannot be reopened
//! in the same process. The store therefore keeps sled away from a full disk: before each
//! write it asks the file system how much space is left and refuses the write, changing
//! nothing, while less than the reserve is free. When space returns, writes go on.
//!
//! If sled fails anyway (another process filled the disk faster than the reserve, or the
//! device failed), the store latches: every later call is refused at once instead of
//! hanging, and reads are refused too, because sled's memory may hold changes its log
//! never got. Only a restart clears it; what was acknowledged was flushed before.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_core::{Error, Unavailable};

/// The default reserve: sled writes its log in segments of 512 KiB and may need several to
/// finish a flush and rewrite old ones, and one request body is at most a few MiB.
pub(crate) const DEFAULT_MIN_FREE_SPACE: u64 = 64 * 1024 * 1024;

/// Why a write was refused for space; kept as the source of the error.
#[derive(Debug, thiserror::Error)]
#[error("{available} bytes are free on the store's file system, below the reserve of {reserve}")]
pub(crate) struct BelowReserve {
    available: u64,
    reserve: u64,
}

/// The I/O failure that latched the store.
#[derive(Debug, Clone, thiserror::Error)]
#[error("an earlier write failed and sled cannot recover in this process: {0}")]
pub(crate) struct Latched(String);

pub(crate) struct Health {
    dir: PathBuf,
    min_free_space: AtomicU64,
    failure: OnceLock<Latched>,
}

impl Health {
    pub(crate) fn new(dir: PathBuf, min_free_space: u64) -> Self {
        Self {
            dir,
            min_free_space: AtomicU64::new(min_free_space),
            failure: OnceLock::new(),
        }
    }

    pub(crate) fn set_min_free_space(&self, bytes: u64) {
        self.min_free_space.store(bytes, Ordering::Relaxed);
    }

    /// Refuses every call once sled has failed.
    pub(crate) fn check_read(&self) -> Result<(), Error> {
        match self.failure.get() {
            Some(latched) => Err(Error::unavailable(
                "sled",
                Unavailable::Failed,
                latched.clone(),
            )),
            None => Ok(()),
        }
    }

    /// Refuses a write once sled has failed, or while less than the reserve is free.
    pub(crate) fn check_write(&self) -> Result<(), Error> {
        self.check_read()?;
        let reserve = self.min_free_space.load(Ordering::Relaxed);
        if reserve == 0 {
            return Ok(());
        }
        match free_space(&self.dir) {
            Ok(available) if available < reserve => Err(Error::unavailable(
                "sled",
                Unavailable::OutOfSpace,
                BelowReserve { available, reserve },
            )),
            Ok(_) => Ok(()),
            // Not knowing is no reason to refuse: sled itself will say if it cannot write.
            Err(_) => Ok(()),
        }
    }

    /// Latches the store after sled failed to write; answers the error for the caller.
    pub(crate) fn fail(&self, cause: &dyn std::error::Error) -> Error {
        let latched = self
            .failure
            .get_or_init(|| Latched(cause.to_string()))
            .clone();
        Error::unavailable("sled", Unavailable::Failed, latched)
    }
}

/// Bytes available to an unprivileged writer on the file system holding `dir`.
fn free_space(dir: &std::path::Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}
