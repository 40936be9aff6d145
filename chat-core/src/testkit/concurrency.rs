//! The races: cases that need many tasks on a multi-threaded runtime.
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

mod races;

/// How many tasks append at once in [`concurrent_appends_are_gapless`].
pub const APPEND_TASKS: usize = 32;
/// How many messages each of those tasks appends.
pub const APPENDS_PER_TASK: usize = 10;

crate::__store_cases!(crate::testkit::macros::reexport_cases![race from races]);
