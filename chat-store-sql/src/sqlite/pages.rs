//! A page of messages read as one row: the page's rows folded into a JSON array by SQLite.
//!
//! sqlx-sqlite runs each connection on a thread of its own and hands every result row to
//! the caller's task through a channel, copying each value into its own allocation; for a
//! page of 50 that is 50 hand-offs, each a thread wake-up on a loaded machine, and 400
//! allocations. Profiling the server over SQLite under a page load showed the time going to
//! those context switches and allocations rather than to SQLite. Folded into one text
//! value by `json_group_array`, the page crosses once; parsing the JSON here costs less
//! than the hand-offs it saves. The inner statement is still `queries::list_messages`, so
//! the plan test keeps checking that it is read through the index.
//!
//! Ids go through `hex()` (JSON has no bytes); `content` and `metadata` are text columns
//! without JSON's subtype, so `json_array` quotes them as strings and they read back
//! exactly as stored.

use chat_core::{Error, Message, Result};
use uuid::Uuid;

use super::BACKEND;
use crate::queries::{self, Database};
use crate::values::{Corrupt, from_micros, metadata_from_text, role, to_u64};

/// The page statement: parameters as [`queries::list_messages`]; one row, one column.
pub(super) fn page_sql(ascending: bool) -> String {
    let inner = queries::list_messages(Database::Sqlite, ascending);
    let order = if ascending { "ASC" } else { "DESC" };
    format!(
        "SELECT json_group_array(
             json_array(hex(id), hex(conversation_id), hex(user_id), seq, role, content,
                        metadata, created_at)
             ORDER BY seq {order})
         FROM ({inner})"
    )
}

/// One message as [`page_sql`] folds it.
type Folded = (
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    i64,
);

/// The messages of the text [`page_sql`] answers, in its order.
pub(super) fn page_from_json(text: &str) -> Result<Vec<Message>> {
    let folded: Vec<Folded> = serde_json::from_str(text).map_err(corrupt)?;
    folded
        .into_iter()
        .map(
            |(id, conversation_id, user_id, seq, r, content, metadata, created_at)| {
                Ok(Message {
                    id: hex_id(&id)?.into(),
                    conversation_id: hex_id(&conversation_id)?.into(),
                    user_id: hex_id(&user_id)?.into(),
                    seq: to_u64(BACKEND, seq, "seq")?,
                    role: role(BACKEND, &r)?,
                    content,
                    metadata: metadata_from_text(BACKEND, metadata)?,
                    created_at: from_micros(BACKEND, created_at)?,
                })
            },
        )
        .collect()
}

fn hex_id(hex: &str) -> Result<Uuid> {
    Uuid::try_parse(hex).map_err(corrupt)
}

fn corrupt(error: impl std::fmt::Display) -> Error {
    Error::backend(BACKEND, Corrupt(format!("a page of messages: {error}")))
}
