//! Metadata as sent, and bodies with the same key twice, over real HTTP on every store.

#[macro_use]
mod common;

use common::{Backing, Kind, Server};

store_tests!(metadata_comes_back_as_sent, duplicate_keys_are_refused);

mod cases {
    use std::collections::HashMap;

    use serde_json::json;
    use serde_json::value::RawValue;

    use crate::common::{Client, Resp, Server};

    /// The top-level fields of a JSON object answer, each as the exact text the server
    /// sent: parsing into a `Value` would hide what these tests look at (and refuse `1e400`).
    fn fields(r: &Resp) -> HashMap<String, Box<RawValue>> {
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
    }

    fn text_of(r: &Resp, field: &str) -> String {
        fields(r)[field].get().to_owned()
    }

    /// Posts `body`, sent as the very text given.
    async fn post(c: &Client, path: &str, body: &str) -> Resp {
        c.raw("POST", path, "application/json", body.as_bytes())
            .await
    }

    /// Appends a message to `conversation` with `metadata`, sent as the very text given.
    async fn append(c: &Client, conversation: &str, metadata: &str) -> Resp {
        let body = format!(
            r#"{{"conversation_id": "{conversation}", "role": "user", "content": "hi", "metadata": {metadata}}}"#
        );
        post(c, "/chat/messages", &body).await
    }

    async fn new_conversation(c: &Client) -> String {
        let r = c.post("/chat/conversations", json!({"title": "t"})).await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_owned()
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

    pub async fn metadata_comes_back_as_sent(s: &Server) {
        let ada = s.user("ada").await;
        let c = &ada.client;
        let cid = new_conversation(c).await;
        let r = append(c, &cid, SENT).await;
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
        let r = append(c, &cid, &largest.replace(':', " :\n ")).await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(text_of(&r, "metadata"), largest);
        let over = largest.replacen(r#""k""#, r#""kk""#, 1);
        append(c, &cid, &over)
            .await
            .assert_error(400, "invalid_input", Some("metadata"));
    }

    pub async fn duplicate_keys_are_refused(s: &Server) {
        let ada = s.user("ada").await;
        let c = &ada.client;
        let cid = new_conversation(c).await;

        // In metadata, at any depth, and equal only after unescaping.
        for metadata in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"b":{"c":1,"c":1}}}"#,
            r#"{"list":[{"k":1},{"k":1,"deep":[{"x":1,"\u0078":2}]}]}"#,
        ] {
            append(c, &cid, metadata)
                .await
                .assert_error(400, "invalid_input", Some("metadata"));
        }
        // Every body, not only metadata: a field twice, or a duplicate under a field nobody
        // reads; `field` names the top-level field.
        for (path, body, field) in [
            (
                "/chat/messages",
                format!(
                    r#"{{"conversation_id":"{cid}","role":"user","content":"a","content":"b"}}"#
                ),
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
                r#"{"username":"bob","password":"long enough","x":[[{"y":{"z":1,"z":2}}]]}"#
                    .to_owned(),
                "x",
            ),
            (
                "/chat/llm-providers",
                r#"{"name":"p","api_endpoint":"https://llm.example","name":"q"}"#.to_owned(),
                "name",
            ),
        ] {
            post(c, path, &body)
                .await
                .assert_error(400, "invalid_input", Some(field));
        }
        // Nothing refused was stored.
        let conv = c.get(&format!("/chat/conversations/{cid}")).await.json();
        assert_eq!(conv["message_count"], 0);
        let r = c.get("/chat/conversations").await.json();
        assert_eq!(r.as_array().unwrap().len(), 1, "{r}");

        // The same key in different objects is no duplicate.
        let distinct = r#"{"a":{"k":1},"b":{"k":1},"k":[{"k":1},{"k":1}]}"#;
        let r = append(c, &cid, distinct).await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(text_of(&r, "metadata"), distinct);
    }
}
