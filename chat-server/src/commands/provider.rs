//! `chat-server provider add|list|remove`: the shared providers, which the API cannot
//! create or delete.

use chat_core::{Limit, NewProvider, ProviderId};
use clap::{Args, Subcommand};

use super::keyless_service;
use crate::cli::{CliError, StoreArgs};

/// The `provider` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Add a provider shared with every user.
    Add(ProviderAddArgs),
    /// List every provider, shared and users' own: id, name, endpoint, owner.
    List(StoreArgs),
    /// Remove a shared provider, and every user's config (API key) for it.
    Remove(ProviderRemoveArgs),
}

/// The options of `provider add`.
#[derive(Debug, Clone, Args)]
pub struct ProviderAddArgs {
    /// The provider's name, unique among shared providers ignoring case.
    #[arg(long, env = "CHAT_PROVIDER_NAME")]
    pub name: String,
    /// Its API endpoint: an absolute http or https URL.
    #[arg(long, env = "CHAT_PROVIDER_ENDPOINT")]
    pub endpoint: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
}

/// The options of `provider remove`.
#[derive(Debug, Clone, Args)]
pub struct ProviderRemoveArgs {
    /// The shared provider's name (ignoring case) or id.
    pub name: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
}

/// Runs a `provider` subcommand.
///
/// # Errors
///
/// [`CliError`] when the store cannot be opened, the input is refused or no shared
/// provider matches.
pub async fn run(command: ProviderCommand) -> Result<(), CliError> {
    match command {
        ProviderCommand::Add(args) => add(args).await,
        ProviderCommand::List(store) => list(store).await,
        ProviderCommand::Remove(args) => remove(args).await,
    }
}

async fn add(args: ProviderAddArgs) -> Result<(), CliError> {
    let new = NewProvider::parse(&args.name, &args.endpoint).map_err(chat_core::Error::from)?;
    let service = keyless_service(args.store.store.open().await?);
    let provider = service.create_shared_provider(new).await?;
    println!(
        "added shared provider {} ({}) with id {}",
        provider.name, provider.api_endpoint, provider.id
    );
    Ok(())
}

async fn list(store: StoreArgs) -> Result<(), CliError> {
    let service = keyless_service(store.store.open().await?);
    let page = Limit::new(500).unwrap_or_default();
    let mut after: Option<ProviderId> = None;
    println!("id\tname\tendpoint\towner");
    loop {
        let providers = service.list_all_providers(after, page).await?;
        let Some(last) = providers.last() else {
            return Ok(());
        };
        after = Some(last.id);
        for p in providers {
            let owner = p
                .owner_id
                .map_or_else(|| "shared".to_owned(), |u| u.to_string());
            println!("{}\t{}\t{}\t{owner}", p.id, p.name, p.api_endpoint);
        }
    }
}

async fn remove(args: ProviderRemoveArgs) -> Result<(), CliError> {
    let service = keyless_service(args.store.store.open().await?);
    let provider = service.delete_shared_provider(&args.name).await?;
    println!(
        "removed shared provider {} ({}) and its users' configs",
        provider.name, provider.id
    );
    Ok(())
}
