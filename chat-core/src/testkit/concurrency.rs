//! The races: cases that need many tasks on a multi-threaded runtime, and the big cases,
//! whose records are written by concurrent tasks so that they stay quick on a store that
//! commits each write durably.
//!
//! Each takes a fresh store behind an [`Arc`](std::sync::Arc) so that it can hand clones to
//! spawned tasks. [`store_tests!`](crate::store_tests) runs them on a runtime with four
//! worker threads; to call one directly use [`run`](super::run) with
//! [`Flavor::MultiThread`](super::Flavor):
//!
//! ```
//! use chat_core::testkit::{Flavor, MemoryStoreFactory, concurrency, run};
//!
//! run(&MemoryStoreFactory, Flavor::MultiThread, concurrency::concurrent_appends_are_gapless);
//! ```

mod batches;
mod cost;
mod deletes;
mod races;

/// Every race body, whichever file holds it, for the re-exports of the one list of cases
/// to pick from (see `cases.rs`).
mod bodies {
    pub use super::batches::*;
    pub use super::cost::*;
    pub use super::deletes::*;
    pub use super::races::*;
}

pub use batches::{EXPIRED_SESSIONS, PURGED_ATTACHMENTS, PURGED_MESSAGES};
pub use cost::{COST_ALLOWED_RATIO, COST_READS, COST_SIZE_RATIO, COST_SMALL};
pub use deletes::{DELETED_ONE_BY_ONE, DELETED_WHILE_READ};

/// How many tasks append at once in [`concurrent_appends_are_gapless`].
pub const APPEND_TASKS: usize = 32;
/// How many messages each of those tasks appends.
pub const APPENDS_PER_TASK: usize = 10;

crate::__store_cases!(crate::testkit::macros::reexport_cases![race from bodies]);
