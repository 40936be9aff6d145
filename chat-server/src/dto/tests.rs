//! The request types that carry a secret print it as `<redacted>`.

use std::fmt::Debug;

use super::{
    CreateConfigRequest, Fields, FromFields, LoginRequest, RegisterRequest, UpdateConfigRequest,
};

const SECRET: &str = "sk-live-Pa55w0rd-0123456789abcdef";

/// Reads `body` as `T` the way a handler does, and answers its `{:?}` and `{:#?}`.
fn debug_of<T: FromFields + Debug>(body: &serde_json::Value) -> [String; 2] {
    let req: T = Fields::read(body.to_string().as_bytes()).expect("a valid body");
    [format!("{req:?}"), format!("{req:#?}")]
}

#[test]
fn request_types_never_print_a_secret() {
    let provider = "0189abcd-ef01-7abc-8def-0123456789ab";
    let printed = [
        debug_of::<RegisterRequest>(&serde_json::json!({
            "username": "ada", "password": SECRET, "email": "ada@example.com"
        })),
        debug_of::<LoginRequest>(&serde_json::json!({"username": "ada", "password": SECRET})),
        debug_of::<CreateConfigRequest>(&serde_json::json!({
            "provider_id": provider, "api_key": SECRET
        })),
        debug_of::<UpdateConfigRequest>(&serde_json::json!({"api_key": SECRET})),
    ];
    for text in printed.iter().flatten() {
        // Not even a piece of it, such as the four characters a key's hint shows.
        assert!(!text.contains(SECRET) && !text.contains("cdef"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
    // What is not secret is still there to debug with.
    assert!(
        printed[0][0].contains("ada@example.com"),
        "{:?}",
        printed[0]
    );
    assert!(printed[2][0].contains("0189abcd"), "{:?}", printed[2]);
}
