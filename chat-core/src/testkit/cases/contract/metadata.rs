//! Message metadata comes back as it was sent: the text of the object, whitespace outside
//! strings removed, every other byte kept.

use super::new_conversation;
use crate::model::Message;
use crate::store::{MessageOrder, Store};
use crate::testkit::fixtures::{at, draft, new_user, ok};
use crate::validation::{Limit, Metadata};

/// What a client sends, and the text every store must give back.
const SENT_AND_KEPT: &[(&str, &str)] = &[
    // Key order, at every depth, is the client's.
    (
        r#"{"zebra":1,"apple":2,"mango":{"z":[{"y":1,"b":2}],"a":null}}"#,
        r#"{"zebra":1,"apple":2,"mango":{"z":[{"y":1,"b":2}],"a":null}}"#,
    ),
    // Numbers keep their spelling: exponents, trailing zeros, negative zero, integers past
    // 64 bits and past f64's range, fractions past f64's precision.
    (
        r#"{"e":1E2,"f":1.0,"g":-0,"h":2.50E+10,"i":1e-7,"big":123456789012345678901234567890,"neg":-98765432109876543210987654321,"huge":1e400,"tiny":-1E-400,"pi":3.14159265358979323846264338327950288}"#,
        r#"{"e":1E2,"f":1.0,"g":-0,"h":2.50E+10,"i":1e-7,"big":123456789012345678901234567890,"neg":-98765432109876543210987654321,"huge":1e400,"tiny":-1E-400,"pi":3.14159265358979323846264338327950288}"#,
    ),
    // Strings keep their escapes, whatever case their hex digits, and their raw characters.
    (
        r#"{"\u00e9":"caf\u00e9","E":"\u00E9","pair":"\ud83d\ude00","ctl":"\"\\\/\b\f\n\r\t\u001f","raw":"é🎉 日本語","slash":"a/b"}"#,
        r#"{"\u00e9":"caf\u00e9","E":"\u00E9","pair":"\ud83d\ude00","ctl":"\"\\\/\b\f\n\r\t\u001f","raw":"é🎉 日本語","slash":"a/b"}"#,
    ),
    // Whitespace goes, but only outside strings.
    (
        " {\r\n  \"a b\" : [ 1 , 2 ,\t{ } ] ,\n  \"c\" : \" x \\\" y \" ,\"d\":[ ]\n} ",
        r#"{"a b":[1,2,{}],"c":" x \" y ","d":[]}"#,
    ),
    (r#"{}"#, r#"{}"#),
];

/// Metadata reads back exactly as it was sent, on every read path: key order, number
/// spellings (`1E2`, `1.0`, `-0`, 30-digit integers, `1e400`), string escapes (`"\u00e9"`
/// stays six characters) and the largest object allowed.
pub async fn metadata_kept_exactly_as_sent(store: &dyn Store) {
    let u = new_user(store, "mathilde").await;
    let c = new_conversation(store, u.id, "metadata as sent").await;
    let mut cases: Vec<(String, String)> = SENT_AND_KEPT
        .iter()
        .map(|(sent, kept)| ((*sent).to_owned(), (*kept).to_owned()))
        .collect();
    let largest = largest_object();
    cases.push((largest.clone(), largest));
    let mut written: Vec<Message> = Vec::new();
    for (i, (sent, kept)) in cases.iter().enumerate() {
        let meta = Metadata::parse_json(sent).expect("valid metadata");
        assert_eq!(meta.as_str(), kept, "the canonical form of {sent}");
        let mut d = draft(&c, "with metadata");
        d.metadata = Some(meta);
        d.created_at = at(i as i64);
        let m = ok(store.append_message(d).await, "append_message");
        assert_eq!(
            m.metadata.as_ref().map(Metadata::as_str),
            Some(kept.as_str()),
            "append_message must answer the metadata as given"
        );
        written.push(m);
    }
    for m in &written {
        let read = ok(store.get_message(m.id).await, "get_message").expect("the message");
        assert_eq!(
            read.metadata.as_ref().map(Metadata::as_str),
            m.metadata.as_ref().map(Metadata::as_str),
            "get_message must give the metadata back byte for byte"
        );
    }
    let listed = ok(
        store
            .list_messages(c.id, MessageOrder::default(), Limit::MAX)
            .await,
        "list_messages",
    );
    let texts = |ms: &[Message]| -> Vec<Option<String>> {
        ms.iter()
            .map(|m| m.metadata.as_ref().map(|meta| meta.as_str().to_owned()))
            .collect()
    };
    assert_eq!(
        texts(&listed),
        texts(&written),
        "list_messages must give the metadata back byte for byte"
    );
    // The message serializes with its metadata verbatim.
    let json = serde_json::to_string(&listed[1]).expect("a message serializes");
    assert!(
        json.contains(&format!(r#""metadata":{}"#, cases[1].1)),
        "a message's JSON must carry its metadata verbatim: {json}"
    );
}

/// An object of exactly [`Metadata::MAX_BYTES`], keys in descending order, numbers in
/// assorted spellings.
fn largest_object() -> String {
    let mut text = String::from("{");
    for i in (0..600).rev() {
        text.push_str(&format!(r#""k{i:03}":{i}.50E-{}0,"#, i % 7));
    }
    let pad = Metadata::MAX_BYTES - text.len() - r#""pad":""}"#.len();
    text.push_str(&format!(
        r#""pad":"{}"}}"#,
        "\\u00e9".repeat(pad / 6) + &"x".repeat(pad % 6)
    ));
    assert_eq!(text.len(), Metadata::MAX_BYTES);
    text
}
