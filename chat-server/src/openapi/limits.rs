//! The limits of request body fields, written into their schemas: the derived schemas say
//! only "a string", and a client (or a fuzzer) that cannot tell a valid body from an invalid
//! one learns the rules one 400 at a time.
//!
//! JSON Schema cannot say everything the service checks (lengths after trimming, lengths in
//! bytes, what the URL parser accepts), so where it cannot be exact each entry is stricter
//! than the service, never looser: a value the schema allows is one the service accepts. The
//! field descriptions keep the whole rule. Patterns use only the syntax ECMA-262 and Python
//! share (no `\p{…}`), so common validators and generators read them alike.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// No control character (Unicode category Cc: U+0000–U+001F and U+007F–U+009F).
const NO_CONTROL: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// Text stored trimmed: no control character, and something besides whitespace.
const TRIMMED_TEXT: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// No whitespace and no control character.
const NO_SPACE: &str = r"^[^\s\x00-\x1f\x7f-\x9f]*$";

/// Anything but U+0000.
const NO_NUL: &str = r"^[^\x00]*$";

/// The user name's alphabet.
const USERNAME: &str = r"^[A-Za-z0-9_.-]*$";

/// One `@` with something on both sides, no whitespace or control character.
const EMAIL: &str = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+$";

/// An http or https URL with a host name (its last label starting with a letter, so it
/// never reads as an IPv4 address), an optional port and a plain path: a subset of what the
/// service accepts, which is any absolute http or https URL with a host.
const HTTP_URL: &str = r"^[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9]+\.)*[A-Za-z][A-Za-z0-9]*(:[0-9]{1,4})?(/[A-Za-z0-9._~-]*)*$";

/// What one field of one schema allows, besides its type.
struct Limit {
    /// The schema's name.
    schema: &'static str,
    /// The field.
    field: &'static str,
    /// Fewest characters (Unicode scalar values, as both JSON Schema and the service count).
    min: usize,
    /// Most characters, when the limit is in characters.
    max: Option<usize>,
    /// A pattern the whole value matches.
    pattern: &'static str,
}

const fn limit(
    schema: &'static str,
    field: &'static str,
    min: usize,
    max: Option<usize>,
    pattern: &'static str,
) -> Limit {
    Limit {
        schema,
        field,
        min,
        max,
        pattern,
    }
}

/// Every limited field. A login's fields have none: any string is a wrong credential (401),
/// never a bad input.
const LIMITS: &[Limit] = &[
    limit("RegisterRequest", "username", 3, Some(64), USERNAME),
    limit("RegisterRequest", "password", 8, Some(1024), NO_NUL),
    limit("RegisterRequest", "email", 3, Some(254), EMAIL),
    limit(
        "CreateConversationRequest",
        "title",
        1,
        Some(200),
        TRIMMED_TEXT,
    ),
    limit(
        "RenameConversationRequest",
        "title",
        1,
        Some(200),
        TRIMMED_TEXT,
    ),
    // At most 256 KiB by default, in bytes, and the operator may change it.
    limit("CreateMessageRequest", "content", 1, None, NO_NUL),
    limit(
        "CreateAttachmentRequest",
        "file_type",
        1,
        Some(127),
        NO_SPACE,
    ),
    // At most 4096 bytes.
    limit("CreateAttachmentRequest", "file_path", 1, None, NO_CONTROL),
    limit("CreateProviderRequest", "name", 1, Some(100), TRIMMED_TEXT),
    limit(
        "CreateProviderRequest",
        "api_endpoint",
        1,
        Some(2048),
        HTTP_URL,
    ),
    limit("CreateConfigRequest", "api_key", 1, Some(4096), NO_SPACE),
    limit("CompletionRequestBody", "model", 1, Some(200), NO_SPACE),
    limit("UpdateConfigRequest", "api_key", 1, Some(4096), NO_SPACE),
];

/// Writes the limits of the schema named `name` into it.
pub(super) fn apply(name: &str, schema: &mut RefOr<Schema>) {
    let RefOr::T(Schema::Object(object)) = schema else {
        return;
    };
    for limit in LIMITS.iter().filter(|limit| limit.schema == name) {
        if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(limit.field) {
            field.min_length = Some(limit.min);
            field.max_length = limit.max;
            field.pattern = Some(limit.pattern.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LIMITS;

    /// A limit on a field the document lacks would be silently dropped.
    #[test]
    fn every_limit_names_a_string_field_of_the_document() {
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        for limit in LIMITS {
            let field = &doc["components"]["schemas"][limit.schema]["properties"][limit.field];
            assert_eq!(
                field["pattern"], limit.pattern,
                "{}.{} is not in the document",
                limit.schema, limit.field
            );
        }
    }
}
