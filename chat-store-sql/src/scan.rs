//! The SQL of [`Store::scan`](chat_core::Store::scan), the same for both databases but for
//! how a parameter is written, and the mapping of its rows to records.
//!
//! Every kind is read in the order of an index (its primary key, or the unique
//! `(conversation_id, seq)` and `(user_id, provider_id)` ones), after the cursor's key by a
//! row-value comparison, so each page is one index range.

use chat_core::{Record, RecordKind, Result, ScanCursor, UserAccount};
#[cfg(feature = "postgres")]
use sqlx::query::Query;
#[cfg(feature = "postgres")]
use sqlx::{Database, Encode, Type};
use uuid::Uuid;

use crate::rows::{Columns, attachment, config, conversation, message, provider, session, user};

/// The table, the columns beyond the model's own and the key of each kind.
fn shape(kind: RecordKind) -> (&'static str, &'static str, &'static [&'static str]) {
    use crate::rows::{
        ATTACHMENT_COLUMNS, CONFIG_COLUMNS, CONVERSATION_COLUMNS, PROVIDER_COLUMNS,
        SESSION_COLUMNS, USER_COLUMNS,
    };
    match kind {
        RecordKind::User => ("users", USER_COLUMNS, &["id"]),
        RecordKind::Session => ("sessions", SESSION_COLUMNS, &["token_hash"]),
        RecordKind::Provider => ("providers", PROVIDER_COLUMNS, &["id"]),
        RecordKind::Config => ("configs", CONFIG_COLUMNS, &["user_id", "provider_id"]),
        RecordKind::Conversation => ("conversations", CONVERSATION_COLUMNS, &["id"]),
        // The message columns are each database's own; the caller passes them.
        RecordKind::Message => ("messages", "", &["conversation_id", "seq"]),
        RecordKind::Attachment => ("attachments", ATTACHMENT_COLUMNS, &["id"]),
    }
}

/// The query of a page of `from`'s kind. With a cursor, its key is parameters `1..=k` and
/// the limit `k + 1`; without, the limit is parameter 1. `param(n)` writes parameter `n`.
pub(crate) fn scan_sql(
    from: &ScanCursor,
    message_columns: &str,
    param: impl Fn(usize) -> String,
) -> String {
    let kind = from.kind();
    let (table, columns, key) = shape(kind);
    let columns = match kind {
        RecordKind::Message => message_columns.to_owned(),
        RecordKind::User => format!("{columns}, disabled"),
        RecordKind::Conversation => format!("{columns}, last_seq"),
        _ => columns.to_owned(),
    };
    let order = key.join(", ");
    if has_key(from) {
        let params: Vec<String> = (1..=key.len()).map(&param).collect();
        format!(
            "SELECT {columns} FROM {table} WHERE ({order}) > ({}) ORDER BY {order} LIMIT {}",
            params.join(", "),
            param(key.len() + 1)
        )
    } else {
        format!(
            "SELECT {columns} FROM {table} ORDER BY {order} LIMIT {}",
            param(1)
        )
    }
}

/// One value of a cursor's key, as the databases store it.
#[derive(Debug, Clone)]
pub(crate) enum KeyPart {
    Id(Uuid),
    Bytes(Vec<u8>),
    Int(i64),
}

/// The key of `from`'s cursor, if it has one, in the order [`scan_sql`] numbers its
/// parameters; the caller binds the limit after it.
pub(crate) fn cursor_key(from: &ScanCursor) -> Vec<KeyPart> {
    let id = |id: [u8; 16]| KeyPart::Id(Uuid::from_bytes(id));
    match *from {
        ScanCursor::Users(Some(k)) => vec![id(k.to_bytes())],
        ScanCursor::Sessions(Some(token)) => vec![KeyPart::Bytes(token.0.to_vec())],
        ScanCursor::Providers(Some(k)) => vec![id(k.to_bytes())],
        ScanCursor::Configs(Some((user, provider))) => {
            vec![id(user.to_bytes()), id(provider.to_bytes())]
        }
        ScanCursor::Conversations(Some(k)) => vec![id(k.to_bytes())],
        // A seq beyond the databases' 64-bit integers is past every message.
        ScanCursor::Messages(Some((conversation, seq))) => vec![
            id(conversation.to_bytes()),
            KeyPart::Int(i64::try_from(seq).unwrap_or(i64::MAX)),
        ],
        ScanCursor::Attachments(Some(k)) => vec![id(k.to_bytes())],
        _ => Vec::new(),
    }
}

/// Binds the key of `from`'s cursor to an sqlx query, as [`cursor_key`] lists it.
#[cfg(feature = "postgres")]
pub(crate) fn bind_cursor<'q, DB>(
    mut query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    from: &ScanCursor,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    Uuid: Encode<'q, DB> + Type<DB>,
    Vec<u8>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    for part in cursor_key(from) {
        query = match part {
            KeyPart::Id(id) => query.bind(id),
            KeyPart::Bytes(bytes) => query.bind(bytes),
            KeyPart::Int(n) => query.bind(n),
        };
    }
    query
}

fn has_key(from: &ScanCursor) -> bool {
    match from {
        ScanCursor::Users(k) => k.is_some(),
        ScanCursor::Sessions(k) => k.is_some(),
        ScanCursor::Providers(k) => k.is_some(),
        ScanCursor::Configs(k) => k.is_some(),
        ScanCursor::Conversations(k) => k.is_some(),
        ScanCursor::Messages(k) => k.is_some(),
        ScanCursor::Attachments(k) => k.is_some(),
    }
}

/// The record in a row of [`scan_sql`]'s query for `kind`.
pub(crate) fn record<R: Columns>(kind: RecordKind, row: &R) -> Result<Record> {
    Ok(match kind {
        RecordKind::User => Record::User(UserAccount {
            user: user(row)?,
            disabled: row.flag("disabled")?,
        }),
        RecordKind::Session => Record::Session(session(row)?),
        RecordKind::Provider => Record::Provider(provider(row)?),
        RecordKind::Config => Record::Config(config(row)?),
        RecordKind::Conversation => Record::Conversation {
            conversation: conversation(row)?,
            last_seq: row.count("last_seq")?,
        },
        RecordKind::Message => Record::Message(message(row)?),
        RecordKind::Attachment => Record::Attachment(attachment(row)?),
    })
}
