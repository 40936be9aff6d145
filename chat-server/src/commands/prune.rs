//! `chat-server prune --older-than DURATION [--dry-run]`, and the same pruning run
//! periodically by `serve --retain DURATION`.

use std::time::Duration;

use chat_core::ChatService;
use clap::Args;

use super::keyless_service;
use crate::cli::{CliError, StoreArgs, parse_duration};

/// The options of `prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Delete conversations (with their messages and attachments) not updated for this
    /// long, e.g. 365d.
    #[arg(long, value_parser = parse_duration)]
    pub older_than: Duration,
    /// Only count what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
}

/// Runs `prune`.
///
/// # Errors
///
/// [`CliError`] when the store cannot be opened or fails.
pub async fn run(args: PruneArgs) -> Result<(), CliError> {
    let older_than = to_chrono(args.older_than)?;
    let service = keyless_service(args.store.store.open().await?);
    let pruned = service.prune(older_than, args.dry_run).await?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    println!(
        "{verb} {} conversations ({} messages) not updated for {}",
        pruned.conversations,
        pruned.messages,
        humanize(args.older_than)
    );
    Ok(())
}

/// A retention period as chrono's duration; one too long for it is refused.
pub(crate) fn to_chrono(d: Duration) -> Result<chrono::Duration, CliError> {
    chrono::Duration::from_std(d)
        .map_err(|_| CliError::Input(format!("{} is too long a period", humanize(d))))
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s % 86_400 == 0 && s > 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// What `serve --retain` runs: the pruning now and then every `every`, for as long as the
/// server runs. A failed run is logged and tried again at the next turn.
pub(crate) async fn retain(service: ChatService, older_than: chrono::Duration, every: Duration) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match service.prune(older_than, false).await {
            Ok(pruned) => tracing::info!(
                conversations = pruned.conversations,
                messages = pruned.messages,
                "retention: deleted conversations not updated within the retention period"
            ),
            Err(e) => tracing::warn!(
                error = %crate::error_chain(&e),
                "retention: pruning failed; trying again at the next turn"
            ),
        }
    }
}
