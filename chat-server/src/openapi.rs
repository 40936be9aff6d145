//! The OpenAPI 3.1 document, built from the route table and the wire types, so it cannot
//! describe a route the server lacks or miss one it has. Schemas are named by their types,
//! and the components are exactly the schemas the routes refer to.

use hyper::{Method, StatusCode};
use utoipa::OpenApi;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Components, ContentBuilder, Header, HeaderBuilder, Paths, Ref, RefOr, Required, Response,
    ResponseBuilder, Schema,
};

use crate::error::ErrorBody;
use crate::route::{Answer, Param, Route, SchemaOf};
use crate::routes::ROUTES;

mod limits;

#[derive(OpenApi)]
#[openapi(info(
    title = "chat-server",
    description = "Conversations, messages, attachments, LLM providers and users' API keys."
))]
struct Doc;

const BEARER: &str = "bearer";

/// The body of every error answer.
const ERROR_BODY: SchemaOf = SchemaOf::of::<ErrorBody>();

/// The errors every route can answer: a bad input, a missing object, a failure, and a store
/// that cannot serve now or a request that ran past the request timeout.
const ALWAYS: [StatusCode; 4] = [
    StatusCode::BAD_REQUEST,
    StatusCode::NOT_FOUND,
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::SERVICE_UNAVAILABLE,
];

/// The errors of reading a body.
const BODY_ERRORS: [StatusCode; 2] = [
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
];

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

fn schema_ref(schema: SchemaOf) -> RefOr<Schema> {
    Ref::from_schema_name((schema.name)()).into()
}

fn json_content(schema: SchemaOf) -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(schema_ref(schema)))
        .build()
}

/// The one spelling of an id: lower-case hexadecimal, hyphenated, 36 characters.
const ID_PATTERN: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// An id in a path or a query.
fn id_schema() -> ObjectBuilder {
    string_schema(Some(KnownFormat::Uuid)).pattern(Some(ID_PATTERN))
}

fn string_schema(format: Option<KnownFormat>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(format.map(SchemaFormat::KnownFormat))
}

/// The schema of a list's query parameter.
fn query_schema(param: Param) -> ObjectBuilder {
    match param {
        Param::Limit => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(1000)),
        Param::Order => string_schema(None).enum_values(Some(["asc", "desc"])),
        Param::Seq(..) => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0)),
        Param::Id(..) => id_schema(),
    }
}

fn described_header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(string_schema(None))
        .description(Some(description))
        .build()
}

fn error_response(status: StatusCode) -> Response {
    let description = match status {
        StatusCode::BAD_REQUEST => "invalid input",
        StatusCode::UNAUTHORIZED => "missing, malformed, unknown, expired or revoked token",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "no such object visible to the caller",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "body too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "body is not application/json",
        StatusCode::TOO_MANY_REQUESTS => "too many attempts; retry after `Retry-After` seconds",
        StatusCode::SERVICE_UNAVAILABLE => {
            "the store cannot serve now, or the request took too long"
        }
        StatusCode::BAD_GATEWAY => {
            "the LLM provider answered an error status, could not be reached, sent a malformed \
             answer, or its address is not allowed; nothing was stored"
        }
        StatusCode::GATEWAY_TIMEOUT => {
            "the LLM provider did not answer, or stopped sending, within the upstream timeouts; \
             nothing was stored"
        }
        _ => "internal error",
    };
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", json_content(ERROR_BODY));
    match status {
        StatusCode::UNAUTHORIZED => {
            response = response.header("WWW-Authenticate", Header::new(string_schema(None)));
        }
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            let seconds = ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0));
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(seconds)
                    .description(Some("seconds to wait before trying again"))
                    .build(),
            );
        }
        _ => {}
    }
    response.build()
}

fn success_response(route: &Route) -> Response {
    let success = ResponseBuilder::new().description(route.summary);
    let success = match route.answer {
        Answer::Object(_, schema) => success.content("application/json", json_content(schema)),
        Answer::Created(schema) | Answer::CreatedOrStream(schema) => success
            .content("application/json", json_content(schema))
            .header("Location", described_header("the path of the new object")),
        Answer::Page(schema) => {
            let array = ArrayBuilder::new().items(schema_ref(schema)).build();
            success
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(array)).build(),
                )
                .header(
                    "Link",
                    described_header("`<path?query>; rel=\"next\"` when more may follow"),
                )
        }
        Answer::NoContent => success,
        Answer::Document => success.content("application/json", ContentBuilder::new().build()),
        Answer::Text(media) => success.content(
            media,
            ContentBuilder::new()
                .schema(Some(string_schema(None)))
                .build(),
        ),
    };
    success.build()
}

/// The streamed answer of a route that can stream: server-sent events.
fn stream_response() -> Response {
    ResponseBuilder::new()
        .description(
            "with \"stream\": true, server-sent events: `event: delta` with \
             `data: {\"content\": \"…\"}` for each piece of the reply as it arrives, then \
             `event: message` with the stored message, or `event: error` with an error body \
             (nothing stored)",
        )
        .content(
            "text/event-stream",
            ContentBuilder::new()
                .schema(Some(string_schema(None)))
                .build(),
        )
        .build()
}

/// The parameters of a path template, in order.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// The operation id: the handler's name in `PascalCase`.
fn operation_id(handler: &str) -> String {
    handler
        .split('_')
        .flat_map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect()
}

fn operation(route: &Route) -> Operation {
    let mut op = OperationBuilder::new()
        .summary(Some(route.summary))
        .operation_id(Some(operation_id(route.handler.name())));
    for name in path_params(route.path) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(id_schema())),
        );
    }
    for param in route.query {
        op = op.parameter(
            ParameterBuilder::new()
                .name(param.name())
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(param.description()))
                .schema(Some(query_schema(*param))),
        );
    }
    if let Some(body) = route.body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", json_content(body))
                .build(),
        ));
    }
    op = op.response(route.answer.status().as_str(), success_response(route));
    if matches!(route.answer, Answer::CreatedOrStream(_)) {
        op = op.response(StatusCode::OK.as_str(), stream_response());
    }
    let mut errors = ALWAYS.to_vec();
    if route.handler.authenticates() {
        errors.push(StatusCode::UNAUTHORIZED);
        op = op.security(SecurityRequirement::new(BEARER, Vec::<String>::new()));
    }
    if route.body.is_some() {
        errors.extend(BODY_ERRORS);
    }
    errors.extend(route.errors);
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        op = op.response(status.as_str(), error_response(status));
    }
    op.build()
}

/// The schemas the routes refer to, and the ones those refer to in turn, with what their
/// types cannot say by themselves: how ids are spelled, that an answer always carries every
/// field, and the limits of the fields of request bodies.
fn schemas_of(routes: &[Route]) -> Vec<(String, RefOr<Schema>)> {
    let answers: Vec<SchemaOf> = routes
        .iter()
        .filter_map(|route| route.answer.schema())
        .collect();
    let named = routes
        .iter()
        .flat_map(|route| route.body.into_iter().chain(route.answer.schema()))
        .chain([ERROR_BODY]);
    let mut schemas = Vec::new();
    for schema in named {
        schemas.push(((schema.name)().into_owned(), (schema.schema)()));
        (schema.refs)(&mut schemas);
    }
    for (name, schema) in &mut schemas {
        spell_ids(schema);
        if answers
            .iter()
            .any(|answer| (answer.name)() == name.as_str())
        {
            require_every_property(schema);
        }
        limits::apply(name, schema);
    }
    schemas
}

/// Ids are written in one spelling only, lower-case and hyphenated; `format: uuid` alone
/// would also allow upper case.
fn spell_ids(schema: &mut RefOr<Schema>) {
    let RefOr::T(Schema::Object(object)) = schema else {
        return;
    };
    if object.format == Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)) {
        object.pattern = Some(ID_PATTERN.to_owned());
    }
    for property in object.properties.values_mut() {
        spell_ids(property);
    }
}

/// The server writes every field of an answer, `null` included (no response type skips a
/// field), so a client may rely on each being present; the derived schemas mark an
/// `Option` field as optional, which says otherwise.
fn require_every_property(schema: &mut RefOr<Schema>) {
    if let RefOr::T(Schema::Object(object)) = schema {
        object.required = object.properties.keys().cloned().collect();
    }
}

/// The OpenAPI document of the server.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Doc::openapi();
    let mut paths = Paths::new();
    for route in ROUTES {
        paths.add_path_operation(
            route.path,
            vec![http_method(&route.method)],
            operation(route),
        );
    }
    doc.paths = paths;
    let components = doc.components.get_or_insert_with(Components::new);
    components.schemas.extend(schemas_of(ROUTES));
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::Utc;
    use serde_json::{Value, json};
    use uuid::Uuid;

    use super::{ROUTES, document};
    use crate::dto::{
        AttachmentOut, ConfigOut, ConversationOut, Health, MessageOut, ProviderOut, RoleName,
        TokenOut, UserOut,
    };

    /// One value of every answer type, every optional field empty.
    fn answers() -> Vec<(&'static str, Value)> {
        let (id, now) = (Uuid::nil(), Utc::now());
        let user = UserOut {
            id,
            username: String::new(),
            email: None,
            created_at: now,
        };
        let token = TokenOut {
            token: String::new(),
            token_type: "Bearer",
            expires_at: now,
            user_id: id,
        };
        let conversation = ConversationOut {
            id,
            user_id: id,
            title: String::new(),
            created_at: now,
            updated_at: now,
            message_count: 0,
        };
        let message = MessageOut {
            id,
            conversation_id: id,
            seq: 1,
            role: RoleName::User,
            content: String::new(),
            metadata: None,
            created_at: now,
        };
        let attachment = AttachmentOut {
            id,
            message_id: id,
            file_type: String::new(),
            file_path: String::new(),
            created_at: now,
        };
        let provider = ProviderOut {
            id,
            name: String::new(),
            api_endpoint: String::new(),
            owner_id: None,
            created_at: now,
        };
        let config = ConfigOut {
            id,
            user_id: id,
            provider_id: id,
            api_key_hint: None,
            created_at: now,
            updated_at: now,
        };
        let health = Health { status: "ok" };
        vec![
            ("UserOut", to_value(user)),
            ("TokenOut", to_value(token)),
            ("ConversationOut", to_value(conversation)),
            ("MessageOut", to_value(message)),
            ("AttachmentOut", to_value(attachment)),
            ("ProviderOut", to_value(provider)),
            ("ConfigOut", to_value(config)),
            ("Health", to_value(health)),
        ]
    }

    fn to_value(value: impl serde::Serialize) -> Value {
        serde_json::to_value(value).unwrap()
    }

    fn names(value: &Value) -> BTreeSet<String> {
        match value {
            Value::Object(map) => map.keys().cloned().collect(),
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().unwrap().to_owned())
                .collect(),
            _ => panic!("neither an object nor a list of names: {value}"),
        }
    }

    /// The document marks every field of an answer required, which holds only while the
    /// server writes every field, `null` ones included.
    #[test]
    fn every_field_an_answer_lists_is_required_and_sent() {
        let doc = serde_json::to_value(document()).unwrap();
        let samples = answers();
        let answered: BTreeSet<String> = ROUTES
            .iter()
            .filter_map(|route| route.answer.schema())
            .map(|schema| (schema.name)().into_owned())
            .collect();
        let sampled: BTreeSet<String> = samples.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(sampled, answered, "every answer type needs a sample here");
        for (name, sample) in samples {
            let schema = &doc["components"]["schemas"][name];
            let properties = names(&schema["properties"]);
            assert_eq!(names(&schema["required"]), properties, "{name}");
            assert_eq!(names(&sample), properties, "{name}");
        }
        assert_eq!(
            doc["components"]["schemas"]["ConfigOut"]["properties"]["api_key_hint"]["type"],
            json!(["string", "null"])
        );
    }

    /// Every id, in a path, a query, a body or an answer, has the one spelling.
    #[test]
    fn ids_are_lower_case_and_hyphenated() {
        let text = serde_json::to_string(&document()).unwrap();
        let uuids = text.matches(r#""format":"uuid""#).count();
        let spelled = text.matches(super::ID_PATTERN).count();
        assert!(uuids > 20, "{uuids}");
        assert_eq!(spelled, uuids);
    }
}
