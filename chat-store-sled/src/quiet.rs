//! Whether the store is writing: reads run on the caller's thread only while it is not.
//!
//! Handing a read to tokio's blocking pool costs more than the read itself when the keys
//! are cached (a page of 50 takes tens of microseconds; a page request on the server makes
//! three reads), so reads run inline when nothing can make them wait long. What can: sled
//! takes a process-wide lock in read mode for every read and every flush, and in write
//! mode for every transaction's commit, and a transaction waiting for a flush holds new
//! reads behind it, for as long as the flush's disk I/O takes. All of it comes from this
//! store's own writes (sled's periodic flush is off, see `open_db`). Appends never wait
//! for a flush in sled's lock (the committer's transaction and sled's part of a flush
//! exclude each other through the group commit's gate, see `appends`), so an inline read
//! waits at most for one batch's transaction, and appends are not counted here. Every
//! other write is: while one (or its wait for the group flush) is in flight, reads go to
//! the blocking pool as before.
//!
//! The check is a snapshot: a write that starts just after it may still make one inline
//! read wait for one commit, a window of microseconds that the blocking pool's hand-off
//! itself exceeds. A read of keys not in sled's cache reads the disk inline; the server's
//! reads are of sessions, conversations and recent pages, which are the hot keys.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many writes other than appends (including their wait for the group flush) are in
/// flight.
#[derive(Debug, Default)]
pub(crate) struct Writes(AtomicUsize);

/// Marks a write in flight until dropped, so a write whose caller gives up is counted out.
pub(crate) struct InFlight<'a>(&'a Writes);

impl Writes {
    /// Counts a write in until the guard drops.
    pub(crate) fn begin(&self) -> InFlight<'_> {
        self.0.fetch_add(1, Ordering::SeqCst);
        InFlight(self)
    }

    /// Whether no write is in flight now.
    pub(crate) fn quiet(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 0
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}
