//! The route table: every method and path the server answers, in one list that both the
//! router and the OpenAPI document are built from.

use hyper::Method;
use hyper::header::HeaderValue;

/// One operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Register,
    Login,
    Logout,
    Me,
    CreateConversation,
    ListConversations,
    GetConversation,
    RenameConversation,
    DeleteConversation,
    CreateMessage,
    ListMessages,
    GetMessage,
    DeleteMessage,
    CreateAttachment,
    ListAttachments,
    GetAttachment,
    DeleteAttachment,
    CreateProvider,
    ListProviders,
    GetProvider,
    DeleteProvider,
    CreateConfig,
    GetConfig,
    UpdateConfig,
    DeleteConfig,
    Healthz,
    Readyz,
    OpenApi,
}

impl Endpoint {
    /// Whether the endpoint needs a bearer token.
    pub(crate) fn needs_auth(self) -> bool {
        !matches!(
            self,
            Endpoint::Register
                | Endpoint::Login
                | Endpoint::Healthz
                | Endpoint::Readyz
                | Endpoint::OpenApi
        )
    }

    /// Whether the endpoint reads a JSON body.
    pub(crate) fn has_body(self) -> bool {
        matches!(
            self,
            Endpoint::Register
                | Endpoint::Login
                | Endpoint::CreateConversation
                | Endpoint::RenameConversation
                | Endpoint::CreateMessage
                | Endpoint::CreateAttachment
                | Endpoint::CreateProvider
                | Endpoint::CreateConfig
                | Endpoint::UpdateConfig
        )
    }
}

/// Every route: path template (matchit and OpenAPI spell parameters alike) and its methods.
pub(crate) const ROUTES: &[(&str, &[(Method, Endpoint)])] = &[
    ("/users", &[(Method::POST, Endpoint::Register)]),
    ("/users/login", &[(Method::POST, Endpoint::Login)]),
    ("/users/logout", &[(Method::POST, Endpoint::Logout)]),
    ("/users/me", &[(Method::GET, Endpoint::Me)]),
    (
        "/chat/conversations",
        &[
            (Method::GET, Endpoint::ListConversations),
            (Method::POST, Endpoint::CreateConversation),
        ],
    ),
    (
        "/chat/conversations/{id}",
        &[
            (Method::GET, Endpoint::GetConversation),
            (Method::PATCH, Endpoint::RenameConversation),
            (Method::DELETE, Endpoint::DeleteConversation),
        ],
    ),
    (
        "/chat/conversations/{id}/messages",
        &[(Method::GET, Endpoint::ListMessages)],
    ),
    ("/chat/messages", &[(Method::POST, Endpoint::CreateMessage)]),
    (
        "/chat/messages/{id}",
        &[
            (Method::GET, Endpoint::GetMessage),
            (Method::DELETE, Endpoint::DeleteMessage),
        ],
    ),
    (
        "/chat/messages/{id}/attachments",
        &[(Method::GET, Endpoint::ListAttachments)],
    ),
    (
        "/chat/attachments",
        &[(Method::POST, Endpoint::CreateAttachment)],
    ),
    (
        "/chat/attachments/{id}",
        &[
            (Method::GET, Endpoint::GetAttachment),
            (Method::DELETE, Endpoint::DeleteAttachment),
        ],
    ),
    (
        "/chat/llm-providers",
        &[
            (Method::GET, Endpoint::ListProviders),
            (Method::POST, Endpoint::CreateProvider),
        ],
    ),
    (
        "/chat/llm-providers/{id}",
        &[
            (Method::GET, Endpoint::GetProvider),
            (Method::DELETE, Endpoint::DeleteProvider),
        ],
    ),
    (
        "/chat/user-llm-configs",
        &[(Method::POST, Endpoint::CreateConfig)],
    ),
    (
        "/chat/user-llm-configs/{user_id}/{provider_id}",
        &[
            (Method::GET, Endpoint::GetConfig),
            (Method::PUT, Endpoint::UpdateConfig),
            (Method::DELETE, Endpoint::DeleteConfig),
        ],
    ),
    ("/healthz", &[(Method::GET, Endpoint::Healthz)]),
    ("/readyz", &[(Method::GET, Endpoint::Readyz)]),
    ("/openapi.json", &[(Method::GET, Endpoint::OpenApi)]),
];

/// A path of the table with what the router needs at request time.
pub(crate) struct Route {
    pub(crate) template: &'static str,
    pub(crate) methods: &'static [(Method, Endpoint)],
    /// The `Allow` header of a 405, made once.
    pub(crate) allow: HeaderValue,
}

impl Route {
    pub(crate) fn endpoint(&self, method: &Method) -> Option<Endpoint> {
        self.methods
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, e)| *e)
    }
}

/// The router over [`ROUTES`].
pub(crate) fn router() -> matchit::Router<Route> {
    let mut router = matchit::Router::new();
    for (template, methods) in ROUTES {
        let allow = methods
            .iter()
            .map(|(m, _)| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let route = Route {
            template,
            methods,
            allow: HeaderValue::from_str(&allow).expect("method names are valid header text"),
        };
        router
            .insert(*template, route)
            .expect("the route table has no conflicting paths");
    }
    router
}
