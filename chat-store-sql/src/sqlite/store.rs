//! Every [`Store`] operation in SQLite's SQL, in the same order as `postgres/store.rs` so
//! the two read side by side, and how a SQLite row holds a time.

use std::future::Future;

use async_trait::async_trait;
use chat_core::{
    Attachment, AttachmentId, Conversation, ConversationId, Entity, Error, Forbidden, Limit,
    LlmProvider, Message, MessageDraft, MessageId, MessageOrder, ProviderId, Record, Result,
    ScanCursor, SealedKey, Session, Store, TokenHash, User, UserAccount, UserId, UserLlmConfig,
    import_plain, provider_name_key, username_key,
};
use chrono::{DateTime, Utc};
use rusqlite::params;
use rusqlite::params_from_iter;
use rusqlite::types::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use super::readers::{blob, key_value, keyset, query_all, query_one};
use super::{BACKEND, SqliteStore};
use crate::faults::{sqlite as be, sqlite_native as sqlite};
use crate::inserts::{
    conflict, found, insert_keyed, insert_under, is_foreign_key_violation, is_unique_violation,
};
use crate::queries::{self, Database};
use crate::rows::{
    ATTACHMENT_COLUMNS, CONFIG_COLUMNS, CONVERSATION_COLUMNS, Dialect, PROVIDER_COLUMNS,
    SESSION_COLUMNS, USER_COLUMNS, attachment, config, conversation, get, message, one, provider,
    session, user,
};
use crate::scan::{cursor_key, record, scan_sql};
use crate::values::{from_micros, limit, metadata_to_text, seq_bounds, to_i64, to_micros, uuid};

impl Dialect for SqliteRow {
    const BACKEND: &'static str = BACKEND;

    fn time(&self, column: &str) -> Result<DateTime<Utc>> {
        from_micros(BACKEND, get(self, column)?)
    }
}

/// What [`message`] reads.
const MESSAGE_COLUMNS: &str = Database::Sqlite.message_columns();

/// The row a write's `RETURNING` gave, taken only after the statement ran to its end.
///
/// Outside a transaction SQLite commits when a writing statement ends. sqlx-sqlite's
/// `fetch_optional` (and `fetch_one`) stop at the first row and reset the statement, so a
/// commit that then fails (a full disk) goes unseen, and the row of a change that was
/// rolled back would be answered. `fetch_all` steps the statement to its end, where the
/// commit's error is reported; these statements return one row at most.
pub(super) fn returned<T>(rows: Result<Vec<T>, sqlx::Error>) -> Result<Option<T>, sqlx::Error> {
    rows.map(|rows| rows.into_iter().next())
}

impl SqliteStore {
    /// Runs a write: refused before it starts, changing nothing, while the disk is below
    /// the reserve; and what it found (room, or a full disk) is remembered for `ping`.
    async fn write<T>(&self, op: impl Future<Output = Result<T>>) -> Result<T> {
        self.space.check_write()?;
        let outcome = op.await;
        self.space.note(&outcome);
        outcome
    }

    /// Runs `sql`, a `DELETE … WHERE id = ?1`, as a write; whether it removed a row.
    async fn delete_by_id(&self, sql: &'static str, id: Uuid) -> Result<bool> {
        self.write(async {
            let done = sqlx::query(sql)
                .bind(id)
                .execute(&self.writer)
                .await
                .map_err(be)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        // Taking the write lock up front means no transaction ever has to upgrade a read
        // lock, which is what makes SQLite answer SQLITE_BUSY without waiting.
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(be)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        self.space.check_ping()?;
        self.readers
            .read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(sqlite))
            .await
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        self.write(async {
            let key = username_key(&user.username);
            let inserted = sqlx::query(
                "INSERT INTO users (id, username, username_key, email, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(uuid(user.id))
            .bind(&user.username)
            .bind(&key)
            .bind(&user.email)
            .bind(&user.password_hash.0)
            .bind(to_micros(user.created_at))
            .execute(&self.writer)
            .await;
            let username_taken = found(
                sqlx::query("SELECT 1 FROM users WHERE username_key = ?1")
                    .bind(&key)
                    .fetch_optional(&self.writer),
            );
            insert_keyed(BACKEND, inserted, Entity::User, "username", username_taken).await
        })
        .await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
        self.readers
            .read(move |c| query_one(c, &sql, [uuid(id)], |r| user(r)))
            .await
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = ?1");
        let key = username_key(username);
        self.readers
            .read(move |c| query_one(c, &sql, params![key], |r| user(r)))
            .await
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        self.write(async {
            // The flag is read by the insert itself, under SQLite's write lock, so a
            // disable either commits before (and this inserts nothing) or after (and
            // deletes this session).
            let inserted = sqlx::query(
                "INSERT INTO sessions (token_hash, id, user_id, created_at, expires_at)
                 SELECT ?1, ?2, ?3, ?4, ?5
                 WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = ?3 AND disabled = 1)",
            )
            .bind(&session.token_hash.0[..])
            .bind(uuid(session.id))
            .bind(uuid(session.user_id))
            .bind(to_micros(session.created_at))
            .bind(to_micros(session.expires_at))
            .execute(&self.writer)
            .await;
            let token_taken = found(
                sqlx::query("SELECT 1 FROM sessions WHERE token_hash = ?1")
                    .bind(&session.token_hash.0[..])
                    .fetch_optional(&self.writer),
            );
            if matches!(&inserted, Ok(done) if done.rows_affected() == 0) {
                return Err(Error::Forbidden(Forbidden::UserDisabled));
            }
            insert_keyed(BACKEND, inserted, Entity::Session, "token", token_taken).await
        })
        .await
    }

    async fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1");
        let hash = token_hash.0;
        self.readers
            .read(move |c| query_one(c, &sql, params![&hash[..]], |r| session(r)))
            .await
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> Result<bool> {
        self.write(async {
            let done = sqlx::query("DELETE FROM sessions WHERE token_hash = ?1")
                .bind(&token_hash.0[..])
                .execute(&self.writer)
                .await
                .map_err(be)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.write(async {
            let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1")
                .bind(to_micros(now))
                .execute(&self.writer)
                .await
                .map_err(be)?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn create_conversation(&self, c: &Conversation) -> Result<()> {
        self.write(async {
            sqlx::query(
                "INSERT INTO conversations
                     (id, user_id, title, created_at, updated_at, message_count, last_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
            )
            .bind(uuid(c.id))
            .bind(uuid(c.user_id))
            .bind(&c.title)
            .bind(to_micros(c.created_at))
            .bind(to_micros(c.updated_at))
            .bind(to_i64(BACKEND, c.message_count, "message_count")?)
            .execute(&self.writer)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    conflict(Entity::Conversation, "id")
                } else {
                    be(e)
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1");
        self.readers
            .read(move |c| query_one(c, &sql, params![uuid(id)], |r| conversation(r)))
            .await
    }

    async fn list_conversations(
        &self,
        user: UserId,
        before: Option<ConversationId>,
        page: Limit,
    ) -> Result<Vec<Conversation>> {
        let sql = queries::list_conversations(Database::Sqlite, before.is_some());
        let params = keyset(blob(user), page, before);
        self.readers
            .read(move |c| query_all(c, &sql, params_from_iter(params), |r| conversation(r)))
            .await
    }

    async fn rename_conversation(
        &self,
        id: ConversationId,
        title: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>> {
        self.write(async {
            let found = sqlx::query(&format!(
                "UPDATE conversations SET title = ?2, updated_at = ?3 WHERE id = ?1
                 RETURNING {CONVERSATION_COLUMNS}"
            ))
            .bind(uuid(id))
            .bind(title)
            .bind(to_micros(at))
            .fetch_all(&self.writer)
            .await;
            one(returned(found), conversation)
        })
        .await
    }

    async fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        // Messages and their attachments go with it through ON DELETE CASCADE, in the same
        // statement and so the same transaction.
        self.delete_by_id("DELETE FROM conversations WHERE id = ?1", uuid(id))
            .await
    }

    async fn append_message(&self, draft: MessageDraft) -> Result<Message> {
        // Committed in a batch with the appends queued meanwhile: see `appends.rs`.
        self.write(self.appends.append(draft)).await
    }

    async fn get_message(&self, id: MessageId) -> Result<Option<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1");
        self.readers
            .read(move |c| query_one(c, &sql, params![uuid(id)], |r| message(r)))
            .await
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
        let sql = queries::list_messages(Database::Sqlite, ascending);
        self.readers
            .read(move |c| {
                let params = params![uuid(conversation), bound, limit(page)];
                query_all(c, &sql, params, |r| message(r))
            })
            .await
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> Result<bool> {
        self.write(async {
            let mut tx = self.write_tx().await?;
            // The commit below is what counts here, but the statement runs to its end all
            // the same, so that no error of its own is left unread.
            let conversation: Option<Uuid> = returned(
                sqlx::query_scalar("DELETE FROM messages WHERE id = ?1 RETURNING conversation_id")
                    .bind(uuid(id))
                    .fetch_all(&mut *tx)
                    .await,
            )
            .map_err(be)?;
            let Some(conversation) = conversation else {
                // Give the write lock back now rather than when the pool gets round to it.
                tx.rollback().await.map_err(be)?;
                return Ok(false);
            };
            sqlx::query(
                "UPDATE conversations SET message_count = message_count - 1, updated_at = ?2
                 WHERE id = ?1",
            )
            .bind(conversation)
            .bind(to_micros(at))
            .execute(&mut *tx)
            .await
            .map_err(be)?;
            tx.commit().await.map_err(be)?;
            Ok(true)
        })
        .await
    }

    async fn create_attachment(&self, a: &Attachment) -> Result<()> {
        self.write(async {
            // Inserting from the message row makes "the message exists and its conversation and
            // owner are these" one statement with the insert.
            let inserted = sqlx::query(
                "INSERT INTO attachments
                     (id, message_id, conversation_id, user_id, file_type, file_path, created_at)
                 SELECT ?1, id, conversation_id, user_id, ?5, ?6, ?7 FROM messages
                 WHERE id = ?2 AND conversation_id = ?3 AND user_id = ?4",
            )
            .bind(uuid(a.id))
            .bind(uuid(a.message_id))
            .bind(uuid(a.conversation_id))
            .bind(uuid(a.user_id))
            .bind(&a.file_type)
            .bind(&a.file_path)
            .bind(to_micros(a.created_at))
            .execute(&self.writer)
            .await;
            let inserted = inserted.map(|done| (done.rows_affected() > 0).then_some(()));
            let id_taken = found(
                sqlx::query("SELECT 1 FROM attachments WHERE id = ?1")
                    .bind(uuid(a.id))
                    .fetch_optional(&self.writer),
            );
            insert_under(
                BACKEND,
                inserted,
                Entity::Attachment,
                Entity::Message,
                id_taken,
            )
            .await
        })
        .await
    }

    async fn get_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = ?1");
        self.readers
            .read(move |c| query_one(c, &sql, params![uuid(id)], |r| attachment(r)))
            .await
    }

    async fn list_attachments(
        &self,
        message: MessageId,
        after: Option<AttachmentId>,
        page: Limit,
    ) -> Result<Vec<Attachment>> {
        let sql = queries::list_attachments(Database::Sqlite, after.is_some());
        let params = keyset(blob(message), page, after);
        self.readers
            .read(move |c| query_all(c, &sql, params_from_iter(params), |r| attachment(r)))
            .await
    }

    async fn delete_attachment(&self, id: AttachmentId) -> Result<bool> {
        self.delete_by_id("DELETE FROM attachments WHERE id = ?1", uuid(id))
            .await
    }

    async fn create_provider(&self, p: &LlmProvider) -> Result<()> {
        self.write(async {
            let key = provider_name_key(&p.name);
            let inserted = sqlx::query(
                "INSERT INTO providers (id, owner_id, name, name_key, api_endpoint, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(uuid(p.id))
            .bind(p.owner_id.map(uuid))
            .bind(&p.name)
            .bind(&key)
            .bind(&p.api_endpoint)
            .bind(to_micros(p.created_at))
            .execute(&self.writer)
            .await;
            let name_taken = found(
                sqlx::query("SELECT 1 FROM providers WHERE owner_id IS ?1 AND name_key = ?2")
                    .bind(p.owner_id.map(uuid))
                    .bind(&key)
                    .fetch_optional(&self.writer),
            );
            insert_keyed(BACKEND, inserted, Entity::Provider, "name", name_taken).await
        })
        .await
    }

    async fn get_provider(&self, id: ProviderId) -> Result<Option<LlmProvider>> {
        let sql = format!("SELECT {PROVIDER_COLUMNS} FROM providers WHERE id = ?1");
        self.readers
            .read(move |c| query_one(c, &sql, params![uuid(id)], |r| provider(r)))
            .await
    }

    async fn list_providers(
        &self,
        user: UserId,
        after: Option<ProviderId>,
        page: Limit,
    ) -> Result<Vec<LlmProvider>> {
        let sql = queries::list_providers(Database::Sqlite, after.is_some());
        let params = keyset(blob(user), page, after);
        self.readers
            .read(move |c| query_all(c, &sql, params_from_iter(params), |r| provider(r)))
            .await
    }

    async fn delete_provider(&self, id: ProviderId) -> Result<bool> {
        // The provider's configs go with it through ON DELETE CASCADE.
        self.delete_by_id("DELETE FROM providers WHERE id = ?1", uuid(id))
            .await
    }

    async fn create_config(&self, c: &UserLlmConfig) -> Result<()> {
        self.write(async {
            let inserted = sqlx::query(
                "INSERT INTO configs
                     (id, user_id, provider_id, sealed_key, api_key_hint, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(uuid(c.id))
            .bind(uuid(c.user_id))
            .bind(uuid(c.provider_id))
            .bind(&c.sealed_key.0)
            .bind(&c.api_key_hint)
            .bind(to_micros(c.created_at))
            .bind(to_micros(c.updated_at))
            .execute(&self.writer)
            .await;
            // Report what MemoryStore reports first: a missing provider, then the
            // (user, provider) clash, then the id.
            let pair_taken = async {
                let provider = sqlx::query("SELECT 1 FROM providers WHERE id = ?1")
                    .bind(uuid(c.provider_id))
                    .fetch_optional(&self.writer);
                if !found(provider).await? {
                    return Err(Error::NotFound(Entity::Provider));
                }
                found(
                    sqlx::query("SELECT 1 FROM configs WHERE user_id = ?1 AND provider_id = ?2")
                        .bind(uuid(c.user_id))
                        .bind(uuid(c.provider_id))
                        .fetch_optional(&self.writer),
                )
                .await
            };
            if matches!(&inserted, Err(e) if is_foreign_key_violation(e)) {
                return Err(Error::NotFound(Entity::Provider));
            }
            insert_keyed(BACKEND, inserted, Entity::Config, "provider_id", pair_taken).await
        })
        .await
    }

    async fn get_config(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<UserLlmConfig>> {
        let sql =
            format!("SELECT {CONFIG_COLUMNS} FROM configs WHERE user_id = ?1 AND provider_id = ?2");
        self.readers
            .read(move |c| query_one(c, &sql, params![uuid(user), uuid(provider)], |r| config(r)))
            .await
    }

    async fn update_config(
        &self,
        user: UserId,
        provider: ProviderId,
        sealed_key: SealedKey,
        api_key_hint: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<UserLlmConfig>> {
        self.write(async {
            let found = sqlx::query(&format!(
                "UPDATE configs SET sealed_key = ?3, api_key_hint = ?4, updated_at = ?5
                 WHERE user_id = ?1 AND provider_id = ?2
                 RETURNING {CONFIG_COLUMNS}"
            ))
            .bind(uuid(user))
            .bind(uuid(provider))
            .bind(sealed_key.0)
            .bind(api_key_hint)
            .bind(to_micros(at))
            .fetch_all(&self.writer)
            .await;
            one(returned(found), config)
        })
        .await
    }

    async fn delete_config(&self, user: UserId, provider: ProviderId) -> Result<bool> {
        self.write(async {
            let done = sqlx::query("DELETE FROM configs WHERE user_id = ?1 AND provider_id = ?2")
                .bind(uuid(user))
                .bind(uuid(provider))
                .execute(&self.writer)
                .await
                .map_err(be)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn scan(&self, from: ScanCursor, page: Limit) -> Result<Vec<Record>> {
        let sql = scan_sql(&from, MESSAGE_COLUMNS, |n| format!("?{n}"));
        let mut params: Vec<Value> = cursor_key(&from).into_iter().map(key_value).collect();
        params.push(Value::Integer(limit(page)));
        let kind = from.kind();
        self.readers
            .read(move |c| query_all(c, &sql, params_from_iter(params), |row| record(kind, row)))
            .await
    }

    async fn import(&self, record: &Record) -> Result<bool> {
        match record {
            Record::User(account) => self.write(self.import_user(account)).await,
            Record::Conversation {
                conversation,
                last_seq,
            } => {
                self.write(self.import_conversation(conversation, *last_seq))
                    .await
            }
            Record::Message(message) => self.write(self.import_message(message)).await,
            other => import_plain(self, other).await,
        }
    }

    async fn set_user_disabled(&self, user: UserId, disabled: bool) -> Result<bool> {
        self.write(async {
            let mut tx = self.write_tx().await?;
            let done = sqlx::query("UPDATE users SET disabled = ?2 WHERE id = ?1")
                .bind(uuid(user))
                .bind(disabled)
                .execute(&mut *tx)
                .await
                .map_err(be)?;
            if done.rows_affected() == 0 {
                tx.rollback().await.map_err(be)?;
                return Ok(false);
            }
            if disabled {
                sqlx::query("DELETE FROM sessions WHERE user_id = ?1")
                    .bind(uuid(user))
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
            }
            tx.commit().await.map_err(be)?;
            Ok(true)
        })
        .await
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
                 WHERE updated_at < ?1 ORDER BY id LIMIT ?2"
            ),
            Some(_) => format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations
                 WHERE updated_at < ?1 AND id > ?3 ORDER BY id LIMIT ?2"
            ),
        };
        let params = keyset(Value::Integer(to_micros(updated_before)), page, after);
        self.readers
            .read(move |c| query_all(c, &sql, params_from_iter(params), |r| conversation(r)))
            .await
    }
}

/// The imports no create call can do: each keeps what the record says, and answers
/// `false` for a record already there.
impl SqliteStore {
    async fn import_user(&self, account: &UserAccount) -> Result<bool> {
        let u = &account.user;
        let done = sqlx::query(
            "INSERT INTO users
                 (id, username, username_key, email, password_hash, created_at, disabled)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(uuid(u.id))
        .bind(&u.username)
        .bind(username_key(&u.username))
        .bind(&u.email)
        .bind(&u.password_hash.0)
        .bind(to_micros(u.created_at))
        .bind(account.disabled)
        .execute(&self.writer)
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(uuid(c.id))
        .bind(uuid(c.user_id))
        .bind(&c.title)
        .bind(to_micros(c.created_at))
        .bind(to_micros(c.updated_at))
        .bind(to_i64(BACKEND, c.message_count, "message_count")?)
        .bind(to_i64(BACKEND, last_seq, "last_seq")?)
        .execute(&self.writer)
        .await
        .map_err(be)?;
        Ok(done.rows_affected() > 0)
    }

    async fn import_message(&self, m: &Message) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        // The schema's trigger moves the counters on every insert; an import must not, so
        // they are read first and put back after, in the same transaction.
        let counters: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT message_count, updated_at, last_seq FROM conversations
             WHERE id = ?1 AND user_id = ?2",
        )
        .bind(uuid(m.conversation_id))
        .bind(uuid(m.user_id))
        .fetch_optional(&mut *tx)
        .await
        .map_err(be)?;
        let Some((count, updated_at, last_seq)) = counters else {
            tx.rollback().await.map_err(be)?;
            return Err(Error::NotFound(Entity::Conversation));
        };
        let seq = to_i64(BACKEND, m.seq, "seq")?;
        let done = sqlx::query(
            "INSERT INTO messages
                 (id, conversation_id, user_id, seq, role, content, metadata, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(uuid(m.id))
        .bind(uuid(m.conversation_id))
        .bind(uuid(m.user_id))
        .bind(seq)
        .bind(m.role.as_str())
        .bind(&m.content)
        .bind(metadata_to_text(m.metadata.as_ref()))
        .bind(to_micros(m.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                conflict(Entity::Message, "seq")
            } else {
                be(e)
            }
        })?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(be)?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE conversations SET message_count = ?2, updated_at = ?3, last_seq = ?4
             WHERE id = ?1",
        )
        .bind(uuid(m.conversation_id))
        .bind(count)
        .bind(updated_at)
        .bind(last_seq.max(seq))
        .execute(&mut *tx)
        .await
        .map_err(be)?;
        tx.commit().await.map_err(be)?;
        Ok(true)
    }
}
