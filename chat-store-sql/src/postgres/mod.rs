//! [`PostgresStore`]: the [`Store`] over a PostgreSQL database.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::{
    Attachment, AttachmentId, Conversation, ConversationId, Entity, Error, Limit, LlmProvider,
    Message, MessageDraft, MessageId, MessageOrder, ProviderId, Result, SealedKey, Session, Store,
    TokenHash, User, UserId, UserLlmConfig, provider_name_key, username_key,
};
use chrono::{DateTime, Utc};
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use uuid::Uuid;

use crate::OpenError;
use crate::inserts::{
    conflict, found, insert_keyed, insert_under, is_foreign_key_violation, is_unique_violation,
};
use crate::rows::{
    ATTACHMENT_COLUMNS, CONFIG_COLUMNS, CONVERSATION_COLUMNS, Dialect, PROVIDER_COLUMNS,
    SESSION_COLUMNS, USER_COLUMNS, all, attachment, config, conversation, get, message, one,
    provider, session, user,
};
use crate::schema::{check_versions, migrate_error};
use crate::values::{backend_error, limit, metadata_to_text, seq_bounds, to_i64, to_u64, uuid};

const BACKEND: &str = "postgres";

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// How [`PostgresStore::connect_with`] connects and sizes its pool.
///
/// *Requires the `postgres` feature.*
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// Connections the pool keeps open even when idle.
    pub min_connections: u32,
    /// How long an operation waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// How long opening the store waits for the server to answer.
    pub connect_timeout: Duration,
    /// Idle connections above `min_connections` are closed after this long.
    pub idle_timeout: Option<Duration>,
    /// Ping an idle connection before handing it out, so one the server has dropped (a
    /// restart, a network cut) is replaced instead of failing a request. Costs a round
    /// trip per operation; sqlx's default.
    pub test_before_acquire: bool,
    /// The schema to keep the tables in (created if missing when migrating), instead of
    /// the connection's default `search_path`.
    pub schema: Option<String>,
    /// Apply pending migrations when connecting. When `false`, connecting to a database
    /// whose schema is behind fails with [`OpenError::SchemaTooOld`] until an operator runs
    /// [`PostgresStore::migrate`].
    pub migrate_on_open: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            test_before_acquire: true,
            schema: None,
            migrate_on_open: true,
        }
    }
}

/// A [`Store`] over a PostgreSQL database, through a connection pool.
///
/// Every write is one statement or one short transaction. Appends bump a counter on the
/// conversation row with `UPDATE … RETURNING` in the same statement that inserts the
/// message; the row lock that the update takes orders appenders on every server sharing
/// the database, so `seq` has no gaps and no repeats.
///
/// *Requires the `postgres` feature.*
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    connect: PgConnectOptions,
    location: String,
}

impl fmt::Debug for PostgresStore {
    // The connect options hold the password; show only where the store points.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// An error of the driver with the password taken out, should the driver have echoed it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Redacted(String);

/// `error`, unless its message or debug form shows `password`, in which case a copy with
/// the password masked.
fn redact(error: sqlx::Error, password: Option<&str>) -> chat_core::BoxError {
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Box::new(error);
    };
    let mut shown = format!("{error} {error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        shown.push_str(&format!("{s} {s:?}"));
        source = s.source();
    }
    if shown.contains(password) {
        Box::new(Redacted(error.to_string().replace(password, "***")))
    } else {
        Box::new(error)
    }
}

/// The password in a URL, decoded, for [`redact`].
fn url_password(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let raw = parsed.password()?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn location_of(options: &PgConnectOptions) -> String {
    let database = options.get_database().unwrap_or(options.get_username());
    match options.get_socket() {
        Some(socket) => format!("{}/{database}", socket.display()),
        None => format!("{}:{}/{database}", options.get_host(), options.get_port()),
    }
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`)
    /// with default options and applies pending migrations.
    ///
    /// # Errors
    ///
    /// [`OpenError`] if the URL is malformed, the server cannot be reached or refuses the
    /// login, its schema is newer than this program's, or a migration fails. Errors name
    /// the host, port and database, never the password.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects to the database at `url` with `options`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); with `migrate_on_open` off, also
    /// [`OpenError::SchemaTooOld`] for a database that needs migrating.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, OpenError> {
        let password = url_password(url);
        let mut connect = PgConnectOptions::from_str(url).map_err(|e| OpenError::Config {
            backend: BACKEND,
            reason: redact(e, password.as_deref()).to_string(),
        })?;
        connect = connect.application_name("chat-store");
        if let Some(schema) = &options.schema {
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let location = location_of(&connect);

        // One connection of its own first: a pool retries a refused connection until its
        // timeout and then reports only the timeout, while this reports the cause.
        let mut conn = tokio::time::timeout(
            options.connect_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        .map_err(|_| OpenError::Connect {
            backend: BACKEND,
            location: location.clone(),
            source: Box::new(Redacted(format!(
                "no answer within {:?}",
                options.connect_timeout
            ))),
        })?
        .map_err(|e| OpenError::Connect {
            backend: BACKEND,
            location: location.clone(),
            source: redact(e, password.as_deref()),
        })?;

        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            .idle_timeout(options.idle_timeout)
            .test_before_acquire(options.test_before_acquire);
        let store = Self {
            pool: pool.connect_lazy_with(connect.clone()),
            connect,
            location,
        };
        let result = store
            .check_and_migrate(
                &mut conn,
                options.migrate_on_open,
                options.schema.as_deref(),
            )
            .await;
        // The pool has its own connections; this one was only for setting up.
        let _ = conn.close().await;
        result?;
        Ok(store)
    }

    /// Applies the migrations this program carries that the database lacks.
    ///
    /// Safe to run from several servers at once: the migrator holds an advisory lock.
    ///
    /// # Errors
    ///
    /// [`OpenError::SchemaTooNew`] if the database was migrated by a newer program;
    /// [`OpenError::Migrate`] if a migration fails.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        let mut conn = PgConnection::connect_with(&self.connect)
            .await
            .map_err(|e| OpenError::Connect {
                backend: BACKEND,
                location: self.location.clone(),
                source: redact(e, None),
            })?;
        let result = self.check_and_migrate(&mut conn, true, None).await;
        let _ = conn.close().await;
        result
    }

    /// Closes every connection, waiting for operations in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn check_and_migrate(
        &self,
        conn: &mut PgConnection,
        migrate: bool,
        schema: Option<&str>,
    ) -> Result<(), OpenError> {
        let error = |e| migrate_error(BACKEND, &self.location, &MIGRATOR, e);
        if let (true, Some(schema)) = (migrate, schema) {
            sqlx::query(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_identifier(schema)
            ))
            .execute(&mut *conn)
            .await
            .map_err(|e| error(e.into()))?;
        }
        let applied = applied_versions(conn).await.map_err(|e| error(e.into()))?;
        check_versions(BACKEND, &self.location, &MIGRATOR, &applied, migrate)?;
        if migrate {
            MIGRATOR.run(&mut *conn).await.map_err(error)?;
        }
        Ok(())
    }
}

async fn applied_versions(conn: &mut PgConnection) -> Result<Vec<i64>, sqlx::Error> {
    // to_regclass follows search_path, as the migrator's own queries do.
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(&mut *conn)
        .await?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut *conn)
        .await
}

fn be(error: sqlx::Error) -> Error {
    backend_error(BACKEND)(error)
}

impl Dialect for PgRow {
    const BACKEND: &'static str = BACKEND;

    fn time(&self, column: &str) -> Result<DateTime<Utc>> {
        get(self, column)
    }
}

/// What [`message`] reads, with the `json` column as the text that was stored.
const MESSAGE_COLUMNS: &str =
    "id, conversation_id, user_id, seq, role, content, metadata::text AS metadata, created_at";

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(be)?;
        Ok(())
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        let key = username_key(&user.username);
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, username_key, email, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid(user.id))
        .bind(&user.username)
        .bind(&key)
        .bind(&user.email)
        .bind(&user.password_hash.0)
        .bind(user.created_at)
        .execute(&self.pool)
        .await;
        let username_taken = found(
            sqlx::query("SELECT 1 FROM users WHERE username_key = $1")
                .bind(&key)
                .fetch_optional(&self.pool),
        );
        insert_keyed(BACKEND, inserted, Entity::User, "username", username_taken).await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        let found = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(uuid(id))
            .fetch_optional(&self.pool)
            .await;
        one(found, user)
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        let found = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username_key = $1"
        ))
        .bind(username_key(username))
        .fetch_optional(&self.pool)
        .await;
        one(found, user)
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        let inserted = sqlx::query(
            "INSERT INTO sessions (token_hash, id, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.token_hash.0[..])
        .bind(uuid(session.id))
        .bind(uuid(session.user_id))
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await;
        let token_taken = found(
            sqlx::query("SELECT 1 FROM sessions WHERE token_hash = $1")
                .bind(&session.token_hash.0[..])
                .fetch_optional(&self.pool),
        );
        insert_keyed(BACKEND, inserted, Entity::Session, "token", token_taken).await
    }

    async fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>> {
        let found = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS}
             FROM sessions WHERE token_hash = $1"
        ))
        .bind(&token_hash.0[..])
        .fetch_optional(&self.pool)
        .await;
        one(found, session)
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(&token_hash.0[..])
            .execute(&self.pool)
            .await
            .map_err(be)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(be)?;
        Ok(done.rows_affected())
    }

    async fn create_conversation(&self, c: &Conversation) -> Result<()> {
        sqlx::query(
            "INSERT INTO conversations
                 (id, user_id, title, created_at, updated_at, message_count, last_seq)
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(uuid(c.id))
        .bind(uuid(c.user_id))
        .bind(&c.title)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(to_i64(BACKEND, c.message_count, "message_count")?)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                conflict(Entity::Conversation, "id")
            } else {
                be(e)
            }
        })?;
        Ok(())
    }

    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let found = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1"
        ))
        .bind(uuid(id))
        .fetch_optional(&self.pool)
        .await;
        one(found, conversation)
    }

    async fn list_conversations(
        &self,
        user: UserId,
        before: Option<ConversationId>,
        page: Limit,
    ) -> Result<Vec<Conversation>> {
        let sql = match before {
            None => format!(
                "SELECT {CONVERSATION_COLUMNS}
                 FROM conversations WHERE user_id = $1
                 ORDER BY id DESC LIMIT $2"
            ),
            Some(_) => format!(
                "SELECT {CONVERSATION_COLUMNS}
                 FROM conversations WHERE user_id = $1 AND id < $3
                 ORDER BY id DESC LIMIT $2"
            ),
        };
        let mut query = sqlx::query(&sql).bind(uuid(user)).bind(limit(page));
        if let Some(before) = before {
            query = query.bind(uuid(before));
        }
        let rows = query.fetch_all(&self.pool).await;
        all(rows, conversation)
    }

    async fn rename_conversation(
        &self,
        id: ConversationId,
        title: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>> {
        let found = sqlx::query(&format!(
            "UPDATE conversations SET title = $2, updated_at = $3 WHERE id = $1
             RETURNING {CONVERSATION_COLUMNS}"
        ))
        .bind(uuid(id))
        .bind(title)
        .bind(at)
        .fetch_optional(&self.pool)
        .await;
        one(found, conversation)
    }

    async fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        // Messages and their attachments go with it through ON DELETE CASCADE, in the same
        // statement. An append waiting on the conversation's row lock then finds no row.
        let done = sqlx::query("DELETE FROM conversations WHERE id = $1")
            .bind(uuid(id))
            .execute(&self.pool)
            .await
            .map_err(be)?;
        Ok(done.rows_affected() > 0)
    }

    async fn append_message(&self, draft: MessageDraft) -> Result<Message> {
        let metadata = metadata_to_text(BACKEND, draft.metadata.as_ref())?;
        // One statement, so one implicit transaction and one round trip: the UPDATE locks
        // the conversation row until the insert commits, so concurrent appenders on any
        // server take numbers one after another. If the insert fails, the bump is undone.
        let inserted: std::result::Result<Option<i64>, sqlx::Error> = sqlx::query_scalar(
            "WITH bumped AS (
                 UPDATE conversations
                 SET last_seq = last_seq + 1, message_count = message_count + 1, updated_at = $7
                 WHERE id = $2 AND user_id = $3
                 RETURNING last_seq
             )
             INSERT INTO messages
                 (id, conversation_id, user_id, seq, role, content, metadata, created_at)
             SELECT $1, $2, $3, last_seq, $4, $5, $6::json, $7 FROM bumped
             RETURNING seq",
        )
        .bind(uuid(draft.id))
        .bind(uuid(draft.conversation_id))
        .bind(uuid(draft.user_id))
        .bind(draft.role.as_str())
        .bind(&draft.content)
        .bind(metadata)
        .bind(draft.created_at)
        .fetch_optional(&self.pool)
        .await;
        let id_taken = found(
            sqlx::query("SELECT 1 FROM messages WHERE id = $1")
                .bind(uuid(draft.id))
                .fetch_optional(&self.pool),
        );
        let seq = insert_under(
            BACKEND,
            inserted,
            Entity::Message,
            Entity::Conversation,
            id_taken,
        )
        .await?;
        Ok(draft.with_seq(to_u64(BACKEND, seq, "seq")?))
    }

    async fn get_message(&self, id: MessageId) -> Result<Option<Message>> {
        let found = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"
        ))
        .bind(uuid(id))
        .fetch_optional(&self.pool)
        .await;
        one(found, message)
    }

    async fn list_messages(
        &self,
        conversation: ConversationId,
        order: MessageOrder,
        page: Limit,
    ) -> Result<Vec<Message>> {
        let Some((ascending, bound)) = seq_bounds(order) else {
            return Ok(Vec::new());
        };
        let sql = if ascending {
            format!(
                "SELECT {MESSAGE_COLUMNS}
             FROM messages WHERE conversation_id = $1 AND seq > $2
             ORDER BY seq ASC LIMIT $3"
            )
        } else {
            format!(
                "SELECT {MESSAGE_COLUMNS}
             FROM messages WHERE conversation_id = $1 AND seq < $2
             ORDER BY seq DESC LIMIT $3"
            )
        };
        let rows = sqlx::query(&sql)
            .bind(uuid(conversation))
            .bind(bound)
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await;
        all(rows, message)
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(be)?;
        // Lock the conversation before the message, the order that deleting a conversation
        // and appending take them in, so these never deadlock.
        let conversation: Option<Uuid> = sqlx::query_scalar(
            "UPDATE conversations SET message_count = message_count - 1, updated_at = $2
             WHERE id = (SELECT conversation_id FROM messages WHERE id = $1)
             RETURNING id",
        )
        .bind(uuid(id))
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(be)?;
        if conversation.is_none() {
            tx.rollback().await.map_err(be)?;
            return Ok(false);
        }
        let done = sqlx::query("DELETE FROM messages WHERE id = $1")
            .bind(uuid(id))
            .execute(&mut *tx)
            .await
            .map_err(be)?;
        if done.rows_affected() == 0 {
            // Someone else deleted it while we waited for the lock: undo our count.
            tx.rollback().await.map_err(be)?;
            return Ok(false);
        }
        tx.commit().await.map_err(be)?;
        Ok(true)
    }

    async fn create_attachment(&self, a: &Attachment) -> Result<()> {
        // Inserting from the message row makes "the message exists and its conversation and
        // owner are these" part of the insert; the foreign key's lock on that row keeps a
        // racing delete of the message from leaving the attachment behind.
        let inserted = sqlx::query(
            "INSERT INTO attachments
                 (id, message_id, conversation_id, user_id, file_type, file_path, created_at)
             SELECT $1, id, conversation_id, user_id, $5, $6, $7 FROM messages
             WHERE id = $2 AND conversation_id = $3 AND user_id = $4",
        )
        .bind(uuid(a.id))
        .bind(uuid(a.message_id))
        .bind(uuid(a.conversation_id))
        .bind(uuid(a.user_id))
        .bind(&a.file_type)
        .bind(&a.file_path)
        .bind(a.created_at)
        .execute(&self.pool)
        .await;
        let inserted = inserted.map(|done| (done.rows_affected() > 0).then_some(()));
        let id_taken = found(
            sqlx::query("SELECT 1 FROM attachments WHERE id = $1")
                .bind(uuid(a.id))
                .fetch_optional(&self.pool),
        );
        insert_under(
            BACKEND,
            inserted,
            Entity::Attachment,
            Entity::Message,
            id_taken,
        )
        .await
    }

    async fn get_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        let found = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLUMNS}
             FROM attachments WHERE id = $1"
        ))
        .bind(uuid(id))
        .fetch_optional(&self.pool)
        .await;
        one(found, attachment)
    }

    async fn list_attachments(
        &self,
        message: MessageId,
        after: Option<AttachmentId>,
        page: Limit,
    ) -> Result<Vec<Attachment>> {
        let sql = match after {
            None => format!(
                "SELECT {ATTACHMENT_COLUMNS}
                 FROM attachments WHERE message_id = $1
                 ORDER BY id ASC LIMIT $2"
            ),
            Some(_) => format!(
                "SELECT {ATTACHMENT_COLUMNS}
                 FROM attachments WHERE message_id = $1 AND id > $3
                 ORDER BY id ASC LIMIT $2"
            ),
        };
        let mut query = sqlx::query(&sql).bind(uuid(message)).bind(limit(page));
        if let Some(after) = after {
            query = query.bind(uuid(after));
        }
        let rows = query.fetch_all(&self.pool).await;
        all(rows, attachment)
    }

    async fn delete_attachment(&self, id: AttachmentId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM attachments WHERE id = $1")
            .bind(uuid(id))
            .execute(&self.pool)
            .await
            .map_err(be)?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_provider(&self, p: &LlmProvider) -> Result<()> {
        let key = provider_name_key(&p.name);
        let inserted = sqlx::query(
            "INSERT INTO providers (id, owner_id, name, name_key, api_endpoint, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid(p.id))
        .bind(p.owner_id.map(uuid))
        .bind(&p.name)
        .bind(&key)
        .bind(&p.api_endpoint)
        .bind(p.created_at)
        .execute(&self.pool)
        .await;
        let name_taken = found(
            sqlx::query(
                "SELECT 1 FROM providers
                     WHERE owner_id IS NOT DISTINCT FROM $1 AND name_key = $2",
            )
            .bind(p.owner_id.map(uuid))
            .bind(&key)
            .fetch_optional(&self.pool),
        );
        insert_keyed(BACKEND, inserted, Entity::Provider, "name", name_taken).await
    }

    async fn get_provider(&self, id: ProviderId) -> Result<Option<LlmProvider>> {
        let found = sqlx::query(&format!(
            "SELECT {PROVIDER_COLUMNS} FROM providers WHERE id = $1"
        ))
        .bind(uuid(id))
        .fetch_optional(&self.pool)
        .await;
        one(found, provider)
    }

    async fn list_providers(
        &self,
        user: UserId,
        after: Option<ProviderId>,
        page: Limit,
    ) -> Result<Vec<LlmProvider>> {
        // Shared providers and the user's own are two ranges of one index: take a page of
        // each and merge, so the cost follows the page and not the number of providers.
        let sql = match after {
            None => format!(
                "(SELECT {PROVIDER_COLUMNS} FROM providers
                  WHERE owner_id IS NULL ORDER BY id LIMIT $2)
                 UNION ALL
                 (SELECT {PROVIDER_COLUMNS} FROM providers
                  WHERE owner_id = $1 ORDER BY id LIMIT $2)
                 ORDER BY id LIMIT $2"
            ),
            Some(_) => format!(
                "(SELECT {PROVIDER_COLUMNS} FROM providers
                  WHERE owner_id IS NULL AND id > $3 ORDER BY id LIMIT $2)
                 UNION ALL
                 (SELECT {PROVIDER_COLUMNS} FROM providers
                  WHERE owner_id = $1 AND id > $3 ORDER BY id LIMIT $2)
                 ORDER BY id LIMIT $2"
            ),
        };
        let mut query = sqlx::query(&sql).bind(uuid(user)).bind(limit(page));
        if let Some(after) = after {
            query = query.bind(uuid(after));
        }
        let rows = query.fetch_all(&self.pool).await;
        all(rows, provider)
    }

    async fn delete_provider(&self, id: ProviderId) -> Result<bool> {
        // The provider's configs go with it through ON DELETE CASCADE.
        let done = sqlx::query("DELETE FROM providers WHERE id = $1")
            .bind(uuid(id))
            .execute(&self.pool)
            .await
            .map_err(be)?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_config(&self, c: &UserLlmConfig) -> Result<()> {
        let inserted = sqlx::query(
            "INSERT INTO configs
                 (id, user_id, provider_id, sealed_key, api_key_hint, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid(c.id))
        .bind(uuid(c.user_id))
        .bind(uuid(c.provider_id))
        .bind(&c.sealed_key.0)
        .bind(&c.api_key_hint)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(&self.pool)
        .await;
        // Report what MemoryStore reports first: a missing provider, then the
        // (user, provider) clash, then the id.
        let pair_taken = async {
            let provider = sqlx::query("SELECT 1 FROM providers WHERE id = $1")
                .bind(uuid(c.provider_id))
                .fetch_optional(&self.pool);
            if !found(provider).await? {
                return Err(Error::NotFound(Entity::Provider));
            }
            found(
                sqlx::query("SELECT 1 FROM configs WHERE user_id = $1 AND provider_id = $2")
                    .bind(uuid(c.user_id))
                    .bind(uuid(c.provider_id))
                    .fetch_optional(&self.pool),
            )
            .await
        };
        if matches!(&inserted, Err(e) if is_foreign_key_violation(e)) {
            return Err(Error::NotFound(Entity::Provider));
        }
        insert_keyed(BACKEND, inserted, Entity::Config, "provider_id", pair_taken).await
    }

    async fn get_config(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<UserLlmConfig>> {
        let found = sqlx::query(&format!(
            "SELECT {CONFIG_COLUMNS} FROM configs WHERE user_id = $1 AND provider_id = $2"
        ))
        .bind(uuid(user))
        .bind(uuid(provider))
        .fetch_optional(&self.pool)
        .await;
        one(found, config)
    }

    async fn update_config(
        &self,
        user: UserId,
        provider: ProviderId,
        sealed_key: SealedKey,
        api_key_hint: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<UserLlmConfig>> {
        let found = sqlx::query(&format!(
            "UPDATE configs SET sealed_key = $3, api_key_hint = $4, updated_at = $5
             WHERE user_id = $1 AND provider_id = $2
             RETURNING {CONFIG_COLUMNS}"
        ))
        .bind(uuid(user))
        .bind(uuid(provider))
        .bind(sealed_key.0)
        .bind(api_key_hint)
        .bind(at)
        .fetch_optional(&self.pool)
        .await;
        one(found, config)
    }

    async fn delete_config(&self, user: UserId, provider: ProviderId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM configs WHERE user_id = $1 AND provider_id = $2")
            .bind(uuid(user))
            .bind(uuid(provider))
            .execute(&self.pool)
            .await
            .map_err(be)?;
        Ok(done.rows_affected() > 0)
    }
}
