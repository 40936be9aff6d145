//! [`MeteredStore`]: any [`Store`] with each operation's latency recorded, so it is measured
//! once, here, and not in each store.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chat_core::{
    Attachment, AttachmentId, Conversation, ConversationId, Limit, LlmProvider, Message,
    MessageDraft, MessageId, MessageOrder, ProviderId, Record, Result, ScanCursor, SealedKey,
    Session, Store, TokenHash, User, UserId, UserLlmConfig,
};
use chrono::{DateTime, Utc};

use super::STORE_DURATION;

/// A [`Store`] that records how long each operation of the store it wraps takes, in
/// `store_operation_duration_seconds{operation, outcome}`. The operation label is the
/// method's name; nothing else about the call is recorded.
#[derive(Clone)]
pub struct MeteredStore {
    inner: Arc<dyn Store>,
}

impl MeteredStore {
    /// Wraps `store`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { inner: store }
    }

    /// `store`, wrapped, as a store.
    #[must_use]
    pub fn wrap(store: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(Self::new(store))
    }
}

impl std::fmt::Debug for MeteredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredStore")
            .field("backend", &self.inner.backend())
            .finish_non_exhaustive()
    }
}

fn observe<T>(operation: &'static str, started: Instant, result: &Result<T>) {
    let outcome = if result.is_ok() { "ok" } else { "error" };
    ::metrics::histogram!(STORE_DURATION, "operation" => operation, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

/// Implements [`Store`] for [`MeteredStore`]: one line per operation, its name, arguments
/// and answer, each forwarded to the inner store and timed. A new `Store` method is one
/// more line here.
macro_rules! metered {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $answer:ty;)*) => {
        #[async_trait]
        impl Store for MeteredStore {
            fn backend(&self) -> &'static str {
                self.inner.backend()
            }

            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$answer> {
                    let started = Instant::now();
                    let result = self.inner.$name($($arg),*).await;
                    observe(stringify!($name), started, &result);
                    result
                }
            )*
        }
    };
}

metered! {
    fn ping() -> ();
    fn create_user(user: &User) -> ();
    fn get_user(id: UserId) -> Option<User>;
    fn get_user_by_username(username: &str) -> Option<User>;
    fn create_session(session: &Session) -> ();
    fn get_session(token_hash: &TokenHash) -> Option<Session>;
    fn delete_session(token_hash: &TokenHash) -> bool;
    fn delete_expired_sessions(now: DateTime<Utc>) -> u64;
    fn create_conversation(conversation: &Conversation) -> ();
    fn get_conversation(id: ConversationId) -> Option<Conversation>;
    fn list_conversations(user: UserId, before: Option<ConversationId>, limit: Limit) -> Vec<Conversation>;
    fn rename_conversation(id: ConversationId, title: &str, at: DateTime<Utc>) -> Option<Conversation>;
    fn delete_conversation(id: ConversationId) -> bool;
    fn append_message(draft: MessageDraft) -> Message;
    fn get_message(id: MessageId) -> Option<Message>;
    fn list_messages(conversation: ConversationId, order: MessageOrder, limit: Limit) -> Vec<Message>;
    fn delete_message(id: MessageId, at: DateTime<Utc>) -> bool;
    fn create_attachment(attachment: &Attachment) -> ();
    fn get_attachment(id: AttachmentId) -> Option<Attachment>;
    fn list_attachments(message: MessageId, after: Option<AttachmentId>, limit: Limit) -> Vec<Attachment>;
    fn delete_attachment(id: AttachmentId) -> bool;
    fn create_provider(provider: &LlmProvider) -> ();
    fn get_provider(id: ProviderId) -> Option<LlmProvider>;
    fn list_providers(user: UserId, after: Option<ProviderId>, limit: Limit) -> Vec<LlmProvider>;
    fn delete_provider(id: ProviderId) -> bool;
    fn create_config(config: &UserLlmConfig) -> ();
    fn get_config(user: UserId, provider: ProviderId) -> Option<UserLlmConfig>;
    fn update_config(user: UserId, provider: ProviderId, sealed_key: SealedKey, api_key_hint: Option<String>, at: DateTime<Utc>) -> Option<UserLlmConfig>;
    fn delete_config(user: UserId, provider: ProviderId) -> bool;
    fn scan(from: ScanCursor, limit: Limit) -> Vec<Record>;
    fn import(record: &Record) -> bool;
    fn set_user_disabled(user: UserId, disabled: bool) -> bool;
    fn list_idle_conversations(updated_before: DateTime<Utc>, after: Option<ConversationId>, limit: Limit) -> Vec<Conversation>;
}
