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

#[derive(OpenApi)]
#[openapi(info(
    title = "chat-server",
    description = "Conversations, messages, attachments, LLM providers and users' API keys."
))]
struct Doc;

const BEARER: &str = "bearer";

/// The body of every error answer.
const ERROR_BODY: SchemaOf = SchemaOf::of::<ErrorBody>();

/// The errors every route can answer: a bad input, a missing object, a failure.
const ALWAYS: [StatusCode; 3] = [
    StatusCode::BAD_REQUEST,
    StatusCode::NOT_FOUND,
    StatusCode::INTERNAL_SERVER_ERROR,
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
        Param::Id(..) => string_schema(Some(KnownFormat::Uuid)),
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
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "internal error",
    };
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", json_content(ERROR_BODY));
    if status == StatusCode::UNAUTHORIZED {
        response = response.header("WWW-Authenticate", Header::new(string_schema(None)));
    }
    response.build()
}

fn success_response(route: &Route) -> Response {
    let success = ResponseBuilder::new().description(route.summary);
    let success = match route.answer {
        Answer::Object(_, schema) => success.content("application/json", json_content(schema)),
        Answer::Created(schema) => success
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
    };
    success.build()
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
    for segment in route.path.split('/') {
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

/// The schemas the routes refer to, and the ones those refer to in turn.
fn schemas_of(routes: &[Route]) -> Vec<(String, RefOr<Schema>)> {
    let named = routes
        .iter()
        .flat_map(|route| {
            let answer = match route.answer {
                Answer::Object(_, schema) | Answer::Created(schema) | Answer::Page(schema) => {
                    Some(schema)
                }
                Answer::NoContent | Answer::Document => None,
            };
            route.body.into_iter().chain(answer)
        })
        .chain([ERROR_BODY]);
    let mut schemas = Vec::new();
    for schema in named {
        schemas.push(((schema.name)().into_owned(), (schema.schema)()));
        (schema.refs)(&mut schemas);
    }
    schemas
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
