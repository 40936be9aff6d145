//! JSON text kept as it was sent.
//!
//! serde_json checks the syntax, but two things of the HTTP contract are not its to say: an
//! object with the same key twice is ambiguous (serde_json keeps the last one silently), and
//! a value stored "as sent" must keep its spelling, which parsing into a
//! [`serde_json::Value`] loses (key order, `1E2`, a 30-digit integer, `"\u00e9"`).
//! [`check`] adds the first, [`compact`] gives the second its canonical form: the text with
//! the whitespace outside strings removed and every other byte as it was.
//!
//! Both work on the text itself, without building a tree, so a number is never converted
//! (`1e400` is as good as `1`) and the cost is one pass over the text.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::de::IgnoredAny;

/// How deeply arrays and objects may nest: the most serde_json accepts when it builds values
/// (its recursion limit), kept for text that is never built into one.
pub const MAX_DEPTH: usize = 127;

/// Why a JSON text was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonTextError {
    /// Not JSON: serde_json's reason, with a line and column of the text.
    #[error("malformed JSON: {0}")]
    Malformed(#[source] serde_json::Error),
    /// A string holds a `\u` escape of half a surrogate pair, which is no character.
    #[error("malformed JSON: a string holds an unpaired surrogate escape")]
    LoneSurrogate(#[source] serde_json::Error),
    /// Arrays and objects nest deeper than [`MAX_DEPTH`].
    #[error("malformed JSON: arrays and objects nest deeper than {MAX_DEPTH}")]
    TooDeep,
    /// One object has the same key twice, the keys compared after unescaping.
    #[error("the key {key:?} appears twice in one object")]
    DuplicateKey {
        /// The key that appears twice, unescaped.
        key: String,
        /// The key of the outermost object's member that holds the duplicate or is the
        /// duplicate itself; `None` when the text is not an object.
        member: Option<String>,
        /// How deep the object with the duplicate is: 1 for the outermost value.
        depth: usize,
    },
}

/// What [`check`] learnt about a JSON text it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonFacts {
    /// The text is an object (rather than an array, a string, a number or a literal).
    pub is_object: bool,
    /// Some string or key holds U+0000 (escaped, since JSON strings cannot hold it raw).
    pub contains_nul: bool,
}

/// Checks that `text` is one JSON value with no object holding the same key twice, at any
/// depth, and nesting at most [`MAX_DEPTH`] deep.
///
/// ```
/// use chat_core::validation::json::{JsonTextError, check};
/// assert!(check(r#"{"a": {"b": 1, "c": 1e400}}"#).unwrap().is_object);
/// let Err(JsonTextError::DuplicateKey { key, member, depth }) =
///     check(r#"{"a": [{"b": 1, "\u0062": 2}]}"#)
/// else {
///     panic!("a duplicate")
/// };
/// assert_eq!((key.as_str(), member.as_deref(), depth), ("b", Some("a"), 3));
/// ```
pub fn check(text: &str) -> Result<JsonFacts, JsonTextError> {
    // serde_json's skipping parse checks the syntax (escapes, control characters, trailing
    // text) without converting numbers; the walk below may then rely on well-formed text.
    serde_json::from_str::<IgnoredAny>(text).map_err(JsonTextError::Malformed)?;
    walk(text)
}

/// `text`, which must be well-formed JSON (as [`check`] accepts), without the whitespace
/// outside its strings: the canonical form in which a value is kept as sent.
///
/// ```
/// use chat_core::validation::json::compact;
/// assert_eq!(compact("{ \"a b\" : [1E2 ,\n -0] }"), r#"{"a b":[1E2,-0]}"#);
/// ```
#[must_use]
pub fn compact(text: &str) -> Cow<'_, str> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    if !text.as_bytes().iter().any(is_space) {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in text.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if is_space(&b) {
            continue;
        } else if b == b'"' {
            in_string = true;
        }
        out.push(b);
    }
    // Only ASCII bytes were left out, so what remains is still UTF-8.
    Cow::Owned(String::from_utf8(out).expect("removing ASCII bytes keeps UTF-8"))
}

/// The walk of [`check`] over text serde_json has found well-formed: every string is read
/// (keys compared, U+0000 noticed), everything else skipped byte by byte.
fn walk(text: &str) -> Result<JsonFacts, JsonTextError> {
    let bytes = text.as_bytes();
    // One entry per open container: the keys seen so far in an object, `None` in an array.
    let mut open: Vec<Option<HashSet<Cow<'_, str>>>> = Vec::new();
    let mut facts = JsonFacts {
        is_object: text.trim_start().starts_with('{'),
        contains_nul: false,
    };
    let mut member: Option<String> = None;
    let mut expecting_key = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => {
                if open.len() == MAX_DEPTH {
                    return Err(JsonTextError::TooDeep);
                }
                expecting_key = bytes[i] == b'{';
                open.push(expecting_key.then(HashSet::new));
            }
            b'}' | b']' => {
                open.pop();
            }
            b',' => expecting_key = matches!(open.last(), Some(Some(_))),
            b'"' => {
                let end = string_end(bytes, i);
                let s = unescape(&text[i..end])?;
                facts.contains_nul |= s.contains('\0');
                if expecting_key {
                    expecting_key = false;
                    if open.len() == 1 {
                        member = Some(s.clone().into_owned());
                    }
                    if let Some(Some(keys)) = open.last_mut() {
                        if keys.contains(&s) {
                            return Err(JsonTextError::DuplicateKey {
                                key: s.into_owned(),
                                member,
                                depth: open.len(),
                            });
                        }
                        keys.insert(s);
                    }
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(facts)
}

/// The index just past the string that starts with the quote at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The value of a string token, quotes included: borrowed when it has no escapes.
fn unescape(token: &str) -> Result<Cow<'_, str>, JsonTextError> {
    if !token.contains('\\') {
        return Ok(Cow::Borrowed(&token[1..token.len() - 1]));
    }
    // serde_json's skipping parse lets `\ud800` through; reading the string does not.
    serde_json::from_str::<String>(token)
        .map(Cow::Owned)
        .map_err(JsonTextError::LoneSurrogate)
}

#[cfg(test)]
mod tests;
