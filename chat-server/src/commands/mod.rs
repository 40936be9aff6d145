//! The operators' subcommands beside `serve`, one file each: `copy`, `export`, `migrate`,
//! `user`, `provider` and `prune` (which also holds the pruning `serve --retain` runs).

pub mod copy;
pub mod export;
pub mod migrate;
pub mod provider;
pub mod prune;
pub mod user;

use std::sync::Arc;

use chat_core::{ChatService, MasterKey, Sealer, ServiceConfig, Store};

/// A service for commands that seal and open nothing (users, providers, pruning), so they
/// need no master key: the one given to it is thrown away.
pub(crate) fn keyless_service(store: Arc<dyn Store>) -> ChatService {
    ChatService::new(
        store,
        Sealer::new(1, MasterKey::generate()),
        ServiceConfig::default(),
    )
}
