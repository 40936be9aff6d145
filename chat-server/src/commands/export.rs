//! `chat-server export --user NAME`: the lines `GET /chat/export` would stream for that
//! user, on standard output.

use std::io::Write;

use chat_core::{Caller, ChatService, Entity, MasterKey, Sealer, ServiceConfig};
use clap::Args;

use crate::cli::{CliError, StoreArgs};

/// The options of `export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The user whose data to export.
    #[arg(long)]
    pub user: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
}

/// Runs `export`.
///
/// # Errors
///
/// [`CliError::Store`] when the store cannot be opened, [`CliError::Service`] for an
/// unknown user or a store that fails midway (the lines written so far stay written, and
/// the exit status says the export is incomplete), [`CliError::Output`] when standard
/// output cannot be written.
pub async fn run(args: ExportArgs) -> Result<(), CliError> {
    let store = args.store.store.open().await?;
    let user = store
        .get_user_by_username(&args.user)
        .await?
        .ok_or(chat_core::Error::NotFound(Entity::User))?;
    // An export shows no key, so nothing is ever unsealed: any master key will do.
    let service = ChatService::new(
        store,
        Sealer::new(1, MasterKey::generate()),
        ServiceConfig::default(),
    );
    let mut lines = crate::export::lines(service, Caller::trusted(user.id));
    let mut stdout = std::io::BufWriter::new(std::io::stdout());
    while let Some(line) = lines.recv().await {
        stdout.write_all(&line?).map_err(CliError::Output)?;
    }
    stdout.flush().map_err(CliError::Output)
}
