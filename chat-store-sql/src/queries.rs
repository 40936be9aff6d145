//! The text of the list statements: one source for the stores, which run them, and for the
//! test that checks each one's query plan finds its rows through an index
//! (`tests/query_plans.rs`).
//!
//! Not a stable API: hidden from the documentation, and public only so that the plan test
//! reads the statements the stores run rather than copies of them.

use crate::rows::{ATTACHMENT_COLUMNS, CONVERSATION_COLUMNS, PROVIDER_COLUMNS};

/// Which database's SQL to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// `?1`, `?2`, … parameters.
    #[cfg(feature = "sqlite")]
    Sqlite,
    /// `$1`, `$2`, … parameters.
    #[cfg(feature = "postgres")]
    Postgres,
}

impl Database {
    /// Parameter `n`.
    fn p(self, n: u8) -> String {
        match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite => format!("?{n}"),
            #[cfg(feature = "postgres")]
            Database::Postgres => format!("${n}"),
        }
    }

    /// What the row mapper of a message reads.
    pub(crate) const fn message_columns(self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite => {
                "id, conversation_id, user_id, seq, role, content, metadata, created_at"
            }
            // The `json` column goes back to text, so it reads back as it was written.
            #[cfg(feature = "postgres")]
            Database::Postgres => {
                "id, conversation_id, user_id, seq, role, content, metadata::text AS metadata, created_at"
            }
        }
    }
}

/// A user's conversations, newest first: parameter 1 the user, 2 the limit, and with
/// `cursor` 3 the id to read below.
pub fn list_conversations(d: Database, cursor: bool) -> String {
    let (user, limit) = (d.p(1), d.p(2));
    let below = if cursor {
        format!(" AND id < {}", d.p(3))
    } else {
        String::new()
    };
    format!(
        "SELECT {CONVERSATION_COLUMNS}
         FROM conversations WHERE user_id = {user}{below}
         ORDER BY id DESC LIMIT {limit}"
    )
}

/// A page of a conversation's messages: parameter 1 the conversation, 2 the seq bound
/// (exclusive), 3 the limit; oldest first above the bound when `ascending`, else newest
/// first below it.
pub fn list_messages(d: Database, ascending: bool) -> String {
    let (conversation, bound, limit) = (d.p(1), d.p(2), d.p(3));
    let (compare, order) = if ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    let columns = d.message_columns();
    format!(
        "SELECT {columns}
         FROM messages WHERE conversation_id = {conversation} AND seq {compare} {bound}
         ORDER BY seq {order} LIMIT {limit}"
    )
}

/// A message's attachments by ascending id: parameter 1 the message, 2 the limit, and with
/// `cursor` 3 the id to read above.
pub fn list_attachments(d: Database, cursor: bool) -> String {
    let (message, limit) = (d.p(1), d.p(2));
    let above = if cursor {
        format!(" AND id > {}", d.p(3))
    } else {
        String::new()
    };
    format!(
        "SELECT {ATTACHMENT_COLUMNS}
         FROM attachments WHERE message_id = {message}{above}
         ORDER BY id ASC LIMIT {limit}"
    )
}

/// The providers a user sees by ascending id: parameter 1 the user, 2 the limit, and with
/// `cursor` 3 the id to read above.
///
/// Shared providers and the user's own are two ranges of one index: a page of each, then
/// merged, so the cost follows the page and not the number of providers.
pub fn list_providers(d: Database, cursor: bool) -> String {
    let (user, limit) = (d.p(1), d.p(2));
    let above = if cursor {
        format!(" AND id > {}", d.p(3))
    } else {
        String::new()
    };
    let shared = format!(
        "SELECT {PROVIDER_COLUMNS} FROM providers
         WHERE owner_id IS NULL{above} ORDER BY id LIMIT {limit}"
    );
    let own = format!(
        "SELECT {PROVIDER_COLUMNS} FROM providers
         WHERE owner_id = {user}{above} ORDER BY id LIMIT {limit}"
    );
    match d {
        // SQLite takes no ORDER BY … LIMIT in a compound's arms, only in subqueries.
        #[cfg(feature = "sqlite")]
        Database::Sqlite => format!(
            "SELECT * FROM (SELECT * FROM ({shared}) UNION ALL SELECT * FROM ({own}))
             ORDER BY id LIMIT {limit}"
        ),
        #[cfg(feature = "postgres")]
        Database::Postgres => format!("({shared}) UNION ALL ({own}) ORDER BY id LIMIT {limit}"),
    }
}

/// One list statement, for the plan test.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// The operation and variant, e.g. `list_messages(ascending: false)`.
    pub name: String,
    /// The statement.
    pub sql: String,
    /// The column its filter must find through an index.
    pub filtered: &'static str,
}

/// Every list statement a store of dialect `d` runs.
pub fn lists(d: Database) -> Vec<ListQuery> {
    let mut all = Vec::new();
    for flag in [false, true] {
        let mut add = |name: &str, sql: String, filtered| {
            all.push(ListQuery {
                name: format!("{name}({flag})"),
                sql,
                filtered,
            });
        };
        add("list_conversations", list_conversations(d, flag), "user_id");
        add("list_messages", list_messages(d, flag), "conversation_id");
        add("list_attachments", list_attachments(d, flag), "message_id");
        add("list_providers", list_providers(d, flag), "owner_id");
    }
    all
}
