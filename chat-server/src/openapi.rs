//! The OpenAPI 3.1 document, built from the route table and the wire types, so it cannot
//! describe a route the server lacks or miss one it has.

use hyper::Method;
use utoipa::OpenApi;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, Header, Paths, Ref, RefOr, Required, ResponseBuilder, Schema,
};

use crate::dto::{
    AttachmentOut, ConfigOut, ConversationOut, CreateAttachmentRequest, CreateConfigRequest,
    CreateConversationRequest, CreateMessageRequest, CreateProviderRequest, Health, LoginRequest,
    MessageOut, ProviderOut, RegisterRequest, RenameConversationRequest, RoleName, TokenOut,
    UpdateConfigRequest, UserOut,
};
use crate::error::{ErrorBody, ErrorCode, ErrorDetail};
use crate::routes::{Endpoint, ROUTES};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chat-server",
        description = "Conversations, messages, attachments, LLM providers and users' API keys."
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        ErrorCode,
        RegisterRequest,
        LoginRequest,
        TokenOut,
        UserOut,
        CreateConversationRequest,
        RenameConversationRequest,
        ConversationOut,
        CreateMessageRequest,
        MessageOut,
        RoleName,
        CreateAttachmentRequest,
        AttachmentOut,
        CreateProviderRequest,
        ProviderOut,
        CreateConfigRequest,
        UpdateConfigRequest,
        ConfigOut,
        Health
    ))
)]
struct Doc;

const BEARER: &str = "bearer";

/// What a response of success carries.
enum Success {
    One(&'static str),
    Page(&'static str),
    Empty,
    Any,
}

/// The documentation of one endpoint.
struct Spec {
    summary: &'static str,
    request: Option<&'static str>,
    status: &'static str,
    success: Success,
    query: &'static [(&'static str, &'static str)],
    /// Errors besides the ones every endpoint of its kind can answer.
    errors: &'static [&'static str],
}

const LIMIT: (&str, &str) = ("limit", "page size, 1 to 1000 (default 100)");

fn spec(endpoint: Endpoint) -> Spec {
    use Endpoint as E;
    use Success::{Any, Empty, One, Page};
    let s = |summary, request, status, success, query, errors| Spec {
        summary,
        request,
        status,
        success,
        query,
        errors,
    };
    match endpoint {
        E::Register => s(
            "Register a user",
            Some("RegisterRequest"),
            "201",
            One("UserOut"),
            &[],
            &["403", "409"],
        ),
        E::Login => s(
            "Log in and get a bearer token",
            Some("LoginRequest"),
            "200",
            One("TokenOut"),
            &[],
            &["401"],
        ),
        E::Logout => s("Revoke the presented token", None, "204", Empty, &[], &[]),
        E::Me => s("The caller's user", None, "200", One("UserOut"), &[], &[]),
        E::CreateConversation => s(
            "Start a conversation",
            Some("CreateConversationRequest"),
            "201",
            One("ConversationOut"),
            &[],
            &["403"],
        ),
        E::ListConversations => s(
            "The caller's conversations, newest first",
            None,
            "200",
            Page("ConversationOut"),
            &[LIMIT, ("before", "conversation id: only older ones")],
            &[],
        ),
        E::GetConversation => s(
            "A conversation",
            None,
            "200",
            One("ConversationOut"),
            &[],
            &[],
        ),
        E::RenameConversation => s(
            "Rename a conversation",
            Some("RenameConversationRequest"),
            "200",
            One("ConversationOut"),
            &[],
            &[],
        ),
        E::DeleteConversation => s(
            "Delete a conversation with its messages and attachments",
            None,
            "204",
            Empty,
            &[],
            &[],
        ),
        E::CreateMessage => s(
            "Append a message",
            Some("CreateMessageRequest"),
            "201",
            One("MessageOut"),
            &[],
            &[],
        ),
        E::ListMessages => s(
            "A conversation's messages",
            None,
            "200",
            Page("MessageOut"),
            &[
                LIMIT,
                ("order", "asc (default) or desc"),
                ("after", "seq, with order=asc"),
                ("before", "seq, with order=desc"),
            ],
            &[],
        ),
        E::GetMessage => s("A message", None, "200", One("MessageOut"), &[], &[]),
        E::DeleteMessage => s(
            "Delete a message with its attachments",
            None,
            "204",
            Empty,
            &[],
            &[],
        ),
        E::CreateAttachment => s(
            "Add an attachment to a message",
            Some("CreateAttachmentRequest"),
            "201",
            One("AttachmentOut"),
            &[],
            &[],
        ),
        E::ListAttachments => s(
            "A message's attachments, oldest first",
            None,
            "200",
            Page("AttachmentOut"),
            &[LIMIT, ("after", "attachment id")],
            &[],
        ),
        E::GetAttachment => s("An attachment", None, "200", One("AttachmentOut"), &[], &[]),
        E::DeleteAttachment => s("Delete an attachment", None, "204", Empty, &[], &[]),
        E::CreateProvider => s(
            "Create a private LLM provider",
            Some("CreateProviderRequest"),
            "201",
            One("ProviderOut"),
            &[],
            &["409"],
        ),
        E::ListProviders => s(
            "The providers the caller can see",
            None,
            "200",
            Page("ProviderOut"),
            &[LIMIT, ("after", "provider id")],
            &[],
        ),
        E::GetProvider => s("A provider", None, "200", One("ProviderOut"), &[], &[]),
        E::DeleteProvider => s(
            "Delete one of the caller's providers with its configs",
            None,
            "204",
            Empty,
            &[],
            &["403"],
        ),
        E::CreateConfig => s(
            "Store the caller's API key for a provider",
            Some("CreateConfigRequest"),
            "201",
            One("ConfigOut"),
            &[],
            &["403", "409"],
        ),
        E::GetConfig => s(
            "The caller's config for a provider",
            None,
            "200",
            One("ConfigOut"),
            &[],
            &[],
        ),
        E::UpdateConfig => s(
            "Replace the API key of a config",
            Some("UpdateConfigRequest"),
            "200",
            One("ConfigOut"),
            &[],
            &[],
        ),
        E::DeleteConfig => s("Delete a config", None, "204", Empty, &[], &[]),
        E::Healthz => s("Liveness", None, "200", One("Health"), &[], &[]),
        E::Readyz => s(
            "Readiness: whether the store answers",
            None,
            "200",
            One("Health"),
            &[],
            &["503"],
        ),
        E::OpenApi => s("This document", None, "200", Any, &[], &[]),
    }
}

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

fn schema_ref(name: &str) -> RefOr<Schema> {
    Ref::from_schema_name(name).into()
}

fn string_schema(format: Option<KnownFormat>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(format.map(SchemaFormat::KnownFormat))
}

/// The schema of a list's query parameter: a page size, a message position, an order or an
/// id.
fn query_schema(name: &str, description: &str) -> ObjectBuilder {
    match name {
        "limit" => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(1000)),
        "order" => string_schema(None).enum_values(Some(["asc", "desc"])),
        _ if description.starts_with("seq") => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0)),
        _ => string_schema(Some(KnownFormat::Uuid)),
    }
}

fn described_header(description: &str) -> Header {
    utoipa::openapi::HeaderBuilder::new()
        .schema(string_schema(None))
        .description(Some(description))
        .build()
}

fn error_response(status: &str) -> utoipa::openapi::Response {
    let description = match status {
        "400" => "invalid input",
        "401" => "missing, malformed, unknown, expired or revoked token",
        "403" => "forbidden",
        "404" => "no such object visible to the caller",
        "409" => "conflict",
        "413" => "body too large",
        "415" => "body is not application/json",
        "503" => "unavailable",
        _ => "internal error",
    };
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(schema_ref("ErrorBody")))
            .build(),
    );
    if status == "401" {
        response = response.header("WWW-Authenticate", Header::new(string_schema(None)));
    }
    response.build()
}

fn operation(template: &str, endpoint: Endpoint) -> utoipa::openapi::path::Operation {
    let spec = spec(endpoint);
    let mut op = OperationBuilder::new()
        .summary(Some(spec.summary))
        .operation_id(Some(format!("{endpoint:?}")));
    for segment in template.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(string_schema(Some(KnownFormat::Uuid)))),
            );
        }
    }
    for (name, description) in spec.query {
        op = op.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(*description))
                .schema(Some(query_schema(name, description))),
        );
    }
    if let Some(request) = spec.request {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(schema_ref(request)))
                        .build(),
                )
                .build(),
        ));
    }
    let mut success = ResponseBuilder::new().description(spec.summary);
    match spec.success {
        Success::One(name) => {
            success = success.content(
                "application/json",
                ContentBuilder::new().schema(Some(schema_ref(name))).build(),
            );
        }
        Success::Page(name) => {
            let array = ArrayBuilder::new()
                .items(Ref::from_schema_name(name))
                .build();
            success = success
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(array)).build(),
                )
                .header(
                    "Link",
                    described_header("`<path?query>; rel=\"next\"` when more may follow"),
                );
        }
        Success::Empty => {}
        Success::Any => {
            success = success.content("application/json", ContentBuilder::new().build());
        }
    }
    if spec.status == "201" && endpoint != Endpoint::Register {
        success = success.header("Location", described_header("the path of the new object"));
    }
    op = op.response(spec.status, success.build());
    let mut errors: Vec<&str> = vec!["400", "404", "500"];
    if endpoint.needs_auth() {
        errors.push("401");
        op = op.security(SecurityRequirement::new(BEARER, Vec::<String>::new()));
    }
    if endpoint.has_body() {
        errors.extend(["413", "415"]);
    }
    errors.extend(spec.errors);
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        op = op.response(status, error_response(status));
    }
    op.build()
}

/// The OpenAPI document of the server.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Doc::openapi();
    let mut paths = Paths::new();
    for (template, methods) in ROUTES {
        for (method, endpoint) in *methods {
            paths.add_path_operation(
                *template,
                vec![http_method(method)],
                operation(template, *endpoint),
            );
        }
    }
    doc.paths = paths;
    if let Some(components) = doc.components.as_mut() {
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
    doc
}
