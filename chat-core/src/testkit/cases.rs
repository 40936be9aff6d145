//! The conformance cases: one `async fn` per behaviour of the [`Store`](crate::Store) contract.
//!
//! Each takes a fresh, empty store and panics, with a message that names the operation and
//! what came back, when the store breaks the contract. Run them all with
//! [`store_tests!`](crate::store_tests), or call one directly:
//!
//! ```
//! use chat_core::MemoryStore;
//! use chat_core::testkit::{Flavor, MemoryStoreFactory, cases, run};
//!
//! run(&MemoryStoreFactory, Flavor::CurrentThread, |store| async move {
//!     cases::append_assigns_seq_from_one(&*store).await;
//! });
//! ```
//!
//! The list of cases, with their kinds, is [`CASES`](super::CASES).

mod contract;
mod inputs;
mod lookups;
mod operators;
pub(crate) use operators::scan_all;
mod stale_indexes;

/// Every case body, whichever file holds it, for the re-exports of the one list to pick
/// from. A glob keeps the guarantee: a body the list does not name is still not re-exported,
/// so it is dead code in its file.
mod bodies {
    pub use super::contract::*;
    pub use super::inputs::*;
    pub use super::lookups::*;
    pub use super::operators::*;
    pub use super::stale_indexes::*;
}

crate::__store_cases!(crate::testkit::macros::reexport_cases![plain from bodies]);
