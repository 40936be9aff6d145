//! `chat-server migrate`: creates the store if needed, brings its schema up to date and
//! prints the version it is at.
//!
//! Servers migrate on start over a direct URL; this is for the setups where they do not:
//! behind a pooler in transaction mode (`pgbouncer=true`), where a server refuses to start
//! on a schema that is behind, or when an operator wants the upgrade to be a step of its
//! own before new servers roll out.

use clap::Args;

use crate::cli::{CliError, StoreArgs};

/// The options of `migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
}

/// Runs `migrate`, printing one line: the store and its schema version.
///
/// # Errors
///
/// [`CliError::Store`] when the store cannot be reached, was migrated by a newer program,
/// a migration fails, or the URL leads through a pooler.
pub async fn run(args: MigrateArgs) -> Result<(), CliError> {
    let url = &args.store.store;
    let version = url.migrate().await?;
    println!("{url}: {version}");
    Ok(())
}
