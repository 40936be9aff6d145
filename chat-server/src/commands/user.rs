//! `chat-server user add|list|disable|enable`.

use std::io::{BufRead, IsTerminal};

use chat_core::{Limit, NewUser, UserId};
use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use super::keyless_service;
use crate::cli::{CliError, StoreArgs};

/// The `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user, whether or not registration is open. The password is read from standard
    /// input (its first line), or asked for twice when that is a terminal; never from the
    /// command line, where other users of the machine could see it.
    Add(UserAddArgs),
    /// List every user: id, name, email, when they registered, and whether disabled.
    List(StoreArgs),
    /// Disable a user: their sessions are revoked at once and they can no longer log in.
    Disable(UserNameArgs),
    /// Enable a disabled user again.
    Enable(UserNameArgs),
}

/// The options of `user add`.
#[derive(Debug, Clone, Args)]
pub struct UserAddArgs {
    /// The user name.
    pub name: String,
    /// An email address.
    #[arg(long)]
    pub email: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
}

/// The options of `user disable` and `user enable`.
#[derive(Debug, Clone, Args)]
pub struct UserNameArgs {
    /// The user name, matched ignoring case.
    pub name: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
}

/// Runs a `user` subcommand.
///
/// # Errors
///
/// [`CliError`] when the store cannot be opened, the input is refused or the user is
/// unknown.
pub async fn run(command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Add(args) => add(args).await,
        UserCommand::List(store) => list(store).await,
        UserCommand::Disable(args) => set_disabled(args, true).await,
        UserCommand::Enable(args) => set_disabled(args, false).await,
    }
}

async fn add(args: UserAddArgs) -> Result<(), CliError> {
    let password = read_password()?;
    let new = NewUser::parse(&args.name, &password, args.email.as_deref())
        .map_err(chat_core::Error::from)?;
    let service = keyless_service(args.store.store.open().await?);
    let user = service.add_user(new).await?;
    println!("added user {} with id {}", user.username, user.id);
    Ok(())
}

/// The password: asked for twice on a terminal, else the first line of standard input.
fn read_password() -> Result<Zeroizing<String>, CliError> {
    let unreadable =
        |e: std::io::Error| CliError::Input(format!("could not read the password: {e}"));
    if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password("Password: ").map_err(unreadable)?);
        let again =
            Zeroizing::new(rpassword::prompt_password("Password again: ").map_err(unreadable)?);
        if first != again {
            return Err(CliError::Input("the two passwords differ".into()));
        }
        return Ok(first);
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(unreadable)?;
    let trimmed = line.trim_end_matches(['\r', '\n']);
    if trimmed.is_empty() {
        return Err(CliError::Input(
            "no password on standard input (give it as the first line)".into(),
        ));
    }
    Ok(Zeroizing::new(trimmed.to_owned()))
}

async fn list(store: StoreArgs) -> Result<(), CliError> {
    let service = keyless_service(store.store.open().await?);
    let page = Limit::new(500).unwrap_or_default();
    let mut after: Option<UserId> = None;
    println!("id\tusername\temail\tcreated_at\tstatus");
    loop {
        let users = service.list_users(after, page).await?;
        let Some(last) = users.last() else {
            return Ok(());
        };
        after = Some(last.user.id);
        for account in users {
            let u = account.user;
            println!(
                "{}\t{}\t{}\t{}\t{}",
                u.id,
                u.username,
                u.email.as_deref().unwrap_or("-"),
                u.created_at.to_rfc3339(),
                if account.disabled {
                    "disabled"
                } else {
                    "active"
                }
            );
        }
    }
}

async fn set_disabled(args: UserNameArgs, disabled: bool) -> Result<(), CliError> {
    let service = keyless_service(args.store.store.open().await?);
    let user = service.set_user_disabled(&args.name, disabled).await?;
    if disabled {
        println!(
            "disabled user {} ({}): sessions revoked, logins refused",
            user.username, user.id
        );
    } else {
        println!("enabled user {} ({})", user.username, user.id);
    }
    Ok(())
}
