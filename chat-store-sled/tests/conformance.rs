//! The shared test kit of chat-core, run against a fresh sled store in a temporary
//! directory per case, with the reopen case.

use chat_core::testkit::{ReopenableStoreFactory, StoreFactory};
use chat_store_sled::SledStore;
use tempfile::TempDir;

struct Fresh;

impl StoreFactory for Fresh {
    type Store = SledStore;
    type Guard = TempDir;

    async fn create(&self) -> (SledStore, TempDir) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SledStore::open(dir.path().join("db")).expect("a fresh sled store opens");
        (store, dir)
    }
}

impl ReopenableStoreFactory for Fresh {
    async fn reopen(&self, dir: &TempDir) -> SledStore {
        SledStore::open(dir.path().join("db")).expect("the sled store opens again")
    }
}

chat_core::store_tests!(sled, Fresh, durable);
