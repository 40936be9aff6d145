//! Every [`Store`] operation in PostgreSQL's SQL, in the same order as `sqlite/store.rs`
//! so the two read side by side, and how a PostgreSQL row holds a time.
//!
//! Writes with `RETURNING` take their row with `fetch_optional`, which in sqlx-postgres
//! 0.8 reads every response of the statement up to `ReadyForQuery` (its
//! `connection/executor.rs`), so a commit that fails after the row was sent is still
//! reported, and never a row of a change that was rolled back. (sqlx-sqlite's stops at the
//! first row; `sqlite/store.rs` says what it does instead.)

use async_trait::async_trait;
use chat_core::{
    Attachment, AttachmentId, Conversation, ConversationId, Entity, Error, Forbidden, Limit,
    LlmProvider, Message, MessageDraft, MessageId, MessageOrder, ProviderId, Record, Result,
    ScanCursor, SealedKey, Session, Store, TokenHash, User, UserAccount, UserId, UserLlmConfig,
    import_plain, provider_name_key, username_key,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::{BACKEND, PostgresStore};
use crate::faults::postgres as be;
use crate::inserts::{
    conflict, found, insert_keyed, insert_under, is_foreign_key_violation, is_unique_violation,
};
use crate::queries::{self, Database};
use crate::rows::{
    ATTACHMENT_COLUMNS, CONFIG_COLUMNS, CONVERSATION_COLUMNS, Dialect, PROVIDER_COLUMNS,
    SESSION_COLUMNS, USER_COLUMNS, all, attachment, config, conversation, get, message, one,
    provider, session, user,
};
use crate::scan::{bind_cursor, record, scan_sql};
use crate::values::{limit, metadata_to_text, seq_bounds, to_i64, to_u64, uuid};

impl Dialect for PgRow {
    const BACKEND: &'static str = BACKEND;

    fn time(&self, column: &str) -> Result<DateTime<Utc>> {
        get(self, column)
    }
}

/// What [`message`] reads, with the `json` column as the text that was stored.
const MESSAGE_COLUMNS: &str = Database::Postgres.message_columns();

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
        // PostgreSQL's text cannot hold U+0000, so no stored name has one; it also refuses
        // such a parameter with an error, which a miss must not become.
        if username.contains('\0') {
            return Ok(None);
        }
        let found = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username_key = $1"
        ))
        .bind(username_key(username))
        .fetch_optional(&self.pool)
        .await;
        one(found, user)
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        // The user's row is read under a share lock: a disable (an UPDATE of that row)
        // that got there first makes this wait and then see the flag set, and one that
        // comes second waits for this insert to commit and then deletes the session.
        let inserted = sqlx::query(
            "WITH owner AS (SELECT disabled FROM users WHERE id = $3 FOR SHARE)
             INSERT INTO sessions (token_hash, id, user_id, created_at, expires_at)
             SELECT $1, $2, $3, $4, $5
             WHERE NOT EXISTS (SELECT 1 FROM owner WHERE disabled)",
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
        if matches!(&inserted, Ok(done) if done.rows_affected() == 0) {
            return Err(Error::Forbidden(Forbidden::UserDisabled));
        }
        insert_keyed(BACKEND, inserted, Entity::Session, "token", token_taken).await
    }

    async fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>> {
        let found = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1"
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
        let sql = queries::list_conversations(Database::Postgres, before.is_some());
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
        let metadata = metadata_to_text(draft.metadata.as_ref());
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
        let sql = queries::list_messages(Database::Postgres, ascending);
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
        .fetch_optional(tx.conn())
        .await
        .map_err(be)?;
        if conversation.is_none() {
            tx.rollback().await.map_err(be)?;
            return Ok(false);
        }
        let done = sqlx::query("DELETE FROM messages WHERE id = $1")
            .bind(uuid(id))
            .execute(tx.conn())
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
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = $1"
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
        let sql = queries::list_attachments(Database::Postgres, after.is_some());
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
        let sql = queries::list_providers(Database::Postgres, after.is_some());
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

    async fn scan(&self, from: ScanCursor, page: Limit) -> Result<Vec<Record>> {
        let sql = scan_sql(&from, MESSAGE_COLUMNS, |n| format!("${n}"));
        let query = bind_cursor(sqlx::query(&sql), &from);
        let rows = query
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(be)?;
        let kind = from.kind();
        rows.iter().map(|row| record(kind, row)).collect()
    }

    async fn import(&self, record: &Record) -> Result<bool> {
        match record {
            Record::User(account) => self.import_user(account).await,
            Record::Conversation {
                conversation,
                last_seq,
            } => self.import_conversation(conversation, *last_seq).await,
            Record::Message(message) => self.import_message(message).await,
            other => import_plain(self, other).await,
        }
    }

    async fn set_user_disabled(&self, user: UserId, disabled: bool) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(be)?;
        // The UPDATE takes the row lock a racing session insert shares; the DELETE is a
        // statement of its own so that, under READ COMMITTED, it sees a session whose
        // insert committed while the UPDATE waited.
        let done = sqlx::query("UPDATE users SET disabled = $2 WHERE id = $1")
            .bind(uuid(user))
            .bind(disabled)
            .execute(tx.conn())
            .await
            .map_err(be)?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(be)?;
            return Ok(false);
        }
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(uuid(user))
                .execute(tx.conn())
                .await
                .map_err(be)?;
        }
        tx.commit().await.map_err(be)?;
        Ok(true)
    }

    async fn list_idle_conversations(
        &self,
        updated_before: DateTime<Utc>,
        after: Option<ConversationId>,
        page: Limit,
    ) -> Result<Vec<Conversation>> {
        let sql = match after {
            None => format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations
                 WHERE updated_at < $1 ORDER BY id LIMIT $2"
            ),
            Some(_) => format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations
                 WHERE updated_at < $1 AND id > $3 ORDER BY id LIMIT $2"
            ),
        };
        let mut query = sqlx::query(&sql).bind(updated_before).bind(limit(page));
        if let Some(after) = after {
            query = query.bind(uuid(after));
        }
        let rows = query.fetch_all(&self.pool).await;
        all(rows, conversation)
    }
}

/// The imports no create call can do: each keeps what the record says, and answers
/// `false` for a record already there.
impl PostgresStore {
    async fn import_user(&self, account: &UserAccount) -> Result<bool> {
        let u = &account.user;
        let done = sqlx::query(
            "INSERT INTO users
                 (id, username, username_key, email, password_hash, created_at, disabled)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(uuid(u.id))
        .bind(&u.username)
        .bind(username_key(&u.username))
        .bind(&u.email)
        .bind(&u.password_hash.0)
        .bind(u.created_at)
        .bind(account.disabled)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                conflict(Entity::User, "username")
            } else {
                be(e)
            }
        })?;
        Ok(done.rows_affected() > 0)
    }

    async fn import_conversation(&self, c: &Conversation, last_seq: u64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO conversations
                 (id, user_id, title, created_at, updated_at, message_count, last_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(uuid(c.id))
        .bind(uuid(c.user_id))
        .bind(&c.title)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(to_i64(BACKEND, c.message_count, "message_count")?)
        .bind(to_i64(BACKEND, last_seq, "last_seq")?)
        .execute(&self.pool)
        .await
        .map_err(be)?;
        Ok(done.rows_affected() > 0)
    }

    async fn import_message(&self, m: &Message) -> Result<bool> {
        // One statement: the conversation must be there and the owner's (its row is
        // locked by the UPDATE, which only raises last_seq to cover this seq), and the
        // message goes in unless its id is already taken. Counters are not moved.
        let found: (bool, bool) = sqlx::query_as(
            "WITH parent AS (
                 UPDATE conversations SET last_seq = GREATEST(last_seq, $4)
                 WHERE id = $2 AND user_id = $3
                 RETURNING id
             ), inserted AS (
                 INSERT INTO messages
                     (id, conversation_id, user_id, seq, role, content, metadata, created_at)
                 SELECT $1, id, $3, $4, $5, $6, $7::json, $8 FROM parent
                 ON CONFLICT (id) DO NOTHING
                 RETURNING 1
             )
             SELECT EXISTS (SELECT 1 FROM parent), EXISTS (SELECT 1 FROM inserted)",
        )
        .bind(uuid(m.id))
        .bind(uuid(m.conversation_id))
        .bind(uuid(m.user_id))
        .bind(to_i64(BACKEND, m.seq, "seq")?)
        .bind(m.role.as_str())
        .bind(&m.content)
        .bind(metadata_to_text(m.metadata.as_ref()))
        .bind(m.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                conflict(Entity::Message, "seq")
            } else {
                be(e)
            }
        })?;
        match found {
            (false, _) => Err(Error::NotFound(Entity::Conversation)),
            (true, inserted) => Ok(inserted),
        }
    }
}
