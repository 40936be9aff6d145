//! The application: routing, authentication, the body checks and the request log around the
//! handlers, and the connection loop that serves it.

mod connections;
mod held;
mod request_log;
mod watchdog;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chat_core::ChatService;
use chat_core::completion::LlmClient;
use hyper::body::Body;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use self::connections::Connections;
use self::request_log::RequestLog;
use self::watchdog::{Action, Timing, Watchdog};
use crate::error::ApiError;
use crate::handlers::{Ctx, Reply};
use crate::request;
use crate::response::Body as ResponseBody;
use crate::route::Handler;
use crate::router::{self, Path};
use crate::routes::ROUTES;
use crate::throttle::{Throttle, ThrottleConfig};
use crate::upstream::{OpenAiClient, UpstreamConfig};

/// Limits and timings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The largest request body accepted, in bytes. Default: 1 MiB.
    pub max_body_bytes: usize,
    /// How long one request may take, body included. Default: 30 s. A completion's handler
    /// runs without it (its upstream timeouts apply); its authentication and body do not.
    pub request_timeout: Duration,
    /// How long a new connection may take to send its first complete request head, whatever
    /// the protocol (for HTTP/2: the preface, its settings and the first request's headers).
    /// Default: 10 s.
    pub header_read_timeout: Duration,
    /// How long a connection may stay idle between requests (HTTP/1 keep-alive or HTTP/2),
    /// which is also how long a later HTTP/1 request head may take. Default: 60 s.
    pub idle_timeout: Duration,
    /// How often an HTTP/2 connection that has been quiet is pinged. Default: 20 s.
    pub http2_keep_alive_interval: Duration,
    /// How long a ping may go unanswered before the HTTP/2 connection is closed. Default: 20 s.
    pub http2_keep_alive_timeout: Duration,
    /// How many connections are open at once. Past it, the connection idle the longest is
    /// closed to admit a new one; when none is idle, new ones wait in the listen queue.
    /// Default: 1024.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests. Default: 30 s.
    pub shutdown_timeout: Duration,
    /// How often expired sessions are purged. Default: 1 hour.
    pub purge_interval: Duration,
    /// How logins and registrations are throttled.
    pub throttle: ThrottleConfig,
    /// How completions call LLM providers.
    pub upstream: UpstreamConfig,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            http2_keep_alive_interval: Duration::from_secs(20),
            http2_keep_alive_timeout: Duration::from_secs(20),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(30),
            purge_interval: Duration::from_secs(3600),
            throttle: ThrottleConfig::default(),
            upstream: UpstreamConfig::default(),
        }
    }
}

/// The whole HTTP application over one [`ChatService`]. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    service: ChatService,
    router: matchit::Router<Path>,
    config: AppConfig,
    openapi: Bytes,
    throttle: Throttle,
    llm: Arc<dyn LlmClient>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("service", &self.inner.service)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds the application, calling LLM providers with the server's own client
/// ([`OpenAiClient`]) as `config.upstream` says.
#[must_use]
pub fn app(service: ChatService, config: AppConfig) -> App {
    let llm = Arc::new(OpenAiClient::new(config.upstream.clone()));
    app_with_llm(service, config, llm)
}

/// Builds the application, calling LLM providers through `llm`.
#[must_use]
pub fn app_with_llm(service: ChatService, config: AppConfig, llm: Arc<dyn LlmClient>) -> App {
    // Once per process; every later App shares the recorder.
    crate::metrics::install();
    let openapi = serde_json::to_vec(&crate::openapi::document()).unwrap_or_default();
    App {
        inner: Arc::new(Inner {
            service,
            router: router::router(ROUTES),
            throttle: Throttle::new(config.throttle.clone()),
            config,
            openapi: Bytes::from(openapi),
            llm,
        }),
    }
}

impl App {
    /// The service underneath.
    #[must_use]
    pub fn service(&self) -> &ChatService {
        &self.inner.service
    }

    /// The HTTP settings.
    #[must_use]
    pub fn config(&self) -> &AppConfig {
        &self.inner.config
    }

    /// Answers one request from an unknown peer; see [`App::handle_from`].
    pub fn handle<B>(
        &self,
        request: Request<B>,
    ) -> impl Future<Output = Response<ResponseBody>> + Send + use<B>
    where
        B: Body<Data = Bytes> + Send + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.handle_from(None, request)
    }

    /// Answers one request from `peer`, the address the connection came from. Never fails:
    /// every error is a response with the error body.
    ///
    /// Writes the request's log line, also when the future is dropped before it ends (the
    /// client went away), with status 499. The line is begun by this call, not by the first
    /// poll, so a request dropped before it was ever polled is logged too.
    pub fn handle_from<B>(
        &self,
        peer: Option<SocketAddr>,
        request: Request<B>,
    ) -> impl Future<Output = Response<ResponseBody>> + Send + use<B>
    where
        B: Body<Data = Bytes> + Send + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let app = self.clone();
        let request_id = request::request_id(request.headers());
        let id = request_id.to_str().unwrap_or("-").to_owned();
        // The route template is looked up here too (dispatch looks again for the path's
        // parameters, which borrow the request), so that even a line written before the
        // first poll names its route.
        let route = self
            .inner
            .router
            .at(request.uri().path())
            .map_or("-", |matched| matched.value.template);
        let log = RequestLog::start(id, request.method().clone(), route);
        async move {
            let version = request.version();
            let result = app.dispatch(peer, request, log.id()).await;
            let mut response = result.unwrap_or_else(|e| e.into_response(log.id(), version));
            response.headers_mut().insert("x-request-id", request_id);
            log.finish(response.status().as_u16());
            response
        }
    }

    /// Routing, then the rest under the request timeout (but for the handler of an untimed
    /// route, which keeps deadlines of its own).
    async fn dispatch<B>(
        &self,
        peer: Option<SocketAddr>,
        request: Request<B>,
        request_id: &str,
    ) -> Result<Response<ResponseBody>, ApiError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let Ok(matched) = self.inner.router.at(parts.uri.path()) else {
            return Err(ApiError::NoRoute);
        };
        let path = matched.value;
        let Some(route) = path.route(&parts.method) else {
            return Err(ApiError::MethodNotAllowed {
                allow: path.allow.clone(),
            });
        };
        let deadline = tokio::time::Instant::now() + self.inner.config.request_timeout;
        let service = &self.inner.service;
        let token = request::bearer_token(&parts.headers);
        // Authentication first, then the body, so a stranger cannot make the server read one.
        let prepare = async {
            let caller = match route.handler {
                Handler::Public { .. } => None,
                Handler::Authed { .. } => {
                    let token = token.ok_or(chat_core::Error::Unauthorized)?;
                    Some(service.authenticate(token).await?)
                }
            };
            let body = if route.body.is_some() {
                let limit = self.inner.config.max_body_bytes;
                let bytes = request::read_body(&parts.headers, body, limit).await?;
                request::check_json_content_type(&parts.headers)?;
                bytes
            } else {
                Bytes::new()
            };
            let ctx = Ctx {
                service,
                token,
                params: &matched.params,
                query: parts.uri.query(),
                body,
                openapi: &self.inner.openapi,
                throttle: &self.inner.throttle,
                client: self
                    .inner
                    .throttle
                    .client(peer.map(|p| p.ip()), &parts.headers),
                request_id,
                llm: &self.inner.llm,
            };
            Ok::<_, ApiError>((caller, ctx))
        };
        if route.untimed {
            // The handler has deadlines of its own (a completion's upstream timeouts).
            let (caller, ctx) = within(deadline, prepare).await?;
            run(route.handler, caller.as_ref(), ctx).await
        } else {
            within(deadline, async {
                let (caller, ctx) = prepare.await?;
                run(route.handler, caller.as_ref(), ctx).await
            })
            .await
        }
    }
}

/// Calls the handler: an authenticated one only with its caller.
async fn run(handler: Handler, caller: Option<&chat_core::Caller>, ctx: Ctx<'_>) -> Reply {
    match (handler, caller) {
        (Handler::Public { run, .. }, _) => run(ctx).await,
        (Handler::Authed { run, .. }, Some(caller)) => run(caller, ctx).await,
        (Handler::Authed { .. }, None) => Err(chat_core::Error::Unauthorized.into()),
    }
}

/// `work`, or [`ApiError::Timeout`] once `deadline` passes.
async fn within<T>(
    deadline: tokio::time::Instant,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or(Err(ApiError::Timeout))
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets the
/// requests in flight finish (up to the configured shutdown timeout) and returns.
///
/// Every connection has deadlines: its first request head within the header read timeout
/// (whatever the protocol), then at most the idle timeout between requests; HTTP/2
/// connections are pinged and closed when the peer stops answering. At the connection cap,
/// the connection idle the longest is closed to admit a new one.
///
/// Also purges expired sessions in the background while it runs.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let config = app.inner.config.clone();
    let connections = Connections::new(config.max_connections);
    let (stopping, server_stopping) = watch::channel(false);
    let timing = Timing {
        first_request: config.header_read_timeout,
        idle: config.idle_timeout,
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper starts this timeout whenever an HTTP/1 connection waits for a request head, so
    // between requests it is the idle timeout; the first request's deadline, which starts
    // at accept and covers the protocol detection, is the watchdog's. (Never shorter than
    // that deadline, so an idle timeout set below it cannot cut a first request short.)
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.idle_timeout.max(config.header_read_timeout));
    // Pings find peers that vanished; the idle timeout closes those that answer but ask
    // nothing. hyper's defaults bound streams per connection (200) and pending resets
    // (h2's 20, against "rapid reset").
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(config.http2_keep_alive_interval)
        .keep_alive_timeout(config.http2_keep_alive_timeout);

    let purge = tokio::spawn(purge_sessions(app.clone(), config.purge_interval));
    let upkeep = tokio::spawn(metrics_upkeep());

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Past the cap this closes the longest-idle connection; only when every connection
        // is busy does it wait, and new clients meanwhile wait in the kernel's listen queue.
        let slot = tokio::select! {
            slot = connections.admit() => slot,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let activity = Arc::clone(slot.activity());
        let service = service_fn(move |request| {
            // From a complete request head to the answer's last byte, the connection is busy
            // (a streamed answer may take minutes). Both this and the log line start now:
            // hyper may drop the future before polling it.
            let busy = activity.busy();
            let answer = app.handle_from(Some(peer), request);
            async move {
                let response = answer.await;
                Ok::<_, Infallible>(response.map(|body| held::Held::new(body, busy)))
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let mut watchdog =
            Watchdog::new(Arc::clone(slot.activity()), timing, server_stopping.clone());
        tokio::spawn(async move {
            tokio::pin!(connection);
            loop {
                tokio::select! {
                    ended = connection.as_mut() => {
                        if let Err(e) = ended {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    action = watchdog.next() => match action {
                        Action::Shutdown => connection.as_mut().graceful_shutdown(),
                        Action::Drop => break,
                    },
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    purge.abort();
    upkeep.abort();
    // Wait for the purge task to let go of the store, so the store can be reopened at once.
    let _ = purge.await;
    tracing::info!("shutting down; finishing requests in flight");
    let _ = stopping.send(true);
    let deadline = tokio::time::Instant::now() + config.shutdown_timeout;
    tokio::select! {
        () = connections.closed() => tracing::info!("all connections closed"),
        () = tokio::time::sleep_until(deadline) => {
            tracing::warn!("shutdown timeout reached with connections still open");
        }
    }
    close(app, deadline).await;
    Ok(())
}

/// Lets go of the application, and with it the store, on a blocking thread, waiting until
/// `deadline` at most (and at least a moment). A store whose disk failed may block for
/// ever in its destructor (sled 0.34 does), and shutdown must end all the same; nothing is
/// lost by not waiting, since every write was durable before it was acknowledged.
async fn close(app: App, deadline: tokio::time::Instant) {
    let closing = tokio::task::spawn_blocking(move || drop(app));
    let deadline = deadline.max(tokio::time::Instant::now() + Duration::from_millis(500));
    if tokio::time::timeout_at(deadline, closing).await.is_err() {
        tracing::warn!(
            "the store did not close before the shutdown timeout; \
             everything acknowledged was already durable"
        );
    }
}

/// Folds the latency samples into their histograms every few seconds, so their memory does
/// not grow between scrapes.
async fn metrics_upkeep() {
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        crate::metrics::upkeep();
    }
}

async fn purge_sessions(app: App, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match app.inner.service.purge_expired_sessions().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "purged expired sessions"),
            Err(e) => tracing::warn!(error = %crate::error::chain(&e), "purging sessions failed"),
        }
    }
}
