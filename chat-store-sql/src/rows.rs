//! Reading the model out of result rows: the columns each query selects, and one mapper per
//! entity that both databases share.
//!
//! Both drivers decode ids, text, bytes and integers alike; only times are stored
//! differently (INTEGER microseconds in SQLite, `timestamptz` in PostgreSQL), and that is
//! the one thing each database's [`Dialect`] says.

use chat_core::{
    Attachment, Conversation, Error, LlmProvider, Message, PasswordHash, Result, SealedKey,
    Session, TokenHash, User, UserLlmConfig,
};
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};
use uuid::Uuid;

use crate::faults::classify;
use crate::values::{Corrupt, metadata_from_text, role, to_u64};

/// What [`user`] reads.
pub(crate) const USER_COLUMNS: &str = "id, username, email, password_hash, created_at";
/// What [`session`] reads.
pub(crate) const SESSION_COLUMNS: &str = "token_hash, id, user_id, created_at, expires_at";
/// What [`conversation`] reads.
pub(crate) const CONVERSATION_COLUMNS: &str =
    "id, user_id, title, created_at, updated_at, message_count";
/// What [`attachment`] reads.
pub(crate) const ATTACHMENT_COLUMNS: &str =
    "id, message_id, conversation_id, user_id, file_type, file_path, created_at";
/// What [`provider`] reads.
pub(crate) const PROVIDER_COLUMNS: &str = "id, owner_id, name, api_endpoint, created_at";
/// What [`config`] reads.
pub(crate) const CONFIG_COLUMNS: &str =
    "id, user_id, provider_id, sealed_key, api_key_hint, created_at, updated_at";
// What `message` reads is each database's own `MESSAGE_COLUMNS`: PostgreSQL has to turn
// its `json` column back into text.

/// A result row of one database: what the shared mappers need to know about it.
pub(crate) trait Dialect: Row {
    /// `"sqlite"` or `"postgres"`, as errors name it.
    const BACKEND: &'static str;

    /// The time in `column`, decoded the way this database stores times.
    fn time(&self, column: &str) -> Result<DateTime<Utc>>;
}

/// The values of a row, read the same way from either database and either driver.
///
/// Implemented once for every sqlx [`Dialect`] whose driver decodes these types, so the
/// bounds are written here and not on every mapper, and by the SQLite store's own reads
/// for rusqlite's rows.
pub(crate) trait Columns {
    /// `"sqlite"` or `"postgres"`, as errors name it.
    const BACKEND: &'static str;
    /// The time in `column`, decoded the way this database stores times.
    fn time(&self, column: &str) -> Result<DateTime<Utc>>;
    /// An id.
    fn id<T: From<Uuid>>(&self, column: &str) -> Result<T>;
    /// An id that may be NULL.
    fn opt_id<T: From<Uuid>>(&self, column: &str) -> Result<Option<T>>;
    /// Text.
    fn text(&self, column: &str) -> Result<String>;
    /// Text that may be NULL.
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
    /// Bytes.
    fn bytes(&self, column: &str) -> Result<Vec<u8>>;
    /// A count or `seq`, which the model holds unsigned.
    fn count(&self, column: &str) -> Result<u64>;
    /// A yes-or-no flag.
    fn flag(&self, column: &str) -> Result<bool>;
}

impl<R> Columns for R
where
    R: Dialect,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> Uuid: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    const BACKEND: &'static str = <R as Dialect>::BACKEND;

    fn time(&self, column: &str) -> Result<DateTime<Utc>> {
        Dialect::time(self, column)
    }

    fn id<T: From<Uuid>>(&self, column: &str) -> Result<T> {
        get::<R, Uuid>(self, column).map(T::from)
    }

    fn opt_id<T: From<Uuid>>(&self, column: &str) -> Result<Option<T>> {
        get::<R, Option<Uuid>>(self, column).map(|id| id.map(T::from))
    }

    fn text(&self, column: &str) -> Result<String> {
        get(self, column)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        get(self, column)
    }

    fn bytes(&self, column: &str) -> Result<Vec<u8>> {
        get(self, column)
    }

    fn count(&self, column: &str) -> Result<u64> {
        to_u64(<R as Dialect>::BACKEND, get(self, column)?, column)
    }

    fn flag(&self, column: &str) -> Result<bool> {
        get(self, column)
    }
}

/// The value in `column`, with a driver error kept as the source of the error.
pub(crate) fn get<'r, R, T>(row: &'r R, column: &str) -> Result<T>
where
    R: Dialect,
    for<'a> &'a str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(column)
        .map_err(|error| classify(R::BACKEND, error))
}

/// The model in the row a query found, if it found one.
pub(crate) fn one<R: Dialect, T>(
    found: Result<Option<R>, sqlx::Error>,
    map: fn(&R) -> Result<T>,
) -> Result<Option<T>> {
    found
        .map_err(|error| classify(R::BACKEND, error))?
        .as_ref()
        .map(map)
        .transpose()
}

/// The models in the rows a query found, in their order.
pub(crate) fn all<R: Dialect, T>(
    found: Result<Vec<R>, sqlx::Error>,
    map: fn(&R) -> Result<T>,
) -> Result<Vec<T>> {
    found
        .map_err(|error| classify(R::BACKEND, error))?
        .iter()
        .map(map)
        .collect()
}

/// A row of [`USER_COLUMNS`].
pub(crate) fn user<R: Columns>(row: &R) -> Result<User> {
    Ok(User {
        id: row.id("id")?,
        username: row.text("username")?,
        email: row.opt_text("email")?,
        password_hash: PasswordHash(row.text("password_hash")?),
        created_at: row.time("created_at")?,
    })
}

/// A row of [`SESSION_COLUMNS`].
pub(crate) fn session<R: Columns>(row: &R) -> Result<Session> {
    let hash = row.bytes("token_hash")?;
    let hash = <[u8; 32]>::try_from(hash.as_slice())
        .map_err(|_| Error::backend(R::BACKEND, Corrupt("a token hash is not 32 bytes".into())))?;
    Ok(Session {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        token_hash: TokenHash(hash),
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
    })
}

/// A row of [`CONVERSATION_COLUMNS`].
pub(crate) fn conversation<R: Columns>(row: &R) -> Result<Conversation> {
    Ok(Conversation {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        title: row.text("title")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        message_count: row.count("message_count")?,
    })
}

/// A row of a database's `MESSAGE_COLUMNS`, with the metadata as the text it was stored as.
pub(crate) fn message<R: Columns>(row: &R) -> Result<Message> {
    Ok(Message {
        id: row.id("id")?,
        conversation_id: row.id("conversation_id")?,
        user_id: row.id("user_id")?,
        seq: row.count("seq")?,
        role: role(R::BACKEND, &row.text("role")?)?,
        content: row.text("content")?,
        metadata: metadata_from_text(R::BACKEND, row.opt_text("metadata")?)?,
        created_at: row.time("created_at")?,
    })
}

/// A row of [`ATTACHMENT_COLUMNS`].
pub(crate) fn attachment<R: Columns>(row: &R) -> Result<Attachment> {
    Ok(Attachment {
        id: row.id("id")?,
        message_id: row.id("message_id")?,
        conversation_id: row.id("conversation_id")?,
        user_id: row.id("user_id")?,
        file_type: row.text("file_type")?,
        file_path: row.text("file_path")?,
        created_at: row.time("created_at")?,
    })
}

/// A row of [`PROVIDER_COLUMNS`].
pub(crate) fn provider<R: Columns>(row: &R) -> Result<LlmProvider> {
    Ok(LlmProvider {
        id: row.id("id")?,
        owner_id: row.opt_id("owner_id")?,
        name: row.text("name")?,
        api_endpoint: row.text("api_endpoint")?,
        created_at: row.time("created_at")?,
    })
}

/// A row of [`CONFIG_COLUMNS`].
pub(crate) fn config<R: Columns>(row: &R) -> Result<UserLlmConfig> {
    Ok(UserLlmConfig {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        provider_id: row.id("provider_id")?,
        sealed_key: SealedKey(row.bytes("sealed_key")?),
        api_key_hint: row.opt_text("api_key_hint")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}
