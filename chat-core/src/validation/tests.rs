//! Every validation boundary: just inside, just outside, unicode, control characters.

use super::*;
use proptest::prelude::*;

fn field_of<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
    r.expect_err("should be rejected").field
}

#[test]
fn title_boundaries() {
    assert!(Title::parse(&"a".repeat(200)).is_ok());
    assert_eq!(field_of(Title::parse(&"a".repeat(201))), "title");
    // 200 characters of four bytes each are still 200 characters.
    assert!(Title::parse(&"𝄞".repeat(200)).is_ok());
    assert!(Title::parse(&"𝄞".repeat(201)).is_err());
    assert!(Title::parse("").is_err());
    assert!(Title::parse(" \t ").is_err());
    assert_eq!(Title::parse("  x  ").unwrap().as_str(), "x");
    // Whitespace trimmed before counting.
    assert!(Title::parse(&format!("  {}  ", "a".repeat(200))).is_ok());
    assert_eq!(
        Title::parse("a\nb").unwrap_err().rule,
        Rule::NoControlCharacters
    );
    assert!(Title::parse("a\u{7f}b").is_err());
    assert!(Title::parse("a\u{0}b").is_err());
    assert!(Title::parse("a\u{85}b").is_err(), "C1 controls are Cc too");
    assert!(Title::parse("Ünïcödé 会話 🙂").is_ok());
}

#[test]
fn content_boundaries() {
    assert!(Content::parse("x").is_ok());
    assert_eq!(field_of(Content::parse("")), "content");
    assert!(Content::parse(&"a".repeat(256 * 1024)).is_ok());
    assert!(Content::parse(&"a".repeat(256 * 1024 + 1)).is_err());
    // The limit counts bytes: 256 KiB of 2-byte characters is half as many characters.
    assert!(Content::parse(&"é".repeat(128 * 1024)).is_ok());
    assert!(Content::parse(&format!("{}a", "é".repeat(128 * 1024))).is_err());
    assert!(Content::parse("line one\nline two\ttabbed\r\n").is_ok());
    assert_eq!(
        Content::parse("a\0b").unwrap_err().rule,
        Rule::NoNulCharacter
    );
    assert!(Content::parse_with_limit("abcd", 4).is_ok());
    assert!(Content::parse_with_limit("abcde", 4).is_err());
    assert_eq!(
        Content::parse_with_limit("abcde", 4)
            .unwrap_err()
            .to_string(),
        "content must be 1 to 4 bytes"
    );
}

#[test]
fn metadata_boundaries() {
    use serde_json::json;
    assert!(Metadata::parse(json!({})).is_ok());
    assert!(Metadata::parse(json!({"model": "x", "n": [1, 2, {"deep": null}]})).is_ok());
    for not_object in [json!(null), json!([]), json!("s"), json!(1), json!(true)] {
        assert_eq!(
            Metadata::parse(not_object).unwrap_err().rule,
            Rule::JsonObject
        );
    }
    // {"k":"…"} is 8 bytes of framing around the string.
    let fits = json!({ "k": "a".repeat(Metadata::MAX_BYTES - 8) });
    assert_eq!(
        serde_json::to_vec(&fits).unwrap().len(),
        Metadata::MAX_BYTES
    );
    assert!(Metadata::parse(fits).is_ok());
    let over = json!({ "k": "a".repeat(Metadata::MAX_BYTES - 7) });
    assert_eq!(field_of(Metadata::parse(over)), "metadata");
    assert!(Metadata::parse(json!({"a": "x\u{0}y"})).is_err());
    assert!(Metadata::parse(json!({"a\u{0}": 1})).is_err());
    assert!(Metadata::parse(json!({"a": ["\u{0}"]})).is_err());
}

#[test]
fn metadata_is_kept_as_sent() {
    let kept = |sent: &str| Metadata::parse_json(sent).unwrap().as_str().to_owned();
    // Key order, number spellings and string escapes are the client's.
    let exact = r#"{"z":1E2,"y":1.0,"x":-0,"w":123456789012345678901234567890,"v":1e400,"u":"\u00e9\uD83D\uDE00","t":{"b":[],"a":{}}}"#;
    assert_eq!(kept(exact), exact);
    // Whitespace outside strings goes; inside them it stays.
    assert_eq!(
        kept(" {\n\t\"a b\" : [ 1 ,\r\n 2 ] , \"c\" : \" \\\" \" } "),
        r#"{"a b":[1,2],"c":" \" "}"#
    );
    // What a Value already lost stays lost: its keys come sorted.
    assert_eq!(
        Metadata::parse(serde_json::json!({"b": 1, "a": 2}))
            .unwrap()
            .as_str(),
        r#"{"a":2,"b":1}"#
    );
}

#[test]
fn metadata_rules_apply_to_the_text_as_sent() {
    let rule = |sent: &str| Metadata::parse_json(sent).unwrap_err().rule;
    for duplicate in [
        r#"{"a":1,"a":2}"#,
        r#"{"a":{"b":1,"b":1}}"#,
        r#"{"a":[{"c":1},{"c":1,"d":[{"e":1,"e":1}]}]}"#,
        r#"{"é":1,"\u00e9":2}"#,
    ] {
        assert_eq!(rule(duplicate), Rule::NoDuplicateKeys, "{duplicate}");
    }
    for not_object in [
        "[]",
        "1",
        "\"{}\"",
        "null",
        "{",
        r#"{"a":1}x"#,
        r#"{"a":"\ud800"}"#,
    ] {
        assert_eq!(rule(not_object), Rule::JsonObject, "{not_object}");
    }
    // The old nesting limit, the most serde_json parses into a value, still holds.
    let parses = |depth: usize| {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        serde_json::from_str::<serde_json::Value>(&text).is_ok()
    };
    assert!(parses(json::MAX_DEPTH) && !parses(json::MAX_DEPTH + 1));
    let nested = |depth: usize| {
        format!(
            "{{\"a\":{}{}}}",
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    };
    assert!(Metadata::parse_json(&nested(json::MAX_DEPTH)).is_ok());
    assert_eq!(rule(&nested(json::MAX_DEPTH + 1)), Rule::JsonObject);
    // U+0000 escaped anywhere, key or string.
    for nul in [
        r#"{"a":"x\u0000"}"#,
        r#"{"\u0000":1}"#,
        r#"{"a":[{"b":"\u0000"}]}"#,
    ] {
        assert_eq!(rule(nul), Rule::NoNulCharacter, "{nul}");
    }
    // The size limit counts the compact text, escapes as sent: six bytes for `\u00e9`, and
    // none for whitespace between tokens.
    let escapes = (Metadata::MAX_BYTES - 8) / 6;
    let fits =
        format!(r#"{{"k":"{}"}}"#, "\\u00e9".repeat(escapes)) + &" ".repeat(Metadata::MAX_BYTES);
    let meta = Metadata::parse_json(&fits).unwrap();
    assert_eq!(meta.as_str().len(), 8 + 6 * escapes);
    let exactly = format!(r#"{{"k":"{}"}}"#, "a".repeat(Metadata::MAX_BYTES - 8));
    assert!(Metadata::parse_json(&exactly).is_ok());
    let over = format!(r#"{{"k":"{}"}}"#, "\\u00e9".repeat(Metadata::MAX_BYTES / 6));
    assert!(matches!(rule(&over), Rule::Length { .. }));
}

#[test]
fn metadata_serializes_verbatim_and_reads_back_checked() {
    let meta = Metadata::parse_json(r#"{"b":1E2,"a":"\u00e9"}"#).unwrap();
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Holder {
        metadata: Option<Metadata>,
    }
    let text = serde_json::to_string(&Holder {
        metadata: Some(meta.clone()),
    })
    .unwrap();
    assert_eq!(text, r#"{"metadata":{"b":1E2,"a":"\u00e9"}}"#);
    let back: Holder = serde_json::from_str(&text).unwrap();
    assert_eq!(back.metadata, Some(meta));
    assert!(serde_json::from_str::<Holder>(r#"{"metadata":{"a":1,"a":2}}"#).is_err());
    assert!(serde_json::from_str::<Holder>(r#"{"metadata":[1]}"#).is_err());
    // What a store kept is taken back as long as it is an object's text.
    assert_eq!(
        Metadata::from_stored(r#"{"b":1,"a":2}"#.into())
            .unwrap()
            .as_str(),
        r#"{"b":1,"a":2}"#
    );
    for corrupt in ["[1]", "{", "", "\"x\""] {
        assert!(Metadata::from_stored(corrupt.into()).is_err(), "{corrupt}");
    }
}

#[test]
fn file_type_and_path_boundaries() {
    assert!(FileType::parse("image/png").is_ok());
    assert!(FileType::parse(&"t".repeat(127)).is_ok());
    assert!(FileType::parse(&"t".repeat(128)).is_err());
    assert!(FileType::parse("").is_err());
    assert_eq!(
        FileType::parse("text plain").unwrap_err().rule,
        Rule::NoWhitespace
    );
    assert!(
        FileType::parse("text\u{a0}plain").is_err(),
        "no-break space is whitespace"
    );
    assert!(FileType::parse("a\tb").is_err());

    assert!(FilePath::parse("/files/a b.png").is_ok());
    assert!(FilePath::parse("https://cdn.example/x?y=1").is_ok());
    assert!(FilePath::parse(&"p".repeat(4096)).is_ok());
    assert!(FilePath::parse(&"p".repeat(4097)).is_err());
    assert!(FilePath::parse(&"é".repeat(2048)).is_ok());
    assert!(FilePath::parse(&format!("{}a", "é".repeat(2048))).is_err());
    assert_eq!(field_of(FilePath::parse("")), "file_path");
    assert!(FilePath::parse("a\nb").is_err());
}

#[test]
fn provider_boundaries() {
    assert!(ProviderName::parse(&"n".repeat(100)).is_ok());
    assert!(ProviderName::parse(&"n".repeat(101)).is_err());
    assert_eq!(ProviderName::parse("  OpenAI ").unwrap().as_str(), "OpenAI");
    assert_eq!(field_of(ProviderName::parse("  ")), "name");
    assert!(ProviderName::parse("a\u{1b}b").is_err());
    assert_eq!(provider_name_key("ÄBC"), "äbc");

    for ok in [
        "http://x",
        "https://api.openai.com/v1",
        "http://127.0.0.1:8080/a?b=c#d",
        "HTTPS://EXAMPLE.COM",
    ] {
        assert!(ApiEndpoint::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "ftp://x",
        "api.openai.com",
        "/v1",
        "https://",
        "http:/x",
        "mailto:a@b",
        "https://a b.com",
        "javascript:alert(1)",
    ] {
        assert_eq!(field_of(ApiEndpoint::parse(bad)), "api_endpoint", "{bad}");
    }
    let long = format!("https://e.com/{}", "a".repeat(2048 - 14));
    assert_eq!(long.len(), 2048);
    assert!(ApiEndpoint::parse(&long).is_ok());
    assert!(ApiEndpoint::parse(&format!("{long}a")).is_err());
}

#[test]
fn account_boundaries() {
    assert!(Username::parse("abc").is_ok());
    assert!(Username::parse("ab").is_err());
    assert!(Username::parse(&"u".repeat(64)).is_ok());
    assert!(Username::parse(&"u".repeat(65)).is_err());
    assert!(Username::parse("a.b-c_D9").is_ok());
    assert_eq!(Username::parse("añb").unwrap_err().field, "username");
    assert!(Username::parse("a b").is_err());
    assert!(Username::parse("ab@").is_err());
    assert_eq!(Username::parse("AdA").unwrap().key(), "ada");

    assert!(Password::parse(&"p".repeat(8)).is_ok());
    assert!(Password::parse(&"p".repeat(7)).is_err());
    assert!(Password::parse(&"p".repeat(1024)).is_ok());
    assert!(Password::parse(&"p".repeat(1025)).is_err());
    assert!(Password::parse("пароль-пароль").is_ok());
    assert_eq!(
        format!("{:?}", Password::parse("secret-secret").unwrap()),
        "Password(<redacted>)"
    );

    assert!(Email::parse("a@b").is_ok());
    assert!(Email::parse("ada.lovelace+x@example.co.uk").is_ok());
    for bad in [
        "", "ab", "@b.c", "a@", "a@@b", "a@b@c", "a b@c", "a@b\u{0}", "a@b\n",
    ] {
        assert_eq!(field_of(Email::parse(bad)), "email", "{bad:?}");
    }
    let local = "l".repeat(64);
    let email = format!("{local}@{}", "d".repeat(254 - 65));
    assert_eq!(email.len(), 254);
    assert!(Email::parse(&email).is_ok());
    assert!(Email::parse(&format!("{email}d")).is_err());
}

#[test]
fn api_key_boundaries_and_hint() {
    assert!(ApiKey::parse("k").is_ok());
    assert!(ApiKey::parse("").is_err());
    assert!(ApiKey::parse(&"k".repeat(4096)).is_ok());
    assert!(ApiKey::parse(&"k".repeat(4097)).is_err());
    assert_eq!(
        ApiKey::parse("sk 123").unwrap_err().rule,
        Rule::NoWhitespace
    );
    assert!(ApiKey::parse("sk\u{7}123").is_err());

    assert_eq!(ApiKey::parse("12345678901").unwrap().hint(), None);
    assert_eq!(
        ApiKey::parse("123456789012").unwrap().hint().as_deref(),
        Some("…9012")
    );
    assert_eq!(
        ApiKey::parse("ключ-ключ-ключ").unwrap().hint().as_deref(),
        Some("…ключ")
    );
}

#[test]
fn limits() {
    assert_eq!(Limit::parse("1").unwrap().get(), 1);
    assert_eq!(Limit::parse("1000").unwrap().get(), 1000);
    for bad in [
        "0",
        "1001",
        "",
        "-1",
        "+5",
        "1.0",
        "abc",
        " 5",
        "99999999999999999999999",
    ] {
        assert_eq!(field_of(Limit::parse(bad)), "limit", "{bad:?}");
    }
    assert_eq!(Limit::default().get(), 100);
}

#[test]
fn rejections_say_what_is_allowed() {
    assert_eq!(
        Title::parse("").unwrap_err().to_string(),
        "title must be 1 to 200 characters"
    );
    assert_eq!(
        "robot".parse::<crate::Role>().unwrap_err().to_string(),
        "role must be one of: system, user, assistant, tool"
    );
    assert_eq!(
        Limit::parse("0").unwrap_err().to_string(),
        "limit must be a whole number from 1 to 1000"
    );
}

proptest! {
    // No string makes a validator panic, and every rejection names its own field.
    #[test]
    fn validators_never_panic(s in any::<String>()) {
        let checks: [(&str, Option<&'static str>); 12] = [
            ("title", Title::parse(&s).err().map(|e| e.field)),
            ("content", Content::parse(&s).err().map(|e| e.field)),
            ("file_type", FileType::parse(&s).err().map(|e| e.field)),
            ("file_path", FilePath::parse(&s).err().map(|e| e.field)),
            ("name", ProviderName::parse(&s).err().map(|e| e.field)),
            ("api_endpoint", ApiEndpoint::parse(&s).err().map(|e| e.field)),
            ("username", Username::parse(&s).err().map(|e| e.field)),
            ("password", Password::parse(&s).err().map(|e| e.field)),
            ("email", Email::parse(&s).err().map(|e| e.field)),
            ("api_key", ApiKey::parse(&s).err().map(|e| e.field)),
            ("limit", Limit::parse(&s).err().map(|e| e.field)),
            ("role", s.parse::<crate::Role>().err().map(|e| e.field)),
        ];
        for (field, rejected) in checks {
            if let Some(named) = rejected {
                prop_assert_eq!(named, field);
            }
        }
    }

    // Whatever a validator accepts is within its limits.
    #[test]
    fn accepted_titles_keep_the_rules(s in "\\PC{0,250}") {
        if let Ok(title) = Title::parse(&s) {
            let n = title.as_str().chars().count();
            prop_assert!((1..=200).contains(&n));
            prop_assert!(!title.as_str().chars().any(char::is_control));
            prop_assert_eq!(title.as_str(), title.as_str().trim());
        }
    }

    #[test]
    fn metadata_never_panics(value in arbitrary_json()) {
        if let Ok(meta) = Metadata::parse(value) {
            prop_assert!(meta.as_str().len() <= Metadata::MAX_BYTES);
        }
    }
}

/// Any JSON value, a few levels deep; also the values of the JSON text tests.
pub(super) fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
