//! Validated input values.
//!
//! Each type here can only be built through its `parse` function, which applies the limits of
//! the HTTP contract. A value of one of these types is therefore known to be valid, and the
//! `New…` input types (such as [`NewMessage`](crate::NewMessage)) are made of them.
//!
//! Lengths in characters count Unicode scalar values; lengths in bytes count UTF-8 bytes.
//! "Control characters" are Unicode category Cc, which includes newline and tab.

use std::fmt;

use serde::Serialize;
use zeroize::Zeroizing;

pub mod json;

/// Why an input was rejected: which field, and what the field allows.
///
/// Its `Display` is a sentence for a client: `"title must be 1 to 200 characters"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct ValidationError {
    /// The name of the input field at fault, as the HTTP contract spells it.
    pub field: &'static str,
    /// What the field allows.
    pub rule: Rule,
}

impl ValidationError {
    /// A rejection of `field` for breaking `rule`.
    #[must_use]
    pub const fn new(field: &'static str, rule: Rule) -> Self {
        Self { field, rule }
    }
}

/// The unit of a length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Unicode scalar values.
    Characters,
    /// UTF-8 bytes.
    Bytes,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Characters => "characters",
            Unit::Bytes => "bytes",
        })
    }
}

/// A rule that an input field must keep. `Display` completes the sentence "`field` …".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// The field must be present (and not `null`).
    Required,
    /// The length must lie in `min..=max` of `unit`.
    Length {
        /// Smallest allowed length.
        min: usize,
        /// Largest allowed length.
        max: usize,
        /// What is counted.
        unit: Unit,
    },
    /// No Unicode control characters (category Cc, newline and tab included).
    NoControlCharacters,
    /// No U+0000, which PostgreSQL cannot store.
    NoNulCharacter,
    /// No whitespace anywhere.
    NoWhitespace,
    /// Only the characters described.
    Charset(&'static str),
    /// One of the listed words.
    OneOf(&'static [&'static str]),
    /// An email address: one `@`, something on both sides, no whitespace.
    Email,
    /// An absolute `http` or `https` URL.
    HttpUrl,
    /// A JSON object.
    JsonObject,
    /// No object with the same key twice, at any depth.
    NoDuplicateKeys,
    /// A UUID in the lower-case hyphenated form.
    Uuid,
    /// A whole number within `min..=max`.
    Range {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A rule described by its sentence, for the rare check that has no variant of its own.
    Other(&'static str),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Required => f.write_str("is required"),
            Rule::Length { min, max, unit } => write!(f, "must be {min} to {max} {unit}"),
            Rule::NoControlCharacters => f.write_str("must not contain control characters"),
            Rule::NoNulCharacter => f.write_str("must not contain U+0000"),
            Rule::NoWhitespace => f.write_str("must not contain whitespace"),
            Rule::Charset(allowed) => write!(f, "may contain only {allowed}"),
            Rule::OneOf(words) => write!(f, "must be one of: {}", words.join(", ")),
            Rule::Email => f.write_str(
                "must be an email address: one @ with text on both sides, no whitespace",
            ),
            Rule::HttpUrl => f.write_str("must be an absolute http or https URL"),
            Rule::JsonObject => f.write_str("must be a JSON object"),
            Rule::NoDuplicateKeys => f.write_str("must not hold an object with the same key twice"),
            Rule::Uuid => f.write_str(
                "must be a UUID in the lower-case hyphenated form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
            ),
            Rule::Range { min, max } => write!(f, "must be a whole number from {min} to {max}"),
            Rule::Other(sentence) => f.write_str(sentence),
        }
    }
}

type Result<T> = std::result::Result<T, ValidationError>;

fn check_chars(field: &'static str, s: &str, min: usize, max: usize) -> Result<()> {
    // Counting stops early so a huge input costs no more than the limit.
    let count = s.chars().take(max + 1).count();
    if count < min || count > max {
        return Err(ValidationError::new(
            field,
            Rule::Length {
                min,
                max,
                unit: Unit::Characters,
            },
        ));
    }
    Ok(())
}

fn check_bytes(field: &'static str, s: &str, min: usize, max: usize) -> Result<()> {
    if s.len() < min || s.len() > max {
        return Err(ValidationError::new(
            field,
            Rule::Length {
                min,
                max,
                unit: Unit::Bytes,
            },
        ));
    }
    Ok(())
}

fn check_no_control(field: &'static str, s: &str) -> Result<()> {
    if s.chars().any(char::is_control) {
        return Err(ValidationError::new(field, Rule::NoControlCharacters));
    }
    Ok(())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The validated text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The validated text, owned.
            #[must_use]
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// A conversation title: 1..=200 characters after trimming, no control characters.
    Title
);

impl Title {
    /// Longest title, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Trims `s` and checks it.
    ///
    /// ```
    /// use chat_core::Title;
    /// assert_eq!(Title::parse("  Trip to Lisbon ").unwrap().as_str(), "Trip to Lisbon");
    /// assert_eq!(Title::parse("   ").unwrap_err().to_string(), "title must be 1 to 200 characters");
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        check_chars("title", s, 1, Self::MAX_CHARS)?;
        check_no_control("title", s)?;
        Ok(Self(s.to_owned()))
    }
}

text_type!(
    /// A message's content: 1 byte up to a configurable limit (256 KiB by default), any text
    /// but U+0000. Newlines and tabs are welcome.
    ///
    /// [`parse`](Self::parse) and [`parse_with_limit`](Self::parse_with_limit) check it all.
    /// [`parse_any_length`](Self::parse_any_length) leaves the length to
    /// [`check_length`](Self::check_length): that is what a
    /// [`NewMessage`](crate::NewMessage) holds, so that the service alone applies the
    /// operator's limit.
    Content
);

impl Content {
    /// The default upper limit, in bytes.
    pub const DEFAULT_MAX_BYTES: usize = 256 * 1024;

    /// Checks `s` against the default limit.
    pub fn parse(s: &str) -> Result<Self> {
        Self::parse_with_limit(s, Self::DEFAULT_MAX_BYTES)
    }

    /// Checks `s` against an operator's limit of `max_bytes`.
    pub fn parse_with_limit(s: &str, max_bytes: usize) -> Result<Self> {
        check_length(s, max_bytes)?;
        Self::parse_any_length(s)
    }

    /// Checks what holds whatever the limit, that `s` has no U+0000, and leaves its length
    /// (1 byte to the limit) to [`check_length`](Self::check_length).
    ///
    /// ```
    /// use chat_core::Content;
    /// let long = Content::parse_any_length(&"x".repeat(300 * 1024)).unwrap();
    /// assert_eq!(
    ///     long.check_length(Content::DEFAULT_MAX_BYTES).unwrap_err().to_string(),
    ///     "content must be 1 to 262144 bytes"
    /// );
    /// assert!(Content::parse_any_length("a\0b").is_err());
    /// ```
    pub fn parse_any_length(s: &str) -> Result<Self> {
        if s.contains('\0') {
            return Err(ValidationError::new("content", Rule::NoNulCharacter));
        }
        Ok(Self(s.to_owned()))
    }

    /// `Ok` when the content is 1 to `max_bytes` bytes long; the error
    /// [`parse_with_limit`](Self::parse_with_limit) gives otherwise.
    pub fn check_length(&self, max_bytes: usize) -> Result<()> {
        check_length(&self.0, max_bytes)
    }
}

/// The length rule of [`Content`], in the one place both its checks share.
fn check_length(s: &str, max_bytes: usize) -> Result<()> {
    check_bytes("content", s, 1, max_bytes)
}

/// Message metadata: a JSON object, kept as the client sent it.
///
/// The canonical form is the object's text with the whitespace outside strings removed
/// ([`json::compact`]); every other byte is kept, so keys keep their order, numbers their
/// spelling (`1E2`, a 30-digit integer, `-0`) and strings their escapes (`"\u00e9"`). That
/// text is at most 16 KiB, has no object with the same key twice (at any depth, compared
/// after unescaping), no U+0000 in any key or string (escaped as `\u0000`; no text of the
/// contract holds it), and nests at most [`json::MAX_DEPTH`] deep.
///
/// It serializes as that text, verbatim, through serde_json.
///
/// ```
/// use chat_core::Metadata;
/// let meta = Metadata::parse_json(r#"{ "z": 1E2, "a": "\u00e9" }"#).unwrap();
/// assert_eq!(meta.as_str(), r#"{"z":1E2,"a":"\u00e9"}"#);
/// assert_eq!(serde_json::to_string(&meta).unwrap(), meta.as_str());
/// assert!(Metadata::parse_json(r#"{"a": {"b": 1, "b": 2}}"#).is_err());
/// ```
#[derive(Clone)]
pub struct Metadata(Box<serde_json::value::RawValue>);

impl Metadata {
    /// Largest compact text, in bytes.
    pub const MAX_BYTES: usize = 16 * 1024;

    /// Checks JSON text and keeps its compact form: the way to keep metadata as sent.
    pub fn parse_json(text: &str) -> Result<Self> {
        let invalid = |rule| ValidationError::new("metadata", rule);
        let facts = json::check(text).map_err(|e| match e {
            json::JsonTextError::DuplicateKey { .. } => invalid(Rule::NoDuplicateKeys),
            _ => invalid(Rule::JsonObject),
        })?;
        if !facts.is_object {
            return Err(invalid(Rule::JsonObject));
        }
        let compact = json::compact(text);
        if compact.len() > Self::MAX_BYTES {
            return Err(invalid(Rule::Length {
                min: 2,
                max: Self::MAX_BYTES,
                unit: Unit::Bytes,
            }));
        }
        if facts.contains_nul {
            return Err(invalid(Rule::NoNulCharacter));
        }
        let raw = serde_json::value::RawValue::from_string(compact.into_owned())
            .expect("well-formed JSON stays well-formed without its whitespace");
        Ok(Self(raw))
    }

    /// Checks a value already parsed. Parsing into a [`serde_json::Value`] has already lost
    /// the key order and the spelling of numbers, so what is kept is serde_json's compact
    /// serialization of it; use [`parse_json`](Self::parse_json) to keep what was sent.
    pub fn parse(value: serde_json::Value) -> Result<Self> {
        if !value.is_object() {
            return Err(ValidationError::new("metadata", Rule::JsonObject));
        }
        let text = serde_json::to_string(&value).expect("a JSON value always serializes");
        Self::parse_json(&text)
    }

    /// Metadata a store kept, from the text [`as_str`](Self::as_str) gave it.
    ///
    /// Checked only to be the text of a JSON object, so that nothing malformed is ever
    /// served; the limits of [`parse_json`](Self::parse_json) are for what comes in, and data
    /// accepted once stays readable.
    pub fn from_stored(text: String) -> std::result::Result<Self, serde_json::Error> {
        let raw = serde_json::value::RawValue::from_string(text)?;
        if !raw.get().starts_with('{') {
            return Err(serde::de::Error::invalid_type(
                serde::de::Unexpected::Other("JSON other than an object"),
                &"a JSON object",
            ));
        }
        Ok(Self(raw))
    }

    /// The compact text of the object.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The compact text of the object, as serde_json's raw value.
    #[must_use]
    pub fn as_raw(&self) -> &serde_json::value::RawValue {
        &self.0
    }
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Metadata {}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Metadata").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Metadata {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Reads the JSON text of an object and checks it as [`Metadata::parse_json`] does; only
/// serde_json's deserializers can hand over the text.
impl<'de> serde::Deserialize<'de> for Metadata {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let raw =
            <Box<serde_json::value::RawValue> as serde::Deserialize>::deserialize(deserializer)?;
        Self::parse_json(raw.get()).map_err(serde::de::Error::custom)
    }
}

text_type!(
    /// An attachment's type: a media type or short token (`image/png`, `pdf`), 1..=127
    /// characters, no whitespace or control characters.
    FileType
);

impl FileType {
    /// Checks `s`.
    pub fn parse(s: &str) -> Result<Self> {
        check_chars("file_type", s, 1, 127)?;
        check_no_control("file_type", s)?;
        if s.chars().any(char::is_whitespace) {
            return Err(ValidationError::new("file_type", Rule::NoWhitespace));
        }
        Ok(Self(s.to_owned()))
    }
}

text_type!(
    /// Where an attachment's file lives, as the client names it (a path or URL that the
    /// server never opens): 1..=4096 bytes, no control characters.
    FilePath
);

impl FilePath {
    /// Checks `s`.
    pub fn parse(s: &str) -> Result<Self> {
        check_bytes("file_path", s, 1, 4096)?;
        check_no_control("file_path", s)?;
        Ok(Self(s.to_owned()))
    }
}

text_type!(
    /// An LLM provider's name: 1..=100 characters after trimming, no control characters.
    ProviderName
);

impl ProviderName {
    /// Trims `s` and checks it.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        check_chars("name", s, 1, 100)?;
        check_no_control("name", s)?;
        Ok(Self(s.to_owned()))
    }
}

/// The key under which provider names are unique per owner: Unicode lower case.
///
/// Stores compare this key rather than calling their database's `lower()`, whose meaning
/// differs between databases and collations.
#[must_use]
pub fn provider_name_key(name: &str) -> String {
    name.to_lowercase()
}

text_type!(
    /// An LLM provider's endpoint: an absolute `http` or `https` URL of at most 2048
    /// characters.
    ApiEndpoint
);

impl ApiEndpoint {
    /// Checks `s`.
    pub fn parse(s: &str) -> Result<Self> {
        check_chars("api_endpoint", s, 1, 2048)?;
        check_no_control("api_endpoint", s)?;
        let url =
            url::Url::parse(s).map_err(|_| ValidationError::new("api_endpoint", Rule::HttpUrl))?;
        // The WHATWG parser forgives spellings like `http:/x`; an endpoint is stored as
        // given, so it must also be spelled as an absolute URL.
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        let spelled_absolute = lower.starts_with("http://") || lower.starts_with("https://");
        if !spelled_absolute
            || !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none_or(str::is_empty)
        {
            return Err(ValidationError::new("api_endpoint", Rule::HttpUrl));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A user name: 3..=64 characters of `[A-Za-z0-9_.-]`, unique ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Checks `s`.
    pub fn parse(s: &str) -> Result<Self> {
        check_chars("username", s, 3, 64)?;
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(ValidationError::new(
                "username",
                Rule::Charset("letters A-Z and a-z, digits, '_', '.' and '-'"),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as the user chose it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key under which names are unique and matched at login: ASCII lower case.
    #[must_use]
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key under which a user name is unique, for a name read back from a store.
#[must_use]
pub fn username_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

text_type!(
    /// An email address: at most 254 characters, exactly one `@` with something on both
    /// sides, no whitespace or control characters.
    Email
);

impl Email {
    /// Checks `s`.
    pub fn parse(s: &str) -> Result<Self> {
        check_chars("email", s, 3, 254)?;
        let mut parts = s.split('@');
        let (local, domain) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let well_formed = parts.next().is_none()
            && !local.is_empty()
            && !domain.is_empty()
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if !well_formed {
            return Err(ValidationError::new("email", Rule::Email));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A password: 8..=1024 characters. Never printed; wiped from memory when dropped.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Checks `s`.
    pub fn parse(s: &str) -> Result<Self> {
        check_chars("password", s, 8, 1024)?;
        Ok(Self(Zeroizing::new(s.to_owned())))
    }

    /// The password, for hashing or verifying.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A provider API key in plain text: 1..=4096 characters, no whitespace or control
/// characters. Never printed or serialized; wiped from memory when dropped.
///
/// ```
/// use chat_core::ApiKey;
/// let key = ApiKey::parse("sk-live-0123456789abcdef").unwrap();
/// assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
/// assert_eq!(key.hint().as_deref(), Some("…cdef"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    /// Keys shorter than this get no hint: four characters of a short key say too much.
    pub const MIN_CHARS_FOR_HINT: usize = 12;

    /// Checks `s`.
    pub fn parse(s: &str) -> Result<Self> {
        check_chars("api_key", s, 1, 4096)?;
        check_no_control("api_key", s)?;
        if s.chars().any(char::is_whitespace) {
            return Err(ValidationError::new("api_key", Rule::NoWhitespace));
        }
        Ok(Self(Zeroizing::new(s.to_owned())))
    }

    /// The key in plain text, for the moment it is sent to its provider.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// `"…"` and the last four characters, for keys of at least
    /// [`MIN_CHARS_FOR_HINT`](Self::MIN_CHARS_FOR_HINT) characters; `None` for shorter ones.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        let count = self.0.chars().count();
        if count < Self::MIN_CHARS_FOR_HINT {
            return None;
        }
        let tail: String = self.0.chars().skip(count - 4).collect();
        Some(format!("…{tail}"))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// A page size: 1..=1000, 100 when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Limit(u16);

impl Limit {
    /// The largest page.
    pub const MAX: Limit = Limit(1000);
    /// The page size when a client gives none.
    pub const DEFAULT: Limit = Limit(100);

    /// Checks a page size.
    pub fn new(n: u64) -> Result<Self> {
        match u16::try_from(n) {
            Ok(n) if (1..=Self::MAX.0).contains(&n) => Ok(Self(n)),
            _ => Err(ValidationError::new(
                "limit",
                Rule::Range {
                    min: 1,
                    max: Self::MAX.0.into(),
                },
            )),
        }
    }

    /// Parses a query-string value: digits only.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::new(
                "limit",
                Rule::Range {
                    min: 1,
                    max: Self::MAX.0.into(),
                },
            ));
        }
        Self::new(s.parse().unwrap_or(u64::MAX))
    }

    /// The page size.
    #[must_use]
    pub const fn get(self) -> usize {
        self.0 as usize
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests;
