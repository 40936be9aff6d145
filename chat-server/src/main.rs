//! The `chat-server` binary: parses the command line, sets up logging and runs.

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = chat_server::cli::Cli::parse();
    // CHAT_LOG takes tracing's filter syntax, e.g. `info` or `chat_server=debug`.
    let filter = EnvFilter::try_from_env("CHAT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a terminal: in a log file or collector they are noise. The log
    // goes to standard error, so the commands' output on standard output stays clean.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "could not start the async runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(cli.run());
    // Threads still blocked on a failed disk must not keep the process alive: the server
    // has already given them its shutdown timeout.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %chat_server::error_chain(&e), "chat-server stopped");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
