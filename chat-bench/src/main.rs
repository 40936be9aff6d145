//! `chat-bench`: the benchmark of chat-store. Every figure is printed beside its baseline
//! measured in the same run (the raw engine, a bare hyper server, the memory store, or the
//! LangChain peer), and the run is written as JSON. See the README.

mod bare;
mod http;
mod loadgen;
mod peer;
mod report;
mod rss;
mod server;
mod store;

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};

use crate::report::Report;

/// Measures chat-store beside its ceilings and its peer.
#[derive(Debug, Parser)]
#[command(name = "chat-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Full mode: more rounds, longer runs, 1,000,000-message conversations, 10,000
    /// messages for the peer. Quick mode (the default) takes a minute or two.
    #[arg(long)]
    full: bool,
    /// The parts to run (all by default).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// The stores to measure (all by default; PostgreSQL only with a URL).
    #[arg(long, value_enum, value_delimiter = ',')]
    stores: Vec<StoreKind>,
    /// Messages in the large conversation (default 100,000 quick, 1,000,000 full).
    #[arg(long)]
    messages: Option<u64>,
    /// Seconds per HTTP measurement (default 1 quick, 4 full).
    #[arg(long)]
    seconds: Option<f64>,
    /// PostgreSQL to measure; also read from CHAT_BENCH_POSTGRES_URL or
    /// CHAT_TEST_POSTGRES_URL. The benchmark works in schemas of its own and drops them.
    #[arg(long, env = "CHAT_BENCH_POSTGRES_URL", hide_env_values = true)]
    postgres_url: Option<String>,
    /// The chat-server binary (default: beside this one, as `cargo build --release`
    /// leaves it).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Where the Python virtual environment of the peer lives (created if missing).
    #[arg(long)]
    venv: Option<PathBuf>,
    /// Where to write the JSON summary.
    #[arg(long, default_value = "chat-bench.json")]
    json: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The bare hyper server the HTTP figures are read against (started by the benchmark).
    #[command(hide = true)]
    BareServer(bare::Args),
}

/// A part of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Store calls in-process, beside the raw engine.
    Store,
    /// The real server over HTTP, beside a bare hyper server and the memory store.
    Http,
    /// LangChain's SQLChatMessageHistory on the same databases.
    Peer,
    /// The server's resident memory while a client pages through a large conversation.
    Rss,
}

/// A store to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The embedded sled store.
    Sled,
    /// SQLite (reads and appends through rusqlite, other writes through sqlx).
    Sqlite,
    /// PostgreSQL through sqlx.
    Postgres,
}

/// How much work each part does.
#[derive(Debug, Clone)]
pub struct Scale {
    /// Full mode.
    pub full: bool,
    /// Rounds per store-level comparison; the median is reported.
    pub rounds: usize,
    /// Messages in the large conversation.
    pub big: u64,
    /// Seconds per HTTP measurement.
    pub seconds: f64,
    /// Messages the peer comparison appends and reads.
    pub peer_messages: usize,
    /// Concurrent tasks (and the peer's threads) for the concurrent figures.
    pub tasks: usize,
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    if let Some(Command::BareServer(args)) = cli.command {
        runtime.block_on(bare::serve(args));
        return;
    }
    let scale = Scale {
        full: cli.full,
        rounds: if cli.full { 7 } else { 3 },
        big: cli
            .messages
            .unwrap_or(if cli.full { 1_000_000 } else { 100_000 }),
        seconds: cli.seconds.unwrap_or(if cli.full { 4.0 } else { 1.0 }),
        peer_messages: if cli.full { 10_000 } else { 2_000 },
        tasks: 32,
    };
    let parts = if cli.only.is_empty() {
        vec![Part::Store, Part::Http, Part::Peer, Part::Rss]
    } else {
        cli.only.clone()
    };
    let postgres = cli
        .postgres_url
        .clone()
        .or_else(|| std::env::var("CHAT_TEST_POSTGRES_URL").ok())
        .filter(|u| !u.is_empty());
    let mut stores = if cli.stores.is_empty() {
        vec![StoreKind::Sled, StoreKind::Sqlite, StoreKind::Postgres]
    } else {
        cli.stores.clone()
    };
    let mut report = Report::default();
    if postgres.is_none() && stores.contains(&StoreKind::Postgres) {
        stores.retain(|s| *s != StoreKind::Postgres);
        report.note("PostgreSQL skipped: give --postgres-url or CHAT_TEST_POSTGRES_URL");
    }
    let server = cli.server.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().expect("the benchmark's own path");
        me.with_file_name("chat-server")
    });
    let started = Instant::now();
    println!(
        "chat-bench, {} mode; figure | baseline | ×ratio (above 1: better than the baseline)",
        if scale.full { "full" } else { "quick" }
    );
    runtime.block_on(async {
        if parts.contains(&Part::Store) {
            store::run(&mut report, &scale, &stores, postgres.as_deref()).await;
        }
        if parts.contains(&Part::Http) {
            http::run(&mut report, &scale, &stores, postgres.as_deref(), &server).await;
        }
        if parts.contains(&Part::Peer) {
            let venv = cli
                .venv
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("chat-bench-venv"));
            peer::run(&mut report, &scale, &stores, postgres.as_deref(), &venv).await;
        }
        if parts.contains(&Part::Rss) {
            rss::run(&mut report, &scale, &stores, &server).await;
        }
    });
    let meta = serde_json::json!({
        "mode": if scale.full { "full" } else { "quick" },
        "large_conversation": scale.big,
        "http_seconds": scale.seconds,
        "peer_messages": scale.peer_messages,
        "tasks": scale.tasks,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "seconds": started.elapsed().as_secs_f64(),
        "finished_at": chrono::Utc::now().to_rfc3339(),
    });
    match report.write_json(&cli.json, meta) {
        Ok(()) => println!("\nsummary: {}", cli.json.display()),
        Err(e) => eprintln!("\ncould not write {}: {e}", cli.json.display()),
    }
    println!("whole run: {:.0} s", started.elapsed().as_secs_f64());
}
