//! The shared test suite for [`Store`] implementations (feature `testkit`).
//!
//! A testing aid, not a stable API: cases are added as the contract is pinned down, and
//! their names and signatures may change between minor versions.
//!
//! Every store in this workspace, and any store written elsewhere, runs the same suite:
//!
//! - [`cases`]: one `async fn` per behaviour of the [`Store`] contract, each taking a
//!   fresh, empty store and panicking with a message that names what went wrong;
//! - [`concurrency`]: races that need a multi-threaded runtime (concurrent appends,
//!   registrations, config creations, a delete racing appends, reads during deletes), and
//!   the cases big enough to want concurrent writers (more than one batch of expiry and
//!   purge, the cost of a page against the size of its conversation);
//! - [`durability`]: write, drop the store, open it again from the same place, read back;
//! - [`several_stores`]: several stores over one database (two pools, two processes)
//!   appending to one conversation, for stores that can be opened more than once;
//! - [`model`]: a property test that applies random sequences of operations, valid and
//!   invalid, to the store under test and to [`MemoryStore`], the
//!   reference, and demands the same answers;
//! - [`store_tests!`](crate::store_tests): a macro that expands, for a [`StoreFactory`], into
//!   a module with one `#[test]` per case, so a failure names the behaviour and the store.
//!
//! [`CASES`] lists every test the macro can generate, with its [`CaseKind`].
//!
//! # Using it
//!
//! Enable the feature in the store crate's dev-dependencies, write a [`StoreFactory`] that
//! hands out a fresh store (with whatever must outlive it: a temporary directory, a database
//! schema), and call the macro from an integration test:
//!
//! ```
//! use chat_core::MemoryStore;
//! use chat_core::testkit::StoreFactory;
//!
//! struct Fresh;
//!
//! impl StoreFactory for Fresh {
//!     type Store = MemoryStore;
//!     type Guard = ();
//!     async fn create(&self) -> (MemoryStore, ()) {
//!         (MemoryStore::new(), ())
//!     }
//! }
//!
//! chat_core::store_tests!(memory, Fresh);
//! # fn main() {}
//! ```
//!
//! A store that can be opened again from where it keeps its data also implements
//! [`ReopenableStoreFactory`] and passes `durable` to the macro, which adds the
//! [`durability`] case. See the crate's front page for a complete example with a
//! temporary directory.
//!
//! Each generated test builds its own Tokio runtime (current-thread for plain cases,
//! multi-threaded with four workers for the races), so a factory may use Tokio freely and the
//! store crate needs no test macro of its own. The property test runs
//! [`DEFAULT_PROPTEST_CASES`] cases unless the macro says otherwise; the `PROPTEST_CASES`
//! environment variable overrides both.

use std::future::Future;
use std::sync::Arc;

use crate::memory::MemoryStore;
use crate::store::Store;

pub mod cases;
pub mod concurrency;
pub mod durability;
pub mod faults;
mod fixtures;
mod macros;
pub mod model;
pub mod several_stores;
mod tmpfs;

#[doc(hidden)]
pub use tokio as __tokio;

pub use model::DEFAULT_PROPTEST_CASES;
pub use tmpfs::Tmpfs;

/// How [`store_tests!`](crate::store_tests) runs a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseKind {
    /// A function of [`cases`], on a current-thread runtime.
    Plain,
    /// A race of [`concurrency`], on a multi-threaded runtime.
    Race,
    /// The [`durability`] case: only with `durable`, for a [`ReopenableStoreFactory`].
    Durable,
    /// The property test of [`model`].
    Property,
    /// A case of [`faults`]: only from
    /// [`store_fault_tests!`](crate::store_fault_tests), for a
    /// [`CommitFaultFactory`](faults::CommitFaultFactory).
    CommitFault,
}

/// One test of the suite: the name of the `#[test]` that
/// [`store_tests!`](crate::store_tests) generates for it, and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Case {
    /// The test's name, and for [`CaseKind::Plain`] and [`CaseKind::Race`] the name of the
    /// function in [`cases`] or [`concurrency`].
    pub name: &'static str,
    /// How it runs.
    pub kind: CaseKind,
}

crate::__store_cases!(crate::testkit::macros::case_list![
    /// Every case of the suite, in the order [`store_tests!`](crate::store_tests) generates
    /// them. Made from the same list as the macro's tests, so the two cannot disagree.
]);

/// Hands out fresh, empty stores for the suite: one per case.
///
/// `Guard` is whatever must live as long as the store and be cleaned up after it: a
/// temporary directory, a handle that drops a database schema. The suite drops the store
/// first and the guard after it. Use `()` when there is nothing to keep.
///
/// `create` and `destroy` run inside a Tokio runtime; implement them with `async fn`.
pub trait StoreFactory {
    /// The store under test.
    type Store: Store;
    /// Kept alive until the case has finished with the store.
    type Guard;

    /// A new, empty store and its guard.
    fn create(&self) -> impl Future<Output = (Self::Store, Self::Guard)>;

    /// Cleans up after a case that passed: by default drops the store, then the guard.
    /// Override it for cleanup that must be awaited, such as dropping a database schema.
    /// (After a failed case the store and guard are simply dropped, which leaves the
    /// evidence in place.)
    fn destroy(&self, store: Self::Store, guard: Self::Guard) -> impl Future<Output = ()> {
        drop(store);
        drop(guard);
        std::future::ready(())
    }

    /// `Some(reason)` to skip every case, e.g. when the environment variable that names a
    /// test database is not set. Checked at run time, before anything is created.
    fn skip(&self) -> Option<String> {
        None
    }
}

/// A [`StoreFactory`] whose stores can be opened again from where they keep their data,
/// for the [`durability`] case.
pub trait ReopenableStoreFactory: StoreFactory {
    /// Opens the store that [`create`](StoreFactory::create) returned with `guard` again,
    /// after that store has been dropped.
    fn reopen(&self, guard: &Self::Guard) -> impl Future<Output = Self::Store>;
}

/// A [`StoreFactory`] made of a closure; see [`factory_fn`].
#[derive(Debug, Clone, Copy)]
pub struct FactoryFn<F>(F);

/// A [`StoreFactory`] from a closure that returns a future of `(store, guard)`:
/// `factory_fn(|| async { (MemoryStore::new(), ()) })`.
pub fn factory_fn<F, Fut, S, G>(f: F) -> FactoryFn<F>
where
    F: Fn() -> Fut,
    Fut: Future<Output = (S, G)>,
    S: Store,
{
    FactoryFn(f)
}

impl<F, Fut, S, G> StoreFactory for FactoryFn<F>
where
    F: Fn() -> Fut,
    Fut: Future<Output = (S, G)>,
    S: Store,
{
    type Store = S;
    type Guard = G;

    fn create(&self) -> impl Future<Output = (S, G)> {
        (self.0)()
    }
}

/// The factory of [`MemoryStore`]s, for the kit's own tests and for wrappers around it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryStoreFactory;

impl StoreFactory for MemoryStoreFactory {
    type Store = MemoryStore;
    type Guard = ();

    async fn create(&self) -> (MemoryStore, ()) {
        (MemoryStore::new(), ())
    }
}

/// Which runtime [`run`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// One thread: enough for every case that does not race.
    CurrentThread,
    /// Four worker threads, for the [`concurrency`] cases.
    MultiThread,
}

/// A Tokio runtime of `flavor` with everything enabled.
///
/// # Panics
///
/// If the runtime cannot be built.
#[must_use]
pub fn runtime(flavor: Flavor) -> tokio::runtime::Runtime {
    let mut builder = match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(4);
            b
        }
    };
    builder
        .enable_all()
        .build()
        .expect("the test kit could not build a Tokio runtime")
}

/// Runs one case: builds a runtime of `flavor`, asks `factory` for a fresh store, hands it
/// to `case`, then [`destroy`](StoreFactory::destroy)s store and guard. What the macro's
/// tests call. Does nothing but say so when the factory asks to [`skip`](StoreFactory::skip).
pub fn run<F, C, Fut>(factory: &F, flavor: Flavor, case: C)
where
    F: StoreFactory,
    C: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    if skipped(factory) {
        return;
    }
    runtime(flavor).block_on(async {
        let (store, guard) = factory.create().await;
        let store = Arc::new(store);
        case(Arc::clone(&store) as Arc<dyn Store>).await;
        match Arc::try_unwrap(store) {
            Ok(store) => factory.destroy(store, guard).await,
            // A task the case spawned still holds the store: let it go as it may.
            Err(store) => {
                drop(store);
                drop(guard);
            }
        }
    });
}

/// Runs the [`durability`] case against `factory` on a fresh runtime.
pub fn run_durability<F: ReopenableStoreFactory>(factory: &F) {
    if skipped(factory) {
        return;
    }
    runtime(Flavor::CurrentThread).block_on(durability::survives_reopening(factory));
}

/// Runs `case`, a case that takes the factory itself (a [`faults`] case), on a fresh
/// runtime, unless `factory` asks to be skipped. (The future does nothing until run.)
pub fn run_factory_case<F: StoreFactory>(factory: &F, case: impl Future<Output = ()>) {
    if skipped(factory) {
        return;
    }
    runtime(Flavor::CurrentThread).block_on(case);
}

/// Whether `factory` asks to be skipped; says why on standard error.
pub(crate) fn skipped<F: StoreFactory>(factory: &F) -> bool {
    match factory.skip() {
        Some(reason) => {
            eprintln!("skipped: {reason}");
            true
        }
        None => false,
    }
}
