//! The walk over JSON text: duplicate keys at every depth, U+0000, nesting, compaction.

use super::*;
use crate::validation::tests::arbitrary_json;
use proptest::prelude::*;

fn duplicate(text: &str) -> (String, Option<String>, usize) {
    match check(text) {
        Err(JsonTextError::DuplicateKey { key, member, depth }) => (key, member, depth),
        other => panic!("{text}: expected a duplicate key, got {other:?}"),
    }
}

#[test]
fn duplicate_keys_at_every_depth_name_the_outermost_member() {
    let member = |m: &str| Some(m.to_owned());
    assert_eq!(duplicate(r#"{"a":1,"a":2}"#), ("a".into(), member("a"), 1));
    assert_eq!(
        duplicate(r#"{"x":0, "a":1 , "a" :1}"#),
        ("a".into(), member("a"), 1)
    );
    assert_eq!(
        duplicate(r#"{"x":0,"meta":{"k":{"deep":1,"deep":1}}}"#),
        ("deep".into(), member("meta"), 3)
    );
    assert_eq!(
        duplicate(r#"{"list":[1,{"a":1},{"b":[{"c":1,"c":2}]}]}"#),
        ("c".into(), member("list"), 5)
    );
    assert_eq!(
        duplicate(r#"{"a":{"a":1,"a":2}}"#),
        ("a".into(), member("a"), 2)
    );
    // Equal after unescaping is equal.
    assert_eq!(
        duplicate(r#"{"é":1,"\u00e9":2}"#),
        ("é".into(), member("é"), 1)
    );
    assert_eq!(
        duplicate(r#"{"a/b":1,"a\/b":2}"#),
        ("a/b".into(), member("a/b"), 1)
    );
    // Not inside an object: no member to name.
    assert_eq!(duplicate(r#"[{"a":1,"a":1}]"#), ("a".into(), None, 2));
}

#[test]
fn the_same_key_in_different_objects_is_no_duplicate() {
    for text in [
        r#"{"a":{"a":{"a":1}}}"#,
        r#"[{"a":1},{"a":2}]"#,
        r#"{"a":[{"a":1},{"a":2}],"b":{"a":3}}"#,
        r#"{"a":"a","b":["a","a"]}"#,
        r#"{"A":1,"a":2,"a ":3}"#,
        r#"{"":1,"\"":2,"\\":3}"#,
    ] {
        assert!(check(text).is_ok(), "{text}");
    }
}

#[test]
fn facts() {
    let facts = |text| check(text).unwrap();
    assert!(facts(" \n{}").is_object);
    for not_object in ["[]", "\"{}\"", "1", "null", "true"] {
        assert!(!facts(not_object).is_object, "{not_object}");
    }
    assert!(
        !facts(r#"{"a":"\\u0000"}"#).contains_nul,
        "an escaped backslash"
    );
    for nul in [
        r#"{"a":"x\u0000"}"#,
        r#"{"\u0000":1}"#,
        r#"{"a":[["\u0000"]]}"#,
    ] {
        assert!(facts(nul).contains_nul, "{nul}");
    }
}

#[test]
fn numbers_are_never_converted() {
    for text in [
        r#"{"n":1e400}"#,
        r#"{"n":-1E-400}"#,
        r#"{"n":123456789012345678901234567890}"#,
        r#"{"n":-0,"m":1.0,"o":1E2}"#,
    ] {
        assert!(check(text).is_ok(), "{text}");
    }
}

#[test]
fn malformed_text_is_refused() {
    for text in [
        "",
        " ",
        "{",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        "tru e",
        "1 2",
        "{} {}",
        r#"{"a":"x"#,
        "{\"a\":\"\t\"}",
        r#"{"a":"\x"}"#,
        r#"{a:1}"#,
        "[1,]",
        "NaN",
        "01",
    ] {
        assert!(
            matches!(check(text), Err(JsonTextError::Malformed(_))),
            "{text:?}"
        );
    }
    for lone in [r#"{"a":"\ud800"}"#, r#"{"\udc00":1}"#, r#"["\ud83dx"]"#] {
        assert!(
            matches!(check(lone), Err(JsonTextError::LoneSurrogate(_))),
            "{lone}"
        );
    }
    assert!(
        check(r#"{"a":"\ud83d\ude00"}"#).is_ok(),
        "a pair is a character"
    );
}

#[test]
fn nesting_is_limited() {
    let nested = |depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(check(&nested(MAX_DEPTH)).is_ok());
    assert!(matches!(
        check(&nested(MAX_DEPTH + 1)),
        Err(JsonTextError::TooDeep)
    ));
    // Far deeper than a recursive parser's stack would survive.
    assert!(matches!(
        check(&nested(500_000)),
        Err(JsonTextError::TooDeep)
    ));
    let objects = format!(
        "{}1{}",
        r#"{"a":"#.repeat(MAX_DEPTH + 1),
        "}".repeat(MAX_DEPTH + 1)
    );
    assert!(matches!(check(&objects), Err(JsonTextError::TooDeep)));
}

#[test]
fn compact_removes_only_whitespace_outside_strings() {
    assert_eq!(compact(r#"{"a":1}"#), r#"{"a":1}"#);
    assert!(matches!(compact(r#"{"a":1}"#), Cow::Borrowed(_)));
    assert_eq!(
        compact(
            " {\r\n\t\"a b\" : [ 1E2 , -0 , 1.0 ] ,\"q\\\" \" : \"\\\\\" , \"e\":\"\\u00e9 \" } "
        ),
        r#"{"a b":[1E2,-0,1.0],"q\" ":"\\","e":"\u00e9 "}"#
    );
    // Other Unicode spaces are not JSON whitespace; inside strings they stay anyway.
    assert_eq!(
        compact("{\"\u{a0}\": \"\u{2028}\"}"),
        "{\"\u{a0}\":\"\u{2028}\"}"
    );
}

proptest! {
    // Pretty-printed or not, the compact form of a value is serde_json's compact output, and
    // what serde_json writes from a map never has a duplicate.
    #[test]
    fn compact_undoes_pretty_printing(value in arbitrary_json()) {
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let plain = serde_json::to_string(&value).unwrap();
        prop_assert!(check(&pretty).is_ok());
        prop_assert_eq!(compact(&pretty), plain.as_str());
    }

    // Any text at all: an answer, never a panic; the compact form of accepted text is
    // accepted alike and is its own compact form.
    #[test]
    fn never_panics(text in "[{}\\[\\]\",:\\\\ u0-9a-f\u{e9}]{0,40}") {
        if let Ok(facts) = check(&text) {
            let compacted = compact(&text);
            prop_assert_eq!(check(&compacted).ok(), Some(facts));
            prop_assert_eq!(compact(&compacted), compacted.as_ref());
        }
    }
}
