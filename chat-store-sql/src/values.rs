//! Moving values between the model and the database, and the errors of doing so: counts,
//! pages, roles, metadata and times as each database holds them.

use chat_core::{Error, Limit, MessageOrder, Metadata, Result, Role};
use uuid::Uuid;

/// A value read back from the database that the model cannot hold, such as a negative
/// count: a sign of a database edited by hand or by a broken program.
#[derive(Debug, thiserror::Error)]
#[error("the database holds a value this program cannot read: {0}")]
pub(crate) struct Corrupt(pub(crate) String);

/// A value given to the store that the database cannot hold.
#[derive(Debug, thiserror::Error)]
#[error("a value is out of the database's range: {0}")]
pub(crate) struct OutOfRange(pub(crate) &'static str);

/// A count or `seq` from the model as the database's signed 64-bit integer.
pub(crate) fn to_i64(backend: &'static str, value: u64, what: &'static str) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::backend(backend, OutOfRange(what)))
}

/// A count or `seq` read back from the database.
pub(crate) fn to_u64(backend: &'static str, value: i64, what: &str) -> Result<u64> {
    u64::try_from(value)
        .map_err(|_| Error::backend(backend, Corrupt(format!("{what} is negative ({value})"))))
}

pub(crate) fn limit(limit: Limit) -> i64 {
    // A Limit is at most 1000, so this never saturates.
    i64::try_from(limit.get()).unwrap_or(i64::MAX)
}

/// A page of messages as SQL bounds: `Some((ascending, bound))`, with the bound exclusive,
/// or `None` when the page is empty whatever is stored.
///
/// `seq` starts at 1 and stays far below `i64::MAX`, so 0 and `i64::MAX` stand for "no
/// cursor" and one query shape serves both cases; a cursor beyond `i64::MAX` is a position
/// past every stored message.
pub(crate) fn seq_bounds(order: MessageOrder) -> Option<(bool, i64)> {
    match order {
        MessageOrder::Ascending { after: None } => Some((true, 0)),
        MessageOrder::Ascending { after: Some(after) } => match i64::try_from(after) {
            Ok(after) if after < i64::MAX => Some((true, after)),
            _ => None,
        },
        MessageOrder::Descending { before } => Some((
            false,
            before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX)),
        )),
    }
}

pub(crate) fn role(backend: &'static str, text: &str) -> Result<Role> {
    text.parse()
        .map_err(|_| Error::backend(backend, Corrupt(format!("unknown role {text:?}"))))
}

/// Metadata as the JSON text kept in the database: the compact text the client sent
/// ([`Metadata::as_str`]). Kept as text, never in a binary form (PostgreSQL's `json`, not
/// `jsonb`), so that key order, number spellings and string escapes read back as they went
/// in.
pub(crate) fn metadata_to_text(metadata: Option<&Metadata>) -> Option<&str> {
    metadata.map(Metadata::as_str)
}

/// Metadata read back; rows written before metadata was kept as sent hold serde_json's
/// compact text of the object, which reads back just the same.
pub(crate) fn metadata_from_text(
    backend: &'static str,
    text: Option<String>,
) -> Result<Option<Metadata>> {
    text.map(|t| Metadata::from_stored(t).map_err(|e| Error::backend(backend, e)))
        .transpose()
}

/// A time from SQLite's INTEGER microseconds.
#[cfg(feature = "sqlite")]
pub(crate) fn from_micros(
    backend: &'static str,
    micros: i64,
) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_micros(micros).ok_or_else(|| {
        Error::backend(
            backend,
            Corrupt(format!("timestamp {micros} µs is out of range")),
        )
    })
}

#[cfg(feature = "sqlite")]
pub(crate) fn to_micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

/// An id as the `Uuid` both drivers bind.
pub(crate) fn uuid<T: Into<Uuid>>(id: T) -> Uuid {
    id.into()
}
