//! The storage trait that every backend implements.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::ids::{AttachmentId, ConversationId, MessageId, ProviderId, UserId};
use crate::model::{
    Attachment, Conversation, LlmProvider, Message, MessageDraft, Session, TokenHash, User,
    UserLlmConfig,
};
use crate::records::{Record, ScanCursor};
use crate::secrets::SealedKey;
use crate::validation::Limit;

/// Which end of a conversation a page of messages is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageOrder {
    /// Oldest first, starting after `seq` (from the start when `None`).
    Ascending {
        /// Only messages with a greater `seq`.
        after: Option<u64>,
    },
    /// Newest first, starting before `seq` (from the end when `None`).
    Descending {
        /// Only messages with a smaller `seq`.
        before: Option<u64>,
    },
}

impl Default for MessageOrder {
    fn default() -> Self {
        MessageOrder::Ascending { after: None }
    }
}

/// Persistence for chat-store: users, sessions, conversations, messages, attachments, LLM
/// providers and users' LLM configs.
///
/// A store keeps data and keeps it consistent; it makes no decision about who may see what.
/// That belongs to [`ChatService`](crate::ChatService), which validates every input and
/// checks access before it calls a store. Callers hand in complete records (ids and times
/// included), so the same calls give the same results on every store.
///
/// # The contract
///
/// Every implementation keeps these promises; the `testkit` feature's suite checks them.
///
/// - **`seq` is the store's.** [`append_message`](Store::append_message) gives the message
///   the next position in its conversation: 1, 2, 3, … unique and without gaps under any
///   number of concurrent appenders, including appenders in other processes over the same
///   database. A deleted message's `seq` is never given out again.
/// - **Appends move the conversation.** Appending sets the conversation's `updated_at` to
///   the message's `created_at` and adds one to `message_count`; deleting a message subtracts
///   one and sets `updated_at` to the given time. Both happen atomically with the change.
/// - **Deletes cascade, atomically.** Deleting a conversation removes its messages and their
///   attachments; deleting a message removes its attachments; deleting a provider removes the
///   configs that use it. No reader ever sees a half-done delete, and no append or attachment
///   racing a delete survives it as an orphan.
/// - **Uniqueness.** Usernames are unique ignoring ASCII case
///   ([`username_key`](crate::username_key)); provider names are unique per owner (shared
///   providers being one owner) ignoring Unicode case ([`provider_name_key`](crate::provider_name_key));
///   there is one config per (user, provider). A clash is [`Error::Conflict`](crate::Error::Conflict).
///   So is an id that is already taken.
/// - **Durability.** An `Ok` from a write means the change survives the process being killed
///   right after; what "durable" means for the machine (a flush to the OS, an fsync) each
///   store documents. The answer follows the commit: a write whose commit (or flush) fails
///   answers an error, never `Ok`, and leaves nothing of itself visible.
/// - **Faults are typed.** A full disk, or a database that cannot be reached, answers
///   [`Error::Unavailable`](crate::Error::Unavailable) with its
///   [`reason`](crate::Unavailable): the request changed nothing and may be retried. When
///   the fault passes, the store serves again without being reopened. Reads go on while
///   only writes are refused.
/// - **Paging.** Lists take a cursor and a [`Limit`], return at most `limit` items in a
///   fixed order, and cost in proportion to the page, not to everything stored. A cursor is
///   a position and need not name an existing object.
/// - **Missing is not an error for reads.** `get_*` answer `Ok(None)` and deletes `Ok(false)`
///   for what does not exist; writes that need a parent answer
///   [`Error::NotFound`](crate::Error::NotFound) for a missing parent.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and errors: `"memory"`, `"sled"`, `"sqlite"`, `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Answers `Ok` when the store can serve reads and writes, and
    /// [`Error::Unavailable`](crate::Error::Unavailable) saying why when it cannot (its disk
    /// is full, its database cannot be reached). Cheap enough for a readiness probe.
    async fn ping(&self) -> Result<()>;

    // ----- users and sessions -----

    /// Adds a user. [`Conflict`](crate::Error::Conflict) on `username` if the name is taken
    /// ignoring ASCII case.
    async fn create_user(&self, user: &User) -> Result<()>;

    /// The user with this id.
    async fn get_user(&self, id: UserId) -> Result<Option<User>>;

    /// The user whose name matches `username` ignoring ASCII case.
    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>>;

    /// Adds a login session. [`Forbidden`](crate::Error::Forbidden) with
    /// [`UserDisabled`](crate::Forbidden::UserDisabled) if its user is disabled, decided in
    /// the same commit as the insert, so a login racing
    /// [`set_user_disabled`](Store::set_user_disabled) either ends before it (and its
    /// session is removed with the others) or is refused. A session may name a user id the
    /// store does not hold.
    async fn create_session(&self, session: &Session) -> Result<()>;

    /// The session whose token hashes to `token_hash`, expired or not.
    async fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>>;

    /// Revokes a session. `false` if there was none.
    async fn delete_session(&self, token_hash: &TokenHash) -> Result<bool>;

    /// Removes every session that expired at or before `now`; answers how many.
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64>;

    // ----- conversations -----

    /// Adds a conversation as given (its `message_count` is 0 and `updated_at` equals
    /// `created_at` when it comes from the service).
    async fn create_conversation(&self, conversation: &Conversation) -> Result<()>;

    /// The conversation with this id.
    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>>;

    /// `user`'s conversations, newest first (descending id), with ids below `before`.
    async fn list_conversations(
        &self,
        user: UserId,
        before: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>>;

    /// Sets the title and `updated_at`; answers the conversation as it now is.
    async fn rename_conversation(
        &self,
        id: ConversationId,
        title: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>>;

    /// Deletes the conversation with its messages and their attachments.
    async fn delete_conversation(&self, id: ConversationId) -> Result<bool>;

    // ----- messages -----

    /// Appends a message, giving it the conversation's next `seq`.
    ///
    /// [`NotFound`](crate::Error::NotFound) if the conversation does not exist or does not
    /// belong to `draft.user_id`.
    async fn append_message(&self, draft: MessageDraft) -> Result<Message>;

    /// The message with this id.
    async fn get_message(&self, id: MessageId) -> Result<Option<Message>>;

    /// A page of a conversation's messages in `order`. Empty for an unknown conversation.
    async fn list_messages(
        &self,
        conversation: ConversationId,
        order: MessageOrder,
        limit: Limit,
    ) -> Result<Vec<Message>>;

    /// Deletes a message and its attachments, and updates its conversation's counters.
    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> Result<bool>;

    // ----- attachments -----

    /// Adds an attachment. [`NotFound`](crate::Error::NotFound) if its message does not exist
    /// or its `conversation_id` or `user_id` are not the message's.
    async fn create_attachment(&self, attachment: &Attachment) -> Result<()>;

    /// The attachment with this id.
    async fn get_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>>;

    /// A page of a message's attachments, by ascending id, with ids above `after`.
    async fn list_attachments(
        &self,
        message: MessageId,
        after: Option<AttachmentId>,
        limit: Limit,
    ) -> Result<Vec<Attachment>>;

    /// Deletes an attachment.
    async fn delete_attachment(&self, id: AttachmentId) -> Result<bool>;

    // ----- LLM providers -----

    /// Adds a provider. [`Conflict`](crate::Error::Conflict) on `name` if its owner (or the
    /// shared set) has one of that name ignoring case.
    async fn create_provider(&self, provider: &LlmProvider) -> Result<()>;

    /// The provider with this id.
    async fn get_provider(&self, id: ProviderId) -> Result<Option<LlmProvider>>;

    /// A page of the providers `user` can see (shared ones and their own), by ascending id,
    /// with ids above `after`.
    async fn list_providers(
        &self,
        user: UserId,
        after: Option<ProviderId>,
        limit: Limit,
    ) -> Result<Vec<LlmProvider>>;

    /// Deletes a provider and every config that uses it.
    async fn delete_provider(&self, id: ProviderId) -> Result<bool>;

    // ----- user LLM configs -----

    /// Adds a config. [`NotFound`](crate::Error::NotFound) if the provider does not exist;
    /// [`Conflict`](crate::Error::Conflict) on `provider_id` if the user has a config for it.
    async fn create_config(&self, config: &UserLlmConfig) -> Result<()>;

    /// `user`'s config for `provider`.
    async fn get_config(&self, user: UserId, provider: ProviderId)
    -> Result<Option<UserLlmConfig>>;

    /// Replaces the sealed key and its hint and sets `updated_at`; answers the config as it
    /// now is.
    async fn update_config(
        &self,
        user: UserId,
        provider: ProviderId,
        sealed_key: SealedKey,
        api_key_hint: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<UserLlmConfig>>;

    /// Deletes `user`'s config for `provider`.
    async fn delete_config(&self, user: UserId, provider: ProviderId) -> Result<bool>;

    // ----- operators: copying, disabling, pruning -----

    /// A page of the records of `from`'s kind, complete (password hashes, sealed keys as
    /// stored, a conversation's last `seq`), in that kind's key order (see [`ScanCursor`])
    /// after `from`'s key, at most `limit` of them.
    ///
    /// Paging with [`Record::cursor`] of the last record of each page sees every record
    /// that was there for the whole scan exactly once, whatever the page size. Nothing of a
    /// deleted conversation is answered. Each page costs in proportion to the page.
    async fn scan(&self, from: ScanCursor, limit: Limit) -> Result<Vec<Record>>;

    /// Adds a record exactly as given: ids, times, a message's `seq`, a conversation's
    /// counters and last `seq`, a user's disabled flag and a config's sealed key are kept,
    /// and nothing else moves (importing a message leaves its conversation's counters as
    /// they are, except that its last `seq` is raised to the message's if it was below).
    ///
    /// Answers `Ok(false)`, changing nothing, when the object is already there: a user,
    /// provider, conversation, message or attachment of that id, a session of that token
    /// hash, a config for that (user, provider). The one there is kept, not overwritten,
    /// so an interrupted copy can be run again. Other clashes are
    /// [`Conflict`](crate::Error::Conflict) and a missing parent
    /// [`NotFound`](crate::Error::NotFound), as for the `create_*` calls. Parents go first:
    /// see [`RecordKind::ALL`](crate::RecordKind::ALL).
    async fn import(&self, record: &Record) -> Result<bool>;

    /// Disables or enables a user; `false` if there is no such user.
    ///
    /// Disabling removes every session of the user in the same commit (or, where a store
    /// cannot, hides them from [`get_session`](Store::get_session) from that commit on and
    /// removes them before answering), and from then on
    /// [`create_session`](Store::create_session) refuses the user. Enabling lets them log
    /// in again; revoked sessions stay revoked.
    async fn set_user_disabled(&self, user: UserId, disabled: bool) -> Result<bool>;

    /// A page of the conversations (of every user) whose `updated_at` is before
    /// `updated_before`, by ascending id, with ids above `after`: what a retention policy
    /// deletes. The cost may follow the number of conversations scanned to fill the page.
    async fn list_idle_conversations(
        &self,
        updated_before: DateTime<Utc>,
        after: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>>;
}
