//! Metadata as sent, and bodies with the same key twice, over real HTTP on every store.

mod common;

use std::collections::HashMap;

use common::{Backing, Kind, Resp, Server};
use serde_json::json;
use serde_json::value::RawValue;

/// Each case against each store, one named test per (store, case).
macro_rules! on_every_store {
    ($($case:ident),* $(,)?) => {
        on_every_store!(@store memory, Kind::Memory, $($case),*);
        on_every_store!(@store sled, Kind::Sled, $($case),*);
        on_every_store!(@store sqlite, Kind::Sqlite, $($case),*);
        on_every_store!(@store postgres, Kind::Postgres, $($case),*);
    };
    (@store $store:ident, $kind:expr, $($case:ident),*) => {
        mod $store {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(backing) = Backing::new($kind) else { return };
                    let server = Server::start(&backing).await;
                    super::$case(&server).await;
                    server.stop().await;
                    backing.cleanup().await;
                }
            )*
        }
    };
}

on_every_store!(metadata_comes_back_as_sent, duplicate_keys_are_refused);

/// The top-level fields of a JSON object answer, each as the exact text the server sent:
/// parsing into a `Value` would hide what these tests look at (and refuse `1e400`).
fn fields(r: &Resp) -> HashMap<String, Box<RawValue>> {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn text_of(r: &Resp, field: &str) -> String {
    fields(r)[field].get().to_owned()
}

fn message_body(conversation: &str, metadata: &str) -> String {
    format!(
        r#"{{"conversation_id": "{conversation}", "role": "user", "content": "hi", "metadata": {metadata}}}"#
    )
}

/// What was sent, pretty-printed, and what must come back: the same bytes without the
/// whitespace between tokens.
const SENT: &str = r#"{
    "zebra" : 1E2,
    "apple" : [1.0, -0, 2.50E+10, 123456789012345678901234567890, -1e400],
    "\u00e9" : "caf\u00e9 \ud83d\ude00 \"quoted\" ",
    "nested" : {"z": {"y": 1, "b": 2}, "a": []},
    "raw" : "é 日本語"
}"#;
const KEPT: &str = r#"{"zebra":1E2,"apple":[1.0,-0,2.50E+10,123456789012345678901234567890,-1e400],"\u00e9":"caf\u00e9 \ud83d\ude00 \"quoted\" ","nested":{"z":{"y":1,"b":2},"a":[]},"raw":"é 日本語"}"#;

async fn metadata_comes_back_as_sent(s: &Server) {
    let ada = s.user("ada").await;
    let c = &ada.client;
    let conv = c
        .post("/chat/conversations", json!({"title": "as sent"}))
        .await;
    let cid = conv.json()["id"].as_str().unwrap().to_owned();
    let r = c
        .raw(
            "POST",
            "/chat/messages",
            "application/json",
            message_body(&cid, SENT).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(text_of(&r, "metadata"), KEPT, "the answer to the append");
    let id: String = serde_json::from_str(&text_of(&r, "id")).unwrap();

    let r = c.get(&format!("/chat/messages/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(text_of(&r, "metadata"), KEPT, "a read of the message");

    let r = c
        .get(&format!("/chat/conversations/{cid}/messages?order=desc"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let page: Vec<HashMap<String, Box<RawValue>>> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(page[0]["metadata"].get(), KEPT, "a page of messages");

    // The largest object allowed counts its compact text, escapes as sent.
    let pad = 16 * 1024 - r#"{"k":""}"#.len();
    let largest = format!(
        r#"{{"k":"{}"}}"#,
        "\\u00e9".repeat(pad / 6) + &"x".repeat(pad % 6)
    );
    let spaced = largest.replace(':', " :\n ");
    let r = c
        .raw(
            "POST",
            "/chat/messages",
            "application/json",
            message_body(&cid, &spaced).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(text_of(&r, "metadata"), largest);
    let over = largest.replacen(r#""k""#, r#""kk""#, 1);
    let r = c
        .raw(
            "POST",
            "/chat/messages",
            "application/json",
            message_body(&cid, &over).as_bytes(),
        )
        .await;
    r.assert_error(400, "invalid_input", Some("metadata"));
}

async fn duplicate_keys_are_refused(s: &Server) {
    let ada = s.user("ada").await;
    let c = &ada.client;
    let conv = c
        .post("/chat/conversations", json!({"title": "ambiguous"}))
        .await;
    let cid = conv.json()["id"].as_str().unwrap().to_owned();
    let post = |path: &'static str, body: String| async move {
        c.raw("POST", path, "application/json", body.as_bytes())
            .await
    };

    // In metadata, at any depth, and equal only after unescaping.
    for metadata in [
        r#"{"a":1,"a":2}"#,
        r#"{"a":{"b":{"c":1,"c":1}}}"#,
        r#"{"list":[{"k":1},{"k":1,"deep":[{"x":1,"\u0078":2}]}]}"#,
    ] {
        post("/chat/messages", message_body(&cid, metadata))
            .await
            .assert_error(400, "invalid_input", Some("metadata"));
    }
    // Every body, not only metadata: a field twice, or a duplicate under a field nobody
    // reads; `field` names the top-level field.
    for (path, body, field) in [
        (
            "/chat/messages",
            format!(r#"{{"conversation_id":"{cid}","role":"user","content":"a","content":"b"}}"#),
            "content",
        ),
        (
            "/chat/conversations",
            r#"{"title":"x","t\u0069tle":"y"}"#.to_owned(),
            "title",
        ),
        (
            "/chat/conversations",
            r#"{"title":"x","extra":{"k":[{"x":1,"x":1}]}}"#.to_owned(),
            "extra",
        ),
        (
            "/users",
            r#"{"username":"bob","password":"long enough","x":[[{"y":{"z":1,"z":2}}]]}"#.to_owned(),
            "x",
        ),
        (
            "/chat/llm-providers",
            r#"{"name":"p","api_endpoint":"https://llm.example","name":"q"}"#.to_owned(),
            "name",
        ),
    ] {
        post(path, body)
            .await
            .assert_error(400, "invalid_input", Some(field));
    }
    // Nothing refused was stored.
    let conv = c.get(&format!("/chat/conversations/{cid}")).await.json();
    assert_eq!(conv["message_count"], 0);
    let r = c.get("/chat/conversations").await.json();
    assert_eq!(r.as_array().unwrap().len(), 1, "{r}");

    // The same key in different objects is no duplicate.
    let r = post(
        "/chat/messages",
        message_body(&cid, r#"{"a":{"k":1},"b":{"k":1},"k":[{"k":1},{"k":1}]}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        text_of(&r, "metadata"),
        r#"{"a":{"k":1},"b":{"k":1},"k":[{"k":1},{"k":1}]}"#
    );
}
