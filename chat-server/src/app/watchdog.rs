//! The deadlines of one connection that hyper has no setting for: the first request head,
//! whatever the protocol (hyper-util's `auto` builder reads the first bytes to choose HTTP/1
//! or HTTP/2 without a timeout, and HTTP/2 has no header timeout), and the idle time between
//! requests on HTTP/2 (HTTP/1's is hyper's header read timeout, which hyper starts whenever
//! it waits for a request head).
//!
//! The watchdog does not own the connection; it tells the task that does what to do next.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::connections::{Activity, Deadline};

/// How long a closing connection may take to finish what it was writing and say goodbye
/// (an HTTP/2 GOAWAY) before it is dropped. Only idle connections are closed this way, so
/// this is short; a peer that does not read meanwhile loses nothing of value.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The connection timings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    /// How long a new connection may take to complete its first request head.
    pub(super) first_request: Duration,
    /// How long a connection may stay idle between requests.
    pub(super) idle: Duration,
}

/// What the task serving a connection should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Start a graceful shutdown, and keep serving until it ends.
    Shutdown,
    /// Drop the connection now.
    Drop,
}

/// Why the watchdog woke.
enum Woke {
    Evicted,
    ServerStopping,
    CheckDue,
}

/// Watches one connection.
pub(super) struct Watchdog {
    activity: Arc<Activity>,
    timing: Timing,
    server_stopping: watch::Receiver<bool>,
    state: State,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Serving; the next look at the deadlines is due then.
    Open { check_at: Instant },
    /// Shutting down gracefully; dropped at the time given, if any.
    Closing { drop_at: Option<Instant> },
}

impl Watchdog {
    /// Watches a connection accepted just now.
    pub(super) fn new(
        activity: Arc<Activity>,
        timing: Timing,
        server_stopping: watch::Receiver<bool>,
    ) -> Self {
        let check_at = Instant::now() + timing.first_request.min(timing.idle);
        Self {
            activity,
            timing,
            server_stopping,
            state: State::Open { check_at },
        }
    }

    /// The next thing to do. Cancel-safe: it may be dropped and called again.
    pub(super) async fn next(&mut self) -> Action {
        loop {
            match self.state {
                State::Open { check_at } => {
                    let stopping = self.server_stopping.wait_for(|stopping| *stopping);
                    let woke = tokio::select! {
                        () = self.activity.evicted() => Woke::Evicted,
                        _ = stopping => Woke::ServerStopping,
                        () = tokio::time::sleep_until(check_at) => Woke::CheckDue,
                    };
                    match woke {
                        Woke::Evicted => {
                            tracing::debug!(
                                "closing the longest-idle connection to admit a new one"
                            );
                            return Action::Drop;
                        }
                        Woke::ServerStopping => {
                            self.state = State::Closing { drop_at: None };
                            return Action::Shutdown;
                        }
                        Woke::CheckDue => {
                            if let Some(action) = self.check() {
                                return action;
                            }
                        }
                    }
                }
                State::Closing { drop_at } => {
                    let grace = async {
                        match drop_at {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        () = self.activity.evicted() => return Action::Drop,
                        () = grace => return Action::Drop,
                    }
                }
            }
        }
    }

    /// Looks at the deadlines: an action when one has passed, else the next look is set.
    fn check(&mut self) -> Option<Action> {
        let now = Instant::now();
        let check_at = match self
            .activity
            .deadline(self.timing.first_request, self.timing.idle)
        {
            Deadline::FirstRequest(at) if at <= now => {
                // Nothing was asked, so nothing is owed: no goodbye needed.
                tracing::debug!("closing a connection that sent no request in time");
                return Some(Action::Drop);
            }
            Deadline::Idle(at) if at <= now => {
                tracing::debug!("closing an idle connection");
                self.state = State::Closing {
                    drop_at: Some(now + CLOSE_GRACE),
                };
                return Some(Action::Shutdown);
            }
            // Whatever happens from now on, an idle deadline cannot come before `now + idle`
            // (idleness starts at the end of a request at the earliest), so looking again
            // then at the latest misses none. A request in flight is bounded by its own
            // timeout.
            Deadline::FirstRequest(at) => at.min(now + self.timing.idle),
            Deadline::Idle(at) => at,
            Deadline::None => now + self.timing.idle,
        };
        self.state = State::Open { check_at };
        None
    }
}
