//! A store of your own, and how to test it with chat-core's test kit.
//!
//! `CountingStore` counts the calls it serves and keeps its data in a [`MemoryStore`] that
//! can be shared between handles, so that a second handle opened on the same data sees
//! everything the first one wrote: enough to show a store that can be "reopened".
//!
//! ```sh
//! cargo run -p chat-store-examples --example custom_store
//! cargo test -p chat-store-examples --example custom_store
//! ```
//!
//! The tests at the bottom run the whole suite (every case, the races, the durability case
//! and the property test) against it with one macro call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chat_core::{
    Attachment, AttachmentId, Conversation, ConversationId, Limit, LlmProvider, MemoryStore,
    Message, MessageDraft, MessageId, MessageOrder, ProviderId, Record, Result, ScanCursor,
    SealedKey, Session, Store, TokenHash, User, UserId, UserLlmConfig,
};
use chrono::{DateTime, Utc};

/// A [`Store`] that counts the calls it serves.
pub struct CountingStore {
    data: Arc<MemoryStore>,
    calls: AtomicU64,
}

impl CountingStore {
    /// A store with no data.
    pub fn new() -> Self {
        Self::open(Arc::new(MemoryStore::new()))
    }

    /// A new handle on `data`, which other handles may share.
    pub fn open(data: Arc<MemoryStore>) -> Self {
        Self {
            data,
            calls: AtomicU64::new(0),
        }
    }

    /// How many calls this handle has served.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn inner(&self) -> &MemoryStore {
        self.calls.fetch_add(1, Ordering::Relaxed);
        &self.data
    }
}

impl Default for CountingStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Store for CountingStore {
    fn backend(&self) -> &'static str {
        "counting"
    }

    async fn ping(&self) -> Result<()> {
        self.inner().ping().await
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        self.inner().create_user(user).await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        self.inner().get_user(id).await
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        self.inner().get_user_by_username(username).await
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        self.inner().create_session(session).await
    }

    async fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>> {
        self.inner().get_session(token_hash).await
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> Result<bool> {
        self.inner().delete_session(token_hash).await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.inner().delete_expired_sessions(now).await
    }

    async fn create_conversation(&self, conversation: &Conversation) -> Result<()> {
        self.inner().create_conversation(conversation).await
    }

    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        self.inner().get_conversation(id).await
    }

    async fn list_conversations(
        &self,
        user: UserId,
        before: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>> {
        self.inner().list_conversations(user, before, limit).await
    }

    async fn rename_conversation(
        &self,
        id: ConversationId,
        title: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>> {
        self.inner().rename_conversation(id, title, at).await
    }

    async fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        self.inner().delete_conversation(id).await
    }

    async fn append_message(&self, draft: MessageDraft) -> Result<Message> {
        self.inner().append_message(draft).await
    }

    async fn get_message(&self, id: MessageId) -> Result<Option<Message>> {
        self.inner().get_message(id).await
    }

    async fn list_messages(
        &self,
        conversation: ConversationId,
        order: MessageOrder,
        limit: Limit,
    ) -> Result<Vec<Message>> {
        self.inner().list_messages(conversation, order, limit).await
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> Result<bool> {
        self.inner().delete_message(id, at).await
    }

    async fn create_attachment(&self, attachment: &Attachment) -> Result<()> {
        self.inner().create_attachment(attachment).await
    }

    async fn get_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        self.inner().get_attachment(id).await
    }

    async fn list_attachments(
        &self,
        message: MessageId,
        after: Option<AttachmentId>,
        limit: Limit,
    ) -> Result<Vec<Attachment>> {
        self.inner().list_attachments(message, after, limit).await
    }

    async fn delete_attachment(&self, id: AttachmentId) -> Result<bool> {
        self.inner().delete_attachment(id).await
    }

    async fn create_provider(&self, provider: &LlmProvider) -> Result<()> {
        self.inner().create_provider(provider).await
    }

    async fn get_provider(&self, id: ProviderId) -> Result<Option<LlmProvider>> {
        self.inner().get_provider(id).await
    }

    async fn list_providers(
        &self,
        user: UserId,
        after: Option<ProviderId>,
        limit: Limit,
    ) -> Result<Vec<LlmProvider>> {
        self.inner().list_providers(user, after, limit).await
    }

    async fn delete_provider(&self, id: ProviderId) -> Result<bool> {
        self.inner().delete_provider(id).await
    }

    async fn create_config(&self, config: &UserLlmConfig) -> Result<()> {
        self.inner().create_config(config).await
    }

    async fn get_config(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<UserLlmConfig>> {
        self.inner().get_config(user, provider).await
    }

    async fn update_config(
        &self,
        user: UserId,
        provider: ProviderId,
        sealed_key: SealedKey,
        api_key_hint: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<UserLlmConfig>> {
        self.inner()
            .update_config(user, provider, sealed_key, api_key_hint, at)
            .await
    }

    async fn delete_config(&self, user: UserId, provider: ProviderId) -> Result<bool> {
        self.inner().delete_config(user, provider).await
    }

    async fn scan(&self, from: ScanCursor, limit: Limit) -> Result<Vec<Record>> {
        self.inner().scan(from, limit).await
    }

    async fn import(&self, record: &Record) -> Result<bool> {
        self.inner().import(record).await
    }

    async fn set_user_disabled(&self, user: UserId, disabled: bool) -> Result<bool> {
        self.inner().set_user_disabled(user, disabled).await
    }

    async fn list_idle_conversations(
        &self,
        updated_before: DateTime<Utc>,
        after: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>> {
        self.inner()
            .list_idle_conversations(updated_before, after, limit)
            .await
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let data = Arc::new(MemoryStore::new());
    let store = CountingStore::open(Arc::clone(&data));
    let user = User {
        id: UserId::new(),
        username: "ada".to_owned(),
        email: None,
        password_hash: chat_core::PasswordHash("$argon2id$…".to_owned()),
        created_at: chat_core::time::now(),
    };
    store.create_user(&user).await?;
    assert_eq!(store.get_user_by_username("ADA").await?, Some(user.clone()));
    println!("{} calls served", store.calls());

    // A second handle on the same data: what "reopening" means for this store.
    let again = CountingStore::open(data);
    assert_eq!(again.get_user(user.id).await?, Some(user));
    println!("reopened: {} call served", again.calls());
    Ok(())
}

/// The test kit, run against `CountingStore`.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chat_core::MemoryStore;
    use chat_core::testkit::{ReopenableStoreFactory, StoreFactory};

    use super::CountingStore;

    /// Hands out fresh stores. The guard is the data itself, so that the durability case
    /// can open a second handle on it; a store on disk would keep a `tempfile::TempDir`
    /// here, and a store in a database the name of a schema to drop in `destroy`.
    struct Fresh;

    impl StoreFactory for Fresh {
        type Store = CountingStore;
        type Guard = Arc<MemoryStore>;

        async fn create(&self) -> (CountingStore, Arc<MemoryStore>) {
            let data = Arc::new(MemoryStore::new());
            (CountingStore::open(Arc::clone(&data)), data)
        }
    }

    impl ReopenableStoreFactory for Fresh {
        async fn reopen(&self, data: &Arc<MemoryStore>) -> CountingStore {
            CountingStore::open(Arc::clone(data))
        }
    }

    // One test per case, named `tests::counting_store::<case>`, plus the durability case
    // and the property test.
    chat_core::store_tests!(counting_store, Fresh, durable, proptest_cases = 32);
}
