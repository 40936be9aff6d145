//! The route table: every endpoint the server answers, one row each. The router, the request
//! pipeline and the OpenAPI document are all built from it, so adding an endpoint is a row
//! here and its function in `handlers/`.
//!
//! Rows of one path stay together, in the order the `Allow` header of a 405 lists them.

use hyper::{Method, StatusCode};

use crate::dto::{
    AttachmentOut, CompletionRequestBody, ConfigOut, ConversationOut, CreateAttachmentRequest,
    CreateConfigRequest, CreateConversationRequest, CreateMessageRequest, CreateProviderRequest,
    Health, LoginRequest, MessageOut, ProviderOut, RegisterRequest, RenameConversationRequest,
    TokenOut, UpdateConfigRequest, UserOut,
};
use crate::route::{Answer, Param, Route, SchemaOf, authed, public};

/// Every endpoint.
pub(crate) static ROUTES: &[Route] = &[
    Route::new(
        Method::POST,
        "/users",
        public!(register),
        "Register a user",
        // No Location: there is no path to fetch a user by id.
        Answer::Object(StatusCode::CREATED, SchemaOf::of::<UserOut>()),
    )
    .body::<RegisterRequest>()
    // 429: too many registrations from one client address.
    .errors(&[
        StatusCode::FORBIDDEN,
        StatusCode::CONFLICT,
        StatusCode::TOO_MANY_REQUESTS,
    ]),
    Route::new(
        Method::POST,
        "/users/login",
        public!(login),
        "Log in and get a bearer token",
        Answer::ok::<TokenOut>(),
    )
    .body::<LoginRequest>()
    // 429: the username is locked after failures in a row, or the client address has
    // failed too often. 403: the operator disabled the account (right password only).
    .errors(&[
        StatusCode::UNAUTHORIZED,
        StatusCode::FORBIDDEN,
        StatusCode::TOO_MANY_REQUESTS,
    ]),
    Route::new(
        Method::POST,
        "/users/logout",
        authed!(logout),
        "Revoke the presented token",
        Answer::NoContent,
    ),
    Route::new(
        Method::GET,
        "/users/me",
        authed!(me),
        "The caller's user",
        Answer::ok::<UserOut>(),
    ),
    Route::new(
        Method::GET,
        "/chat/conversations",
        authed!(list_conversations),
        "The caller's conversations, newest first",
        Answer::page::<ConversationOut>(),
    )
    .query(&[
        Param::Limit,
        Param::Id("before", "conversation id: only older ones"),
    ]),
    Route::new(
        Method::POST,
        "/chat/conversations",
        authed!(create_conversation),
        "Start a conversation",
        Answer::created::<ConversationOut>(),
    )
    .body::<CreateConversationRequest>()
    .errors(&[StatusCode::FORBIDDEN]),
    Route::new(
        Method::GET,
        "/chat/conversations/{id}",
        authed!(get_conversation),
        "A conversation",
        Answer::ok::<ConversationOut>(),
    ),
    Route::new(
        Method::PATCH,
        "/chat/conversations/{id}",
        authed!(rename_conversation),
        "Rename a conversation",
        Answer::ok::<ConversationOut>(),
    )
    .body::<RenameConversationRequest>(),
    Route::new(
        Method::DELETE,
        "/chat/conversations/{id}",
        authed!(delete_conversation),
        "Delete a conversation with its messages and attachments",
        Answer::NoContent,
    ),
    Route::new(
        Method::GET,
        "/chat/conversations/{id}/messages",
        authed!(list_messages),
        "A conversation's messages",
        Answer::page::<MessageOut>(),
    )
    .query(&[
        Param::Limit,
        Param::Order,
        Param::Seq("after", "seq, with order=asc"),
        Param::Seq("before", "seq, with order=desc"),
    ]),
    Route::new(
        Method::POST,
        "/chat/conversations/{id}/completions",
        authed!(complete),
        "Answer the conversation through the caller's provider and key, and store the reply",
        Answer::CreatedOrStream(SchemaOf::of::<MessageOut>()),
    )
    .body::<CompletionRequestBody>()
    .errors(&[StatusCode::BAD_GATEWAY, StatusCode::GATEWAY_TIMEOUT])
    .untimed(),
    Route::new(
        Method::POST,
        "/chat/messages",
        authed!(create_message),
        "Append a message",
        Answer::created::<MessageOut>(),
    )
    .body::<CreateMessageRequest>(),
    Route::new(
        Method::GET,
        "/chat/messages/{id}",
        authed!(get_message),
        "A message",
        Answer::ok::<MessageOut>(),
    ),
    Route::new(
        Method::DELETE,
        "/chat/messages/{id}",
        authed!(delete_message),
        "Delete a message with its attachments",
        Answer::NoContent,
    ),
    Route::new(
        Method::GET,
        "/chat/messages/{id}/attachments",
        authed!(list_attachments),
        "A message's attachments, oldest first",
        Answer::page::<AttachmentOut>(),
    )
    .query(&[Param::Limit, Param::Id("after", "attachment id")]),
    Route::new(
        Method::POST,
        "/chat/attachments",
        authed!(create_attachment),
        "Add an attachment to a message",
        Answer::created::<AttachmentOut>(),
    )
    .body::<CreateAttachmentRequest>(),
    Route::new(
        Method::GET,
        "/chat/attachments/{id}",
        authed!(get_attachment),
        "An attachment",
        Answer::ok::<AttachmentOut>(),
    ),
    Route::new(
        Method::DELETE,
        "/chat/attachments/{id}",
        authed!(delete_attachment),
        "Delete an attachment",
        Answer::NoContent,
    ),
    Route::new(
        Method::GET,
        "/chat/llm-providers",
        authed!(list_providers),
        "The providers the caller can see",
        Answer::page::<ProviderOut>(),
    )
    .query(&[Param::Limit, Param::Id("after", "provider id")]),
    Route::new(
        Method::POST,
        "/chat/llm-providers",
        authed!(create_provider),
        "Create a private LLM provider",
        Answer::created::<ProviderOut>(),
    )
    .body::<CreateProviderRequest>()
    .errors(&[StatusCode::CONFLICT]),
    Route::new(
        Method::GET,
        "/chat/llm-providers/{id}",
        authed!(get_provider),
        "A provider",
        Answer::ok::<ProviderOut>(),
    ),
    Route::new(
        Method::DELETE,
        "/chat/llm-providers/{id}",
        authed!(delete_provider),
        "Delete one of the caller's providers with its configs",
        Answer::NoContent,
    )
    .errors(&[StatusCode::FORBIDDEN]),
    Route::new(
        Method::POST,
        "/chat/user-llm-configs",
        authed!(create_config),
        "Store the caller's API key for a provider",
        Answer::created::<ConfigOut>(),
    )
    .body::<CreateConfigRequest>()
    .errors(&[StatusCode::FORBIDDEN, StatusCode::CONFLICT]),
    Route::new(
        Method::GET,
        "/chat/user-llm-configs/{user_id}/{provider_id}",
        authed!(get_config),
        "The caller's config for a provider",
        Answer::ok::<ConfigOut>(),
    ),
    Route::new(
        Method::PUT,
        "/chat/user-llm-configs/{user_id}/{provider_id}",
        authed!(update_config),
        "Replace the API key of a config",
        Answer::ok::<ConfigOut>(),
    )
    .body::<UpdateConfigRequest>(),
    Route::new(
        Method::DELETE,
        "/chat/user-llm-configs/{user_id}/{provider_id}",
        authed!(delete_config),
        "Delete a config",
        Answer::NoContent,
    ),
    Route::new(
        Method::GET,
        "/chat/export",
        authed!(export),
        "Everything of the caller's, one JSON object a line, streamed",
        Answer::Text("application/x-ndjson"),
    ),
    Route::new(
        Method::GET,
        "/healthz",
        public!(healthz),
        "Liveness",
        Answer::ok::<Health>(),
    ),
    Route::new(
        Method::GET,
        "/readyz",
        public!(readyz),
        "Readiness: whether the store answers",
        Answer::ok::<Health>(),
    )
    .errors(&[StatusCode::SERVICE_UNAVAILABLE]),
    Route::new(
        Method::GET,
        "/metrics",
        public!(metrics),
        "Prometheus metrics: requests, latencies, store operations, connections",
        Answer::Text("text/plain"),
    ),
    Route::new(
        Method::GET,
        "/openapi.json",
        public!(open_api),
        "This document",
        Answer::Document,
    ),
];
