//! Completions: answering a conversation through the caller's own LLM provider and key.
//!
//! chat-core knows nothing of HTTP, so the call to the provider is behind [`LlmClient`], a
//! small trait that the server (and any application or test) implements.
//! [`ChatService::complete`](crate::ChatService::complete) does everything else, once: the
//! access checks, the history budget, opening the key for the call only, the size limit of
//! the reply, the stored message and its metadata, and storing nothing on any failure.

use std::borrow::Cow;
use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::error::{BoxError, Result};
use crate::ids::ProviderId;
use crate::model::{Message, Role};
use crate::validation::{ApiKey, Rule, Unit, ValidationError};

/// A model name as the provider knows it: 1..=200 characters, no whitespace or control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelName(String);

impl ModelName {
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Checks `s`.
    ///
    /// ```
    /// use chat_core::completion::ModelName;
    /// assert!(ModelName::parse("gpt-4o-mini").is_ok());
    /// assert_eq!(ModelName::parse("gpt 4").unwrap_err().field, "model");
    /// assert!(ModelName::parse("").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let count = s.chars().take(Self::MAX_CHARS + 1).count();
        if !(1..=Self::MAX_CHARS).contains(&count) {
            return Err(ValidationError::new(
                "model",
                Rule::Length {
                    min: 1,
                    max: Self::MAX_CHARS,
                    unit: Unit::Characters,
                },
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ValidationError::new("model", Rule::NoControlCharacters));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(ValidationError::new("model", Rule::NoWhitespace));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated request for a completion.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    provider_id: ProviderId,
    model: ModelName,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    stream: bool,
}

impl CompletionRequest {
    /// The highest temperature.
    pub const MAX_TEMPERATURE: f64 = 2.0;
    /// The largest `max_tokens`.
    pub const MAX_TOKENS: u32 = 1_000_000;

    /// Checks a request's fields, in the order the contract lists them.
    ///
    /// ```
    /// use chat_core::ProviderId;
    /// use chat_core::completion::CompletionRequest;
    /// let p = ProviderId::new();
    /// assert!(CompletionRequest::parse(p, "m", Some(0.7), Some(256), true).is_ok());
    /// assert_eq!(CompletionRequest::parse(p, "m", Some(2.5), None, false).unwrap_err().field, "temperature");
    /// assert_eq!(CompletionRequest::parse(p, "m", None, Some(0), false).unwrap_err().field, "max_tokens");
    /// ```
    pub fn parse(
        provider_id: ProviderId,
        model: &str,
        temperature: Option<f64>,
        max_tokens: Option<u64>,
        stream: bool,
    ) -> Result<Self, ValidationError> {
        let model = ModelName::parse(model)?;
        if let Some(t) = temperature
            && !(0.0..=Self::MAX_TEMPERATURE).contains(&t)
        {
            return Err(ValidationError::new(
                "temperature",
                Rule::Other("must be a number from 0 to 2"),
            ));
        }
        let max_tokens = max_tokens
            .map(|n| {
                u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=Self::MAX_TOKENS).contains(n))
                    .ok_or(ValidationError::new(
                        "max_tokens",
                        Rule::Range {
                            min: 1,
                            max: Self::MAX_TOKENS.into(),
                        },
                    ))
            })
            .transpose()?;
        Ok(Self {
            provider_id,
            model,
            temperature,
            max_tokens,
            stream,
        })
    }

    /// The provider to ask.
    #[must_use]
    pub fn provider_id(&self) -> ProviderId {
        self.provider_id
    }

    /// The model to ask for.
    #[must_use]
    pub fn model(&self) -> &ModelName {
        &self.model
    }

    /// The sampling temperature, 0..=2, when given.
    #[must_use]
    pub fn temperature(&self) -> Option<f64> {
        self.temperature
    }

    /// The reply's token limit, when given.
    #[must_use]
    pub fn max_tokens(&self) -> Option<u32> {
        self.max_tokens
    }

    /// Whether the caller wants the reply as it comes.
    #[must_use]
    pub fn stream(&self) -> bool {
        self.stream
    }
}

/// One message of the history sent to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
}

/// Everything an [`LlmClient`] needs for one call.
///
/// Holds the opened API key; dropping the call zeroizes it, so a client should drop the call
/// (or the key) as soon as the request is sent.
#[derive(Debug)]
pub struct UpstreamCall {
    /// The provider's endpoint, an absolute `http` or `https` URL; the OpenAI-compatible
    /// path `/chat/completions` goes after it.
    pub endpoint: String,
    /// The caller's key, for `Authorization: Bearer`. Never to be logged or put in an error.
    pub api_key: ApiKey,
    /// The model.
    pub model: ModelName,
    /// The sampling temperature, when the caller gave one.
    pub temperature: Option<f64>,
    /// The reply's token limit, when the caller gave one.
    pub max_tokens: Option<u32>,
    /// Whether to ask the provider to stream.
    pub stream: bool,
    /// The history, oldest first.
    pub messages: Vec<Turn>,
    /// The largest reply the service will keep, in bytes of text; a client bounds what it
    /// reads from the provider by it, so a provider cannot grow memory without bound.
    pub max_reply_bytes: usize,
}

/// How the provider ended its reply.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// The provider's `finish_reason`, `None` when it sent none.
    pub finish_reason: Option<String>,
    /// The provider's `usage` object as it sent it, when it sent one.
    pub usage: Option<Box<RawValue>>,
}

/// Receives each piece of the reply's text as it arrives. An `Err` (the reply went over its
/// limit) must end the call with that error.
pub type DeltaSink<'a> = &'a mut (dyn FnMut(&str) -> Result<(), UpstreamError> + Send);

/// The call to an OpenAI-compatible provider. The server implements it over HTTP; an
/// application or a test may substitute its own.
#[async_trait]
pub trait LlmClient: Send + Sync + 'static {
    /// Sends `call` and hands each piece of the reply to `on_delta`, in order, then answers
    /// how the reply ended.
    async fn complete(
        &self,
        call: UpstreamCall,
        on_delta: DeltaSink<'_>,
    ) -> Result<Finished, UpstreamError>;
}

/// Why a provider call failed. `Display` is safe for a client: it never holds the
/// provider's body, the key, or anything else the provider sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The provider answered with an error status.
    #[error("the provider answered with HTTP status {0}")]
    Status(u16),
    /// The provider answered with a redirect, which is not followed.
    #[error("the provider answered with a redirect (HTTP status {0}); redirects are not followed")]
    Redirect(u16),
    /// The endpoint's address is internal and the operator has not allowed such addresses.
    #[error(
        "the endpoint's address is not allowed: loopback, private, link-local and other internal addresses are refused"
    )]
    AddressNotAllowed,
    /// The endpoint could not be resolved or connected to.
    #[error("the provider could not be reached")]
    Unreachable(#[source] BoxError),
    /// The TLS handshake failed (for instance, a certificate that does not verify).
    #[error("the TLS connection to the provider failed")]
    Tls(#[source] BoxError),
    /// The answer was not what the OpenAI wire format says, in our own words.
    #[error("the provider's answer was malformed: {0}")]
    Malformed(Cow<'static, str>),
    /// The reply grew past the limit.
    #[error("the provider's reply is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Nothing came back in time.
    #[error("the provider did not answer within {0:?}")]
    NoAnswer(Duration),
    /// The reply began, then nothing more came for this long.
    #[error("the provider sent nothing for {0:?}")]
    Stalled(Duration),
    /// The reply was still not finished when the overall timeout passed.
    #[error("the provider did not finish within {0:?}")]
    TookTooLong(Duration),
}

impl UpstreamError {
    /// Whether this is a timeout (504) rather than a failure (502).
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            UpstreamError::NoAnswer(_) | UpstreamError::Stalled(_) | UpstreamError::TookTooLong(_)
        )
    }

    /// A short word for the kind of failure, for metrics and logs.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Status(_) => "status",
            UpstreamError::Redirect(_) => "redirect",
            UpstreamError::AddressNotAllowed => "address_not_allowed",
            UpstreamError::Unreachable(_) => "unreachable",
            UpstreamError::Tls(_) => "tls",
            UpstreamError::Malformed(_) => "malformed",
            UpstreamError::TooLarge { .. } => "too_large",
            UpstreamError::NoAnswer(_)
            | UpstreamError::Stalled(_)
            | UpstreamError::TookTooLong(_) => "timeout",
        }
    }
}

/// What a running completion reports.
#[derive(Debug)]
pub enum CompletionEvent {
    /// A piece of the reply, in order.
    Delta(String),
    /// The end: the stored reply, or why nothing was stored. Always the last event.
    Done(Result<Message>),
}

/// A completion running in a task of its own: dropping this handle does not cancel it, so a
/// client that goes away still finds the reply stored.
#[derive(Debug)]
pub struct Completion {
    pub(crate) events: mpsc::UnboundedReceiver<CompletionEvent>,
}

impl Completion {
    /// The next event; `None` after [`CompletionEvent::Done`].
    pub async fn next(&mut self) -> Option<CompletionEvent> {
        self.events.recv().await
    }

    /// Polls for the next event, for a body or stream that relays them.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<CompletionEvent>> {
        self.events.poll_recv(cx)
    }

    /// Waits for the end, passing over the pieces: the stored reply or the error.
    pub async fn finish(mut self) -> Result<Message> {
        while let Some(event) = self.next().await {
            if let CompletionEvent::Done(result) = event {
                return result;
            }
        }
        Err(crate::Error::backend(
            "completion",
            "the completion task ended without an answer",
        ))
    }
}
