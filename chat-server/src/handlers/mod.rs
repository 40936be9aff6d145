//! One function per endpoint, grouped by resource: read the request's parts, call the
//! service, shape the answer. The rules of access and validation live in the service, not
//! here.
//!
//! A handler of a route that authenticates takes the `&Caller` the route established; the
//! others have none to take. Which kind a route is comes from its row in `routes.rs`.

mod accounts;
mod attachments;
mod completions;
mod configs;
mod conversations;
mod export;
mod messages;
mod ops;
mod providers;
mod reply;

pub(crate) use accounts::*;
pub(crate) use attachments::*;
pub(crate) use completions::*;
pub(crate) use configs::*;
pub(crate) use conversations::*;
pub(crate) use export::*;
pub(crate) use messages::*;
pub(crate) use ops::*;
pub(crate) use providers::*;

use std::sync::Arc;

use bytes::Bytes;
use chat_core::ChatService;
use chat_core::completion::LlmClient;
use hyper::Response;

use crate::dto::{Fields, FromFields};
use crate::error::ApiError;
use crate::params::path_id;
use crate::response::Body;

/// What every handler answers.
pub(crate) type Reply = Result<Response<Body>, ApiError>;

/// What a handler gets besides its caller: the request taken apart, after routing,
/// authentication and the body checks.
pub(crate) struct Ctx<'a> {
    pub(crate) service: &'a ChatService,
    /// The bearer token as presented, for the one handler that ends its session.
    pub(crate) token: Option<&'a str>,
    pub(crate) params: &'a matchit::Params<'a, 'a>,
    pub(crate) query: Option<&'a str>,
    /// The body, read under the cap when the route takes one, else empty.
    pub(crate) body: Bytes,
    pub(crate) openapi: &'a Bytes,
    /// The login and registration counts of this server.
    pub(crate) throttle: &'a crate::throttle::Throttle,
    /// The client's address (the peer's, or the one a trusted proxy forwarded), when known.
    pub(crate) client: Option<std::net::IpAddr>,
    /// The request's id, for errors sent inside a stream.
    pub(crate) request_id: &'a str,
    /// The client of LLM providers, for completions.
    pub(crate) llm: &'a Arc<dyn LlmClient>,
}

impl Ctx<'_> {
    fn param<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, ApiError> {
        Ok(path_id(self.params.get(name).unwrap_or(""), name)?)
    }

    fn body<T: FromFields>(&self) -> Result<T, ApiError> {
        Fields::read(&self.body)
    }
}
