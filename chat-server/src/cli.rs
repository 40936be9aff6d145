//! The command line: `chat-server [serve] …` and the operators' commands (`copy`, `user`,
//! `provider`, `prune`), whose code is in [`crate::commands`].
//!
//! Every flag can also be set through the environment variable named in its help.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use chat_core::accounts::PasswordCost;
use chat_core::{ChatService, Sealer, ServiceConfig};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;

use crate::commands;
pub use crate::commands::copy::CopyArgs;
pub use crate::commands::provider::{ProviderAddArgs, ProviderCommand};
pub use crate::commands::prune::PruneArgs;
pub use crate::commands::user::UserCommand;
use crate::keyfile::{self, KeyError, KeySource};
use crate::store_url::{OpenStoreError, StoreOptions, StoreUrl};
use crate::{AppConfig, Rate, ThrottleConfig, app, serve};

/// The chat-store HTTP server.
#[derive(Debug, Parser)]
#[command(
    name = "chat-server",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; `serve` when none is given.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The options of `serve`, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
// Parsed once at start-up and matched once: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve(ServeArgs),
    /// Manage the shared LLM providers, which the API cannot create.
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// Copy everything from one store into another (e.g. sled to PostgreSQL).
    Copy(CopyArgs),
    /// Manage users: add, list, disable, enable.
    #[command(subcommand)]
    User(UserCommand),
    /// Delete conversations not updated for a while.
    Prune(PruneArgs),
    /// Create the store if needed, bring its schema up to date and print its version.
    /// Over PostgreSQL, use the direct URL, not one through a pooler.
    Migrate(crate::commands::migrate::MigrateArgs),
    /// Print everything of one user's as `GET /chat/export` streams it (NDJSON).
    Export(crate::commands::export::ExportArgs),
}

/// Which store to use.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: sled:PATH, sqlite:PATH, postgres://USER:PASSWORD@HOST/DB or memory:.
    // The value may hold a database password, so `--help` must not echo it.
    #[arg(
        long,
        env = "CHAT_STORE",
        default_value = "sled:./chat-data",
        hide_env_values = true
    )]
    pub store: StoreUrl,
}

/// Whether anyone may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    /// `POST /users` creates users.
    Open,
    /// `POST /users` answers 403.
    Closed,
}

/// The options of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "CHAT_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
    /// A file holding the master key (64 hex characters) that seals users' API keys.
    /// The key may instead be given in CHAT_MASTER_KEY. Without either, an embedded store
    /// keeps a generated key beside its data.
    #[arg(long, env = "CHAT_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Whether anyone may register.
    #[arg(long, env = "CHAT_REGISTRATION", value_enum, default_value = "open")]
    pub registration: Registration,
    /// How long a login token lives (e.g. 7d, 12h, 30m, 90s).
    #[arg(long, env = "CHAT_TOKEN_TTL", default_value = "7d", value_parser = parse_duration)]
    pub token_ttl: Duration,
    /// The largest request body, in bytes.
    #[arg(long, env = "CHAT_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// The largest message content, in bytes.
    #[arg(long, env = "CHAT_MAX_CONTENT_BYTES", default_value_t = 256 * 1024)]
    pub max_content_bytes: usize,
    /// How many connections are open at once. Past it, the connection idle the longest is
    /// closed to admit a new one; when every connection is busy, new ones wait.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// How long one request may take.
    #[arg(long, env = "CHAT_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// How long a new connection may take to send its first complete request head, whatever
    /// the protocol (for HTTP/2: preface, settings and the request's headers).
    #[arg(long, env = "CHAT_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// How long a connection may stay idle between requests (HTTP/1 keep-alive or HTTP/2)
    /// before it is closed; also how long a later HTTP/1 request head may take.
    #[arg(long, env = "CHAT_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// How often a quiet HTTP/2 connection is pinged.
    #[arg(long, env = "CHAT_HTTP2_KEEP_ALIVE_INTERVAL", default_value = "20s", value_parser = parse_duration)]
    pub http2_keep_alive_interval: Duration,
    /// How long an HTTP/2 ping may go unanswered before the connection is closed.
    #[arg(long, env = "CHAT_HTTP2_KEEP_ALIVE_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub http2_keep_alive_timeout: Duration,
    /// How many password hashes (logins, registrations) may run or wait in memory at once;
    /// each holds 19 MiB on a thread of its own. Default: the number of CPUs.
    #[arg(long, env = "CHAT_MAX_CONCURRENT_HASHES", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_hashes: Option<u16>,
    /// How long shutdown waits for requests in flight.
    #[arg(long, env = "CHAT_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// For the embedded stores (sled, SQLite): below this much free space on their disk,
    /// writes are refused with 503 and resume by themselves once space is freed; reads go
    /// on. 0 turns the check off. Default: 64MiB.
    #[arg(long, env = "CHAT_MIN_FREE_SPACE", value_parser = parse_size)]
    pub min_free_space: Option<u64>,
    /// For sled: the most memory its page cache may hold. The server's memory on sled is
    /// about twice this, plus what sled keeps for every page of the data, which grows with
    /// the database whatever this is (docs/BENCHMARKS.md).
    #[arg(long, env = "CHAT_SLED_CACHE", default_value = "128MiB", value_parser = parse_size)]
    pub sled_cache: u64,
    /// How often expired sessions are purged (and, with --retain, old conversations).
    #[arg(long, env = "CHAT_PURGE_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub purge_interval: Duration,
    /// Delete conversations not updated for this long (e.g. 365d), at start and then every
    /// --purge-interval. Off by default.
    #[arg(long, env = "CHAT_RETAIN", value_parser = parse_duration)]
    pub retain: Option<Duration>,
    /// How long a username is locked after 5 failed logins in a row; each failure after a
    /// lock doubles the next.
    #[arg(long, env = "CHAT_LOGIN_LOCK", default_value = "1s", value_parser = parse_duration)]
    pub login_lock: Duration,
    /// The longest lock of a username (at most 60s).
    #[arg(long, env = "CHAT_LOGIN_LOCK_MAX", default_value = "60s", value_parser = parse_duration)]
    pub login_lock_max: Duration,
    /// Failed logins allowed per client address per minute; 0 for no limit.
    #[arg(long, env = "CHAT_FAILED_LOGINS_PER_MINUTE", default_value_t = 100)]
    pub failed_logins_per_minute: u32,
    /// Registrations allowed per client address per minute; 0 for no limit.
    #[arg(long, env = "CHAT_REGISTRATIONS_PER_MINUTE", default_value_t = 20)]
    pub registrations_per_minute: u32,
    /// Limit loopback clients per address too (they are not by default).
    #[arg(long, env = "CHAT_THROTTLE_LOOPBACK")]
    pub throttle_loopback: bool,
    /// A proxy whose X-Forwarded-For entry names the client; repeat it or separate with
    /// commas.
    #[arg(long, env = "CHAT_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<IpAddr>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub completions: crate::upstream::CompletionArgs,
}

impl ServeArgs {
    /// The throttling these options ask for.
    #[must_use]
    pub fn throttle(&self) -> ThrottleConfig {
        ThrottleConfig {
            first_lock: self.login_lock,
            max_lock: self.login_lock_max,
            failed_logins: Rate::per_minute(self.failed_logins_per_minute),
            registrations: Rate::per_minute(self.registrations_per_minute),
            limit_loopback: self.throttle_loopback,
            trusted_proxies: self.trusted_proxy.clone(),
            ..ThrottleConfig::default()
        }
    }
}

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] OpenStoreError),
    /// No usable master key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The listen address could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
    /// The service refused (e.g. a provider name that is taken).
    #[error(transparent)]
    Service(#[from] chat_core::Error),
    /// An input the command cannot use (a password that could not be read, two stores
    /// that are one).
    #[error("{0}")]
    Input(String),
    /// The command would do something it must not without being told (copy into a store
    /// that holds data).
    #[error("{0}")]
    Refused(String),
    /// The master key does not open the source's sealed API keys.
    #[error(
        "the master key ({from}) does not open the source's sealed API keys: give the key the source was served with"
    )]
    WrongKey {
        /// Where the key came from.
        from: String,
    },
    /// A copy's check at the end found a difference.
    #[error("the copy does not check out: {0}")]
    Verify(String),
    /// Standard output could not be written (a closed pipe, a full disk).
    #[error("could not write the output")]
    Output(#[source] std::io::Error),
}

impl CliError {
    /// The process exit code for this error, for scripts: 2 for input the command refuses
    /// (as clap's usage errors), 3 for a refusal that depends on the data (a name taken,
    /// a user or provider unknown, a target that holds data), 1 for everything else
    /// (stores that cannot be opened or fail, a wrong master key, a copy that does not
    /// check out).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        use chat_core::Error as E;
        match self {
            CliError::Input(_) | CliError::Service(E::Invalid(_)) => 2,
            CliError::Refused(_)
            | CliError::Service(E::NotFound(_) | E::Conflict { .. } | E::Forbidden(_)) => 3,
            _ => 1,
        }
    }
}

/// Parses `90s`, `30m`, `12h`, `7d` or a bare number of seconds.
///
/// # Errors
///
/// A message for clap when the text is none of those.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 12h or 7d"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("{s:?} is not a duration like 90s, 30m, 12h or 7d"))?;
    Ok(Duration::from_secs(secs))
}

/// Parses a size such as `64MiB`, `4MB`, `512KiB` or a number of bytes.
///
/// # Errors
///
/// A message for clap when the text is not a size.
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| format!("{s:?} is not a size like 64MiB, 4MB or 1048576"))
}

impl Cli {
    /// Runs the command.
    ///
    /// # Errors
    ///
    /// [`CliError`] when the store, the key or the address is unusable.
    pub async fn run(self) -> Result<(), CliError> {
        match self.command {
            None => run_serve(self.serve).await,
            Some(Command::Serve(args)) => run_serve(args).await,
            Some(Command::Provider(command)) => commands::provider::run(command).await,
            Some(Command::Copy(args)) => commands::copy::run(args).await,
            Some(Command::User(command)) => commands::user::run(command).await,
            Some(Command::Prune(args)) => commands::prune::run(args).await,
            Some(Command::Migrate(args)) => crate::commands::migrate::run(args).await,
            Some(Command::Export(args)) => crate::commands::export::run(args).await,
        }
    }
}

async fn run_serve(args: ServeArgs) -> Result<(), CliError> {
    let url = &args.store.store;
    let env_key = std::env::var("CHAT_MASTER_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let load_key = || keyfile::load(url, env_key.as_deref(), args.master_key_file.as_deref());
    // An embedded store opens first, so its key file is created beside data that exists
    // (sled refuses a directory holding files but no database). A remote one checks the key
    // first, so a missing key fails before any connection is made.
    let options = StoreOptions {
        min_free_space: args.min_free_space,
        sled_cache: Some(args.sled_cache),
    };
    let (store, (key, source)) = if url.is_embedded() {
        let store = url.open_with(&options).await?;
        (store, load_key()?)
    } else {
        let key = load_key()?;
        (url.open_with(&options).await?, key)
    };
    match &source {
        KeySource::Created(path) => tracing::warn!(
            path = %path.display(),
            "created a new master key file; back it up with the data, since without it stored API keys cannot be read"
        ),
        KeySource::File(path) => {
            tracing::info!(path = %path.display(), "master key read from file");
        }
        KeySource::Environment => tracing::info!("master key read from CHAT_MASTER_KEY"),
        KeySource::Ephemeral => {
            tracing::info!("in-memory store: using a random master key for this process");
        }
    }
    let defaults = ServiceConfig::default();
    // Every store operation timed once, whatever the store, for /metrics.
    let store = crate::metrics::store::MeteredStore::wrap(store);
    let service = ChatService::new(
        store,
        Sealer::new(1, key),
        ServiceConfig {
            token_ttl: chrono::Duration::from_std(args.token_ttl)
                .unwrap_or(chrono::Duration::days(7)),
            max_content_bytes: args.max_content_bytes,
            registration_open: args.registration == Registration::Open,
            password_cost: PasswordCost::default(),
            max_concurrent_hashes: args
                .max_concurrent_hashes
                .map_or(defaults.max_concurrent_hashes, usize::from),
            completion_history: args.completions.history(),
        },
    );
    let config = AppConfig {
        max_body_bytes: args.max_body_bytes,
        request_timeout: args.request_timeout,
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        http2_keep_alive_interval: args.http2_keep_alive_interval,
        http2_keep_alive_timeout: args.http2_keep_alive_timeout,
        max_connections: args.max_connections,
        shutdown_timeout: args.shutdown_timeout,
        purge_interval: args.purge_interval,
        throttle: args.throttle(),
        upstream: args.completions.config(),
    };
    if let Some(retain) = args.retain {
        let older_than = commands::prune::to_chrono(retain)?;
        tokio::spawn(commands::prune::retain(
            service.clone(),
            older_than,
            args.purge_interval,
        ));
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| CliError::Bind {
            addr: args.listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(args.listen);
    tracing::info!(listen = %local, store = %url, registration = ?args.registration, "serving");
    serve(listener, app(service, config), shutdown_signal())
        .await
        .map_err(CliError::Serve)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default() {
        let cli = Cli::try_parse_from(["chat-server", "--store", "memory:"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.store.store, StoreUrl::Memory);
        let cli =
            Cli::try_parse_from(["chat-server", "serve", "--listen", "0.0.0.0:9000"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Serve(a)) if a.listen.port() == 9000));
    }

    #[test]
    fn unknown_store_scheme_is_refused() {
        let e = Cli::try_parse_from(["chat-server", "--store", "mysql://x"]).unwrap_err();
        assert!(e.to_string().contains("known schemes"), "{e}");
    }

    #[test]
    fn throttle_flags() {
        let cli = Cli::try_parse_from(["chat-server"]).unwrap();
        let config = cli.serve.throttle();
        assert_eq!(config.first_lock, Duration::from_secs(1));
        assert_eq!(config.max_lock, Duration::from_secs(60));
        assert_eq!(config.failed_logins, Rate::per_minute(100));
        assert_eq!(config.registrations, Rate::per_minute(20));
        assert!(!config.limit_loopback);
        assert!(config.trusted_proxies.is_empty());
        let cli = Cli::try_parse_from([
            "chat-server",
            "--trusted-proxy",
            "10.0.0.1,10.0.0.2",
            "--trusted-proxy",
            "::1",
            "--throttle-loopback",
            "--login-lock",
            "2s",
            "--registrations-per-minute",
            "5",
        ])
        .unwrap();
        let config = cli.serve.throttle();
        assert_eq!(config.trusted_proxies.len(), 3);
        assert!(config.limit_loopback);
        assert_eq!(config.first_lock, Duration::from_secs(2));
        assert_eq!(config.registrations, Rate::per_minute(5));
        assert!(Cli::try_parse_from(["chat-server", "--trusted-proxy", "proxy.local"]).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 * 1024 * 1024));
        assert_eq!(parse_size("4MB"), Ok(4_000_000));
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert!(parse_duration("1w").is_err());
    }
}
