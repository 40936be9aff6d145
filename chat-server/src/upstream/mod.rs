//! The client of OpenAI-compatible providers: [`OpenAiClient`], the server's
//! [`LlmClient`].
//!
//! hyper-util's client over rustls with the web PKI roots bundled in the binary; the TCP
//! connections come from [`connector::GuardedConnector`], which applies the endpoint guard to
//! the resolved address. Redirects are not followed (the client has no such feature, and a
//! 3xx is reported as such). Timeouts: one for the whole call, one between chunks. What is
//! read from the provider is bounded, whatever it claims. The provider's body never goes into
//! an error, and the key never into a log line: the `Authorization` header is marked
//! sensitive, and neither hyper nor this module logs headers.

mod connector;
mod guard;
mod wire;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chat_core::completion::{DeltaSink, Finished, LlmClient, UpstreamCall, UpstreamError};
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::StreamExt;
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use zeroize::Zeroizing;

use self::connector::{ConnectError, GuardedConnector};

/// How provider calls behave.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Whether endpoints may be internal addresses (loopback, private networks…); for
    /// operators who run local models. Default: refused.
    pub allow_private_endpoints: bool,
    /// The longest a whole call may take. Default: 120 s.
    pub timeout: Duration,
    /// The longest the provider may go without sending anything once it has answered.
    /// Default: 30 s.
    pub chunk_timeout: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            allow_private_endpoints: false,
            timeout: Duration::from_secs(120),
            chunk_timeout: Duration::from_secs(30),
        }
    }
}

/// The command-line options of completions, flattened into `serve`'s.
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionArgs {
    /// Let provider endpoints be loopback, private or link-local addresses (for local
    /// models). Off by default: an endpoint is a URL a user typed.
    #[arg(long, env = "CHAT_ALLOW_PRIVATE_ENDPOINTS")]
    pub allow_private_endpoints: bool,
    /// The longest a completion may take, from the request to the provider's last byte.
    #[arg(long, env = "CHAT_UPSTREAM_TIMEOUT", default_value = "120s", value_parser = crate::cli::parse_duration)]
    pub upstream_timeout: Duration,
    /// The longest a provider may go without sending anything once it has answered.
    #[arg(long, env = "CHAT_UPSTREAM_CHUNK_TIMEOUT", default_value = "30s", value_parser = crate::cli::parse_duration)]
    pub upstream_chunk_timeout: Duration,
    /// How many of a conversation's newest messages a completion sends (1 to 1000).
    #[arg(long, env = "CHAT_COMPLETION_HISTORY", default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub completion_history: u16,
}

impl CompletionArgs {
    /// The provider calls these options ask for.
    #[must_use]
    pub fn config(&self) -> UpstreamConfig {
        UpstreamConfig {
            allow_private_endpoints: self.allow_private_endpoints,
            timeout: self.upstream_timeout,
            chunk_timeout: self.upstream_chunk_timeout,
        }
    }

    /// The history budget, as the service takes it.
    #[must_use]
    pub fn history(&self) -> chat_core::Limit {
        chat_core::Limit::new(self.completion_history.into())
            .unwrap_or(chat_core::ServiceConfig::default().completion_history)
    }
}

/// What the provider may send beyond the reply's own text: JSON quoting (up to six bytes per
/// character for `\uXXXX`), the SSE framing and the other fields of each chunk.
const WIRE_OVERHEAD_FACTOR: usize = 8;
const WIRE_OVERHEAD_BYTES: usize = 1024 * 1024;

/// The server's [`LlmClient`]: OpenAI-compatible providers over HTTP(S).
#[derive(Clone)]
pub struct OpenAiClient {
    http: Client<HttpsConnector<GuardedConnector>, Full<Bytes>>,
    config: UpstreamConfig,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OpenAiClient {
    /// A client with `config`.
    #[must_use]
    pub fn new(config: UpstreamConfig) -> Self {
        let provider = rustls::crypto::ring::default_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .expect("ring's provider supports rustls' default protocol versions")
            .https_or_http()
            .enable_http1()
            .wrap_connector(GuardedConnector {
                allow_private: config.allow_private_endpoints,
            });
        let http = Client::builder(TokioExecutor::new()).build(https);
        Self { http, config }
    }

    /// Sends the request and waits for the answer's head.
    async fn send(
        &self,
        call: UpstreamCall,
        deadline: Instant,
    ) -> Result<hyper::Response<hyper::body::Incoming>, UpstreamError> {
        let uri = completions_uri(&call.endpoint)?;
        let body = serde_json::to_vec(&wire::RequestBody::new(&call))
            .map_err(|_| UpstreamError::Malformed("the request could not be written".into()))?;
        let bearer = Zeroizing::new(format!("Bearer {}", call.api_key.expose_secret()));
        let mut auth = HeaderValue::from_str(&bearer)
            .map_err(|_| UpstreamError::Malformed("the API key cannot be sent".into()))?;
        // Sensitive values are kept out of HPACK tables and the Debug output of headers.
        auth.set_sensitive(true);
        let accept = if call.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        // The key's plain text is zeroized here; the header's copy goes with the request.
        drop((bearer, call));
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, accept)
            .header(header::AUTHORIZATION, auth)
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| UpstreamError::Malformed("the endpoint is not a usable URL".into()))?;
        let timeout = self.config.timeout;
        let response = tokio::time::timeout_at(deadline, self.http.request(request))
            .await
            .map_err(|_| UpstreamError::NoAnswer(timeout))?
            .map_err(classify)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(UpstreamError::Redirect(status.as_u16()));
        }
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        Ok(response)
    }
}

#[async_trait]
impl LlmClient for OpenAiClient {
    async fn complete(
        &self,
        call: UpstreamCall,
        on_delta: DeltaSink<'_>,
    ) -> Result<Finished, UpstreamError> {
        let deadline = Instant::now() + self.config.timeout;
        let cap = call
            .max_reply_bytes
            .saturating_mul(WIRE_OVERHEAD_FACTOR)
            .saturating_add(WIRE_OVERHEAD_BYTES);
        let response = self.send(call, deadline).await?;
        let is_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        let timing = Timing {
            deadline,
            timeout: self.config.timeout,
            chunk_timeout: self.config.chunk_timeout,
        };
        let data = Box::pin(read_body(response.into_body(), cap, timing));
        if is_stream {
            stream(data, on_delta).await
        } else {
            let body = whole(data).await?;
            wire::answer(&body, on_delta)
        }
    }
}

/// Why reading the answer's body stopped.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("the answer's body broke off")]
    Body(#[source] hyper::Error),
    #[error("the answer is larger than allowed")]
    TooLarge,
    #[error(transparent)]
    Timeout(UpstreamError),
}

impl From<ReadError> for UpstreamError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::TooLarge => UpstreamError::Malformed(
                "the answer is larger than any reply this server keeps".into(),
            ),
            ReadError::Body(e) => UpstreamError::Unreachable(Box::new(e)),
            ReadError::Timeout(e) => e,
        }
    }
}

/// The timeouts of reading one answer.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// The end of the whole call.
    deadline: Instant,
    /// The whole call's timeout, for the message.
    timeout: Duration,
    /// The longest wait for the next piece of the body.
    chunk_timeout: Duration,
}

impl Timing {
    /// Waits for `next` under the chunk timeout and the overall deadline; `began` (whether
    /// any of the body arrived) decides what a timeout is called.
    async fn within<T>(
        self,
        began: bool,
        next: impl Future<Output = T>,
    ) -> Result<T, UpstreamError> {
        let chunk_deadline = Instant::now() + self.chunk_timeout;
        let overall = self.deadline <= chunk_deadline;
        match tokio::time::timeout_at(chunk_deadline.min(self.deadline), next).await {
            Ok(value) => Ok(value),
            Err(_) if !overall => Err(UpstreamError::Stalled(self.chunk_timeout)),
            Err(_) if began => Err(UpstreamError::TookTooLong(self.timeout)),
            Err(_) => Err(UpstreamError::NoAnswer(self.timeout)),
        }
    }
}

/// The body's bytes, refused past `cap` in all, under the timeouts: the chunk timeout runs
/// from one piece of the body to the next (so the `:` comments a provider sends while its
/// model thinks count as life), the overall deadline throughout. Readers stop at the first
/// error.
fn read_body(
    body: hyper::body::Incoming,
    cap: usize,
    timing: Timing,
) -> impl futures_util::Stream<Item = Result<Bytes, ReadError>> + Send {
    let mut read = 0usize;
    let capped = BodyDataStream::new(body.map_err(ReadError::Body)).map(move |chunk| {
        let chunk = chunk?;
        read = read.saturating_add(chunk.len());
        if read > cap {
            return Err(ReadError::TooLarge);
        }
        Ok(chunk)
    });
    futures_util::stream::unfold((capped, false), move |(mut data, began)| async move {
        match timing.within(began, data.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), (data, true))),
            Ok(Some(Err(e))) => Some((Err(e), (data, began))),
            Ok(None) => None,
            Err(timeout) => Some((Err(ReadError::Timeout(timeout)), (data, began))),
        }
    })
}

/// A whole JSON answer.
async fn whole(
    mut data: impl futures_util::Stream<Item = Result<Bytes, ReadError>> + Unpin,
) -> Result<Vec<u8>, UpstreamError> {
    let mut body = Vec::new();
    while let Some(chunk) = data.next().await {
        body.extend_from_slice(&chunk?);
    }
    Ok(body)
}

/// A stream of `data:` chunks, to `data: [DONE]`.
async fn stream(
    data: impl futures_util::Stream<Item = Result<Bytes, ReadError>> + Unpin,
    on_delta: DeltaSink<'_>,
) -> Result<Finished, UpstreamError> {
    let mut events = data.eventsource();
    let mut state = wire::StreamState::default();
    loop {
        let event = match events.next().await {
            // A stream that ends without `[DONE]` is whole only if it said how it ended.
            None if state.saw_finish => return Ok(state.finished),
            None => {
                return Err(UpstreamError::Malformed(
                    "the stream ended before the reply was finished".into(),
                ));
            }
            Some(Ok(event)) => event,
            Some(Err(EventStreamError::Transport(e))) => return Err(e.into()),
            Some(Err(_)) => {
                return Err(UpstreamError::Malformed(
                    "the stream is not well-formed server-sent events".into(),
                ));
            }
        };
        if event.data.trim() == "[DONE]" {
            return Ok(state.finished);
        }
        state.chunk(&event.data, on_delta)?;
    }
}

/// `{endpoint}/chat/completions`, keeping the endpoint's own path and query.
fn completions_uri(endpoint: &str) -> Result<Uri, UpstreamError> {
    let bad = || UpstreamError::Malformed("the endpoint is not a usable URL".into());
    let mut url = url::Url::parse(endpoint).map_err(|_| bad())?;
    url.path_segments_mut()
        .map_err(|()| bad())?
        .pop_if_empty()
        .extend(["chat", "completions"]);
    url.set_fragment(None);
    url.as_str().parse().map_err(|_| bad())
}

/// What a failed request was, from the error chain: the guard's refusal, an endpoint that
/// could not be resolved or connected to (both reported by our connector), or else, when the
/// connection could not be set up, the TLS handshake over it, which is all that lies between
/// our connector and the request (rustls's own errors come wrapped in I/O errors, and a peer
/// that does not speak TLS shows only as an early end of the stream).
fn classify(e: hyper_util::client::legacy::Error) -> UpstreamError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        match err.downcast_ref::<ConnectError>() {
            Some(ConnectError::NotAllowed) => return UpstreamError::AddressNotAllowed,
            Some(_) => return UpstreamError::Unreachable(Box::new(e)),
            None => {}
        }
        source = err.source();
    }
    if e.is_connect() {
        UpstreamError::Tls(Box::new(e))
    } else {
        UpstreamError::Unreachable(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::completions_uri;

    #[test]
    fn the_path_goes_after_the_endpoint() {
        for (endpoint, uri) in [
            (
                "https://api.example.com/v1",
                "https://api.example.com/v1/chat/completions",
            ),
            (
                "https://api.example.com/v1/",
                "https://api.example.com/v1/chat/completions",
            ),
            (
                "http://10.0.0.1:8080",
                "http://10.0.0.1:8080/chat/completions",
            ),
            (
                "https://x.example/openai?api-version=1#frag",
                "https://x.example/openai/chat/completions?api-version=1",
            ),
        ] {
            assert_eq!(completions_uri(endpoint).unwrap().to_string(), uri);
        }
    }
}
