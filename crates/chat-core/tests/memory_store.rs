//! The whole test kit against `MemoryStore`, the reference store.

use chat_core::testkit::MemoryStoreFactory;

chat_core::store_tests!(memory_store, MemoryStoreFactory);
