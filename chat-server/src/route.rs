//! What a row of the route table is: a method and a path template, the handler that answers
//! (whose kind says whether the caller must authenticate), the type of the body it reads,
//! and what the OpenAPI document says of it. Everything the router, the request pipeline and
//! the document need to know about an endpoint is in its row.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use chat_core::Caller;
use hyper::{Method, StatusCode};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

use crate::dto::FromFields;
use crate::handlers::{Ctx, Reply};

/// A handler's answer, boxed so that every handler of one kind has one type.
pub(crate) type BoxReply<'a> = Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;

/// The function that answers a route, and so whether the route authenticates: an
/// authenticated handler cannot be called without the [`Caller`] the pipeline established
/// from the bearer token, and a public one is never given one.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    /// Answers anyone.
    Public {
        /// The function's name; the OpenAPI operation id is made from it.
        name: &'static str,
        /// The function.
        run: for<'a> fn(Ctx<'a>) -> BoxReply<'a>,
    },
    /// Answers an authenticated caller only; anyone else gets 401 before it runs.
    Authed {
        /// The function's name; the OpenAPI operation id is made from it.
        name: &'static str,
        /// The function.
        run: for<'a> fn(&'a Caller, Ctx<'a>) -> BoxReply<'a>,
    },
}

impl Handler {
    /// The handler function's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Handler::Public { name, .. } | Handler::Authed { name, .. } => name,
        }
    }

    /// Whether the route needs a bearer token.
    pub(crate) fn authenticates(self) -> bool {
        matches!(self, Handler::Authed { .. })
    }
}

/// `public!(name)`: the function `handlers::name` as a [`Handler::Public`].
macro_rules! public {
    ($name:ident) => {
        $crate::route::Handler::Public {
            name: stringify!($name),
            run: |ctx| Box::pin($crate::handlers::$name(ctx)),
        }
    };
}

/// `authed!(name)`: the function `handlers::name`, which takes a `&Caller`, as a
/// [`Handler::Authed`].
macro_rules! authed {
    ($name:ident) => {
        $crate::route::Handler::Authed {
            name: stringify!($name),
            run: |caller, ctx| Box::pin($crate::handlers::$name(caller, ctx)),
        }
    };
}

pub(crate) use {authed, public};

/// A schema named by its Rust type: the document refers to it by the type's schema name and
/// lists it, with the schemas it refers to, among its components.
#[derive(Clone, Copy)]
pub(crate) struct SchemaOf {
    /// The schema's name, as `$ref`s spell it.
    pub(crate) name: fn() -> Cow<'static, str>,
    /// The schema itself.
    pub(crate) schema: fn() -> RefOr<Schema>,
    /// Pushes the schemas it refers to, recursively.
    pub(crate) refs: fn(&mut Vec<(String, RefOr<Schema>)>),
}

impl SchemaOf {
    /// The schema of `T`.
    pub(crate) const fn of<T: ToSchema>() -> Self {
        Self {
            name: <T as ToSchema>::name,
            schema: <T as PartialSchema>::schema,
            refs: <T as ToSchema>::schemas,
        }
    }
}

/// What a route answers when it succeeds.
#[derive(Clone, Copy)]
pub(crate) enum Answer {
    /// One JSON object with this status.
    Object(StatusCode, SchemaOf),
    /// 201 with the new object, and a `Location` header with the path to fetch it from.
    Created(SchemaOf),
    /// 200 with a page: a JSON array of these, and a `Link` to the next page.
    Page(SchemaOf),
    /// 201 with the new object and its `Location`, or, when the request asks for a stream,
    /// 200 `text/event-stream` whose last event carries the new object.
    CreatedOrStream(SchemaOf),
    /// 204 and no body.
    NoContent,
    /// 200 with a JSON document of its own kind (the OpenAPI document itself).
    Document,
    /// 200 with text of this media type (the Prometheus page).
    Text(&'static str),
}

impl Answer {
    /// 200 with one `T`.
    pub(crate) const fn ok<T: ToSchema>() -> Self {
        Answer::Object(StatusCode::OK, SchemaOf::of::<T>())
    }

    /// 201 with the new `T` and its `Location`.
    pub(crate) const fn created<T: ToSchema>() -> Self {
        Answer::Created(SchemaOf::of::<T>())
    }

    /// 200 with a page of `T`.
    pub(crate) const fn page<T: ToSchema>() -> Self {
        Answer::Page(SchemaOf::of::<T>())
    }

    /// The schema of the answer's body, or of each item of a page; `None` when the body is
    /// empty or a document of its own kind.
    pub(crate) fn schema(self) -> Option<SchemaOf> {
        match self {
            Answer::Object(_, schema)
            | Answer::Created(schema)
            | Answer::CreatedOrStream(schema)
            | Answer::Page(schema) => Some(schema),
            Answer::NoContent | Answer::Document | Answer::Text(_) => None,
        }
    }

    /// The status of the answer.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Answer::Object(status, _) => status,
            Answer::Created(_) | Answer::CreatedOrStream(_) => StatusCode::CREATED,
            Answer::Page(_) | Answer::Document | Answer::Text(_) => StatusCode::OK,
            Answer::NoContent => StatusCode::NO_CONTENT,
        }
    }
}

/// A query parameter of a list.
#[derive(Clone, Copy)]
pub(crate) enum Param {
    /// `limit`: the page size.
    Limit,
    /// `order`: `asc` or `desc`.
    Order,
    /// A cursor that is a message's position: its name and what it means.
    Seq(&'static str, &'static str),
    /// A cursor that is an id: its name and what it means.
    Id(&'static str, &'static str),
}

impl Param {
    /// The parameter's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Param::Limit => "limit",
            Param::Order => "order",
            Param::Seq(name, _) | Param::Id(name, _) => name,
        }
    }

    /// What it means, for the document.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Param::Limit => "page size, 1 to 1000 (default 100)",
            Param::Order => "asc (default) or desc",
            Param::Seq(_, description) | Param::Id(_, description) => description,
        }
    }
}

/// One endpoint: a row of the route table.
pub(crate) struct Route {
    /// The method it answers.
    pub(crate) method: Method,
    /// The path template; matchit and OpenAPI spell its parameters alike (`{id}`).
    pub(crate) path: &'static str,
    /// The function that answers, which also says whether the route authenticates.
    pub(crate) handler: Handler,
    /// The type of the JSON body it reads, or `None` when it reads none.
    pub(crate) body: Option<SchemaOf>,
    /// One line on what it does.
    pub(crate) summary: &'static str,
    /// What it answers on success.
    pub(crate) answer: Answer,
    /// The query parameters it understands.
    pub(crate) query: &'static [Param],
    /// The error statuses it can answer besides those every route of its kind can.
    pub(crate) errors: &'static [StatusCode],
    /// Whether its handler runs without the request timeout, because it has deadlines of
    /// its own (a completion's upstream timeouts). Reading the body stays under it.
    pub(crate) untimed: bool,
}

impl Route {
    /// A route that reads no body and has no query parameters or errors of its own.
    pub(crate) const fn new(
        method: Method,
        path: &'static str,
        handler: Handler,
        summary: &'static str,
        answer: Answer,
    ) -> Self {
        Self {
            method,
            path,
            handler,
            body: None,
            summary,
            answer,
            query: &[],
            errors: &[],
            untimed: false,
        }
    }

    /// The route reads a JSON body, of type `T`.
    pub(crate) const fn body<T: ToSchema + FromFields>(mut self) -> Self {
        self.body = Some(SchemaOf::of::<T>());
        self
    }

    /// The route understands these query parameters.
    pub(crate) const fn query(mut self, params: &'static [Param]) -> Self {
        self.query = params;
        self
    }

    /// The handler keeps its own deadlines instead of the request timeout.
    pub(crate) const fn untimed(mut self) -> Self {
        self.untimed = true;
        self
    }

    /// The route can also answer these errors.
    pub(crate) const fn errors(mut self, statuses: &'static [StatusCode]) -> Self {
        self.errors = statuses;
        self
    }
}
