//! Whether the disk under an SQLite store has room for a write: a free-space reserve checked
//! before each write, and the memory of a write that met a full disk, for `ping`.
//!
//! SQLite survives a full disk: a commit that cannot be written fails with `SQLITE_FULL`
//! and is rolled back, and writes work again once there is room. The reserve refuses
//! writes a little before that, changing nothing, while the last bytes are still free for
//! the WAL, the checkpoint and other programs on the disk, and it lets `ping` say "out of
//! space" before a write has failed. With the reserve off, `ping` still reports a disk a
//! write found full until the file system has more room than it had then, or a write
//! succeeds.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_core::{Error, Result, Unavailable};

use super::BACKEND;

/// The default reserve: a few of the largest requests, and room for SQLite to checkpoint.
pub(crate) const DEFAULT_MIN_FREE_SPACE: u64 = 64 * 1024 * 1024;

/// No write has met a full disk since the last one that succeeded.
const NOT_FULL: u64 = u64::MAX;

/// Why a write was refused for space; kept as the source of the error.
#[derive(Debug, thiserror::Error)]
#[error("{available} bytes are free on the store's file system, below the reserve of {reserve}")]
struct BelowReserve {
    available: u64,
    reserve: u64,
}

/// Why `ping` says the disk is still full; kept as the source of the error.
#[derive(Debug, thiserror::Error)]
#[error("a write found the disk full with {at_failure} bytes free, and {available} are free now")]
struct StillFull {
    available: u64,
    at_failure: u64,
}

#[derive(Debug)]
pub(crate) struct Space {
    /// The database file: its file system is the one that fills.
    file: PathBuf,
    reserve: AtomicU64,
    /// The free bytes when a write last failed for space, or [`NOT_FULL`].
    free_at_failure: AtomicU64,
}

impl Space {
    pub(crate) fn new(file: PathBuf, reserve: u64) -> Self {
        Self {
            file,
            reserve: AtomicU64::new(reserve),
            free_at_failure: AtomicU64::new(NOT_FULL),
        }
    }

    pub(crate) fn set_reserve(&self, bytes: u64) {
        self.reserve.store(bytes, Ordering::Relaxed);
    }

    /// Refuses a write while less than the reserve is free.
    pub(crate) fn check_write(&self) -> Result<()> {
        let reserve = self.reserve.load(Ordering::Relaxed);
        if reserve == 0 {
            return Ok(());
        }
        match free_space(&self.file) {
            Ok(available) if available < reserve => Err(Error::unavailable(
                BACKEND,
                Unavailable::OutOfSpace,
                BelowReserve { available, reserve },
            )),
            // Not knowing is no reason to refuse: SQLite itself says when it cannot write.
            _ => Ok(()),
        }
    }

    /// Remembers what a write that was let through found: a full disk, or room.
    pub(crate) fn note<T>(&self, outcome: &Result<T>) {
        match outcome {
            Ok(_) => self.free_at_failure.store(NOT_FULL, Ordering::Relaxed),
            Err(Error::Unavailable {
                reason: Unavailable::OutOfSpace,
                ..
            }) => {
                // Without a figure there is nothing to compare against later, and `ping`
                // must not stay unready on a guess: remember nothing.
                if let Ok(available) = free_space(&self.file) {
                    self.free_at_failure.store(available, Ordering::Relaxed);
                }
            }
            // A conflict, a missing parent, a broken connection: nothing about space.
            Err(_) => {}
        }
    }

    /// What `ping` says about space: out of it below the reserve, and while the file system
    /// has no more room than when a write last found it full.
    pub(crate) fn check_ping(&self) -> Result<()> {
        self.check_write()?;
        let at_failure = self.free_at_failure.load(Ordering::Relaxed);
        if at_failure == NOT_FULL {
            return Ok(());
        }
        match free_space(&self.file) {
            Ok(available) if available <= at_failure => Err(Error::unavailable(
                BACKEND,
                Unavailable::OutOfSpace,
                StillFull {
                    available,
                    at_failure,
                },
            )),
            _ => Ok(()),
        }
    }
}

/// Bytes available to an unprivileged writer on the file system holding `file`.
fn free_space(file: &std::path::Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(file)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}
