//! The commit-fault case must catch a store that answers a write before its commit and
//! loses it when the commit fails (what the SQLite store once did on a full disk), and must
//! pass a store that refuses such writes honestly.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chat_core::testkit::faults::{CommitFaultFactory, writes_whose_commit_fails_are_refused};
use chat_core::testkit::{StoreFactory, run_factory_case};
use chat_core::{
    Attachment, AttachmentId, Conversation, ConversationId, Error, Limit, LlmProvider, MemoryStore,
    Message, MessageDraft, MessageId, MessageOrder, ProviderId, Record, Result, ScanCursor,
    SealedKey, Session, Store, TokenHash, Unavailable, User, UserId, UserLlmConfig,
};
use chrono::{DateTime, Utc};

/// `MemoryStore` whose commits can fail. With `acks_lost_appends`, an append whose commit
/// fails is still answered with the message it would have made.
struct Faulty {
    inner: MemoryStore,
    failing: Arc<AtomicBool>,
    acks_lost_appends: bool,
}

impl Faulty {
    /// `Err` while commits fail, as an honest store answers.
    fn commit(&self) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            Err(Error::unavailable(
                "faulty",
                Unavailable::OutOfSpace,
                "the commit failed",
            ))
        } else {
            Ok(())
        }
    }
}

/// Reads go straight through.
macro_rules! read {
    ($self:ident.$method:ident($($arg:expr),*)) => {
        $self.inner.$method($($arg),*).await
    };
}

/// Writes go through only while commits succeed.
macro_rules! write {
    ($self:ident.$method:ident($($arg:expr),*)) => {{
        $self.commit()?;
        $self.inner.$method($($arg),*).await
    }};
}

#[async_trait]
impl Store for Faulty {
    fn backend(&self) -> &'static str {
        "faulty"
    }
    async fn ping(&self) -> Result<()> {
        read!(self.ping())
    }
    async fn create_user(&self, user: &User) -> Result<()> {
        write!(self.create_user(user))
    }
    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        read!(self.get_user(id))
    }
    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        read!(self.get_user_by_username(username))
    }
    async fn create_session(&self, session: &Session) -> Result<()> {
        write!(self.create_session(session))
    }
    async fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>> {
        read!(self.get_session(token_hash))
    }
    async fn delete_session(&self, token_hash: &TokenHash) -> Result<bool> {
        write!(self.delete_session(token_hash))
    }
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        write!(self.delete_expired_sessions(now))
    }
    async fn create_conversation(&self, conversation: &Conversation) -> Result<()> {
        write!(self.create_conversation(conversation))
    }
    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        read!(self.get_conversation(id))
    }
    async fn list_conversations(
        &self,
        user: UserId,
        before: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>> {
        read!(self.list_conversations(user, before, limit))
    }
    async fn rename_conversation(
        &self,
        id: ConversationId,
        title: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>> {
        write!(self.rename_conversation(id, title, at))
    }
    async fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        write!(self.delete_conversation(id))
    }
    async fn append_message(&self, draft: MessageDraft) -> Result<Message> {
        if self.acks_lost_appends && self.failing.load(Ordering::SeqCst) {
            // The statement ran and numbered the message; the commit then failed, unseen.
            let conversation = self.inner.get_conversation(draft.conversation_id).await?;
            let count = conversation.map_or(0, |c| c.message_count);
            return Ok(draft.with_seq(count + 1));
        }
        write!(self.append_message(draft))
    }
    async fn get_message(&self, id: MessageId) -> Result<Option<Message>> {
        read!(self.get_message(id))
    }
    async fn list_messages(
        &self,
        conversation: ConversationId,
        order: MessageOrder,
        limit: Limit,
    ) -> Result<Vec<Message>> {
        read!(self.list_messages(conversation, order, limit))
    }
    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> Result<bool> {
        write!(self.delete_message(id, at))
    }
    async fn create_attachment(&self, attachment: &Attachment) -> Result<()> {
        write!(self.create_attachment(attachment))
    }
    async fn get_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        read!(self.get_attachment(id))
    }
    async fn list_attachments(
        &self,
        message: MessageId,
        after: Option<AttachmentId>,
        limit: Limit,
    ) -> Result<Vec<Attachment>> {
        read!(self.list_attachments(message, after, limit))
    }
    async fn delete_attachment(&self, id: AttachmentId) -> Result<bool> {
        write!(self.delete_attachment(id))
    }
    async fn create_provider(&self, provider: &LlmProvider) -> Result<()> {
        write!(self.create_provider(provider))
    }
    async fn get_provider(&self, id: ProviderId) -> Result<Option<LlmProvider>> {
        read!(self.get_provider(id))
    }
    async fn list_providers(
        &self,
        user: UserId,
        after: Option<ProviderId>,
        limit: Limit,
    ) -> Result<Vec<LlmProvider>> {
        read!(self.list_providers(user, after, limit))
    }
    async fn delete_provider(&self, id: ProviderId) -> Result<bool> {
        write!(self.delete_provider(id))
    }
    async fn create_config(&self, config: &UserLlmConfig) -> Result<()> {
        write!(self.create_config(config))
    }
    async fn get_config(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<UserLlmConfig>> {
        read!(self.get_config(user, provider))
    }
    async fn update_config(
        &self,
        user: UserId,
        provider: ProviderId,
        sealed_key: SealedKey,
        api_key_hint: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<UserLlmConfig>> {
        write!(self.update_config(user, provider, sealed_key, api_key_hint, at))
    }
    async fn delete_config(&self, user: UserId, provider: ProviderId) -> Result<bool> {
        write!(self.delete_config(user, provider))
    }

    async fn scan(&self, from: ScanCursor, limit: Limit) -> Result<Vec<Record>> {
        read!(self.scan(from, limit))
    }
    async fn import(&self, record: &Record) -> Result<bool> {
        write!(self.import(record))
    }
    async fn set_user_disabled(&self, user: UserId, disabled: bool) -> Result<bool> {
        write!(self.set_user_disabled(user, disabled))
    }
    async fn list_idle_conversations(
        &self,
        updated_before: DateTime<Utc>,
        after: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>> {
        read!(self.list_idle_conversations(updated_before, after, limit))
    }
}

struct Factory {
    acks_lost_appends: bool,
}

impl StoreFactory for Factory {
    type Store = Faulty;
    /// The switch the store's commits read.
    type Guard = Arc<AtomicBool>;

    async fn create(&self) -> (Faulty, Arc<AtomicBool>) {
        let failing = Arc::new(AtomicBool::new(false));
        let store = Faulty {
            inner: MemoryStore::new(),
            failing: Arc::clone(&failing),
            acks_lost_appends: self.acks_lost_appends,
        };
        (store, failing)
    }
}

impl CommitFaultFactory for Factory {
    async fn fail_commits(&self, failing: &Arc<AtomicBool>, fail: bool) {
        failing.store(fail, Ordering::SeqCst);
    }
}

fn run(acks_lost_appends: bool) -> Option<String> {
    let factory = Factory { acks_lost_appends };
    catch_unwind(AssertUnwindSafe(|| {
        run_factory_case(&factory, writes_whose_commit_fails_are_refused(&factory));
    }))
    .err()
    .map(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}

#[test]
fn an_append_acknowledged_before_a_failed_commit_is_caught() {
    let failure = run(true).expect("the case passed a store that loses acknowledged appends");
    assert!(failure.contains("append_message"), "{failure}");
    assert!(failure.contains("its commit failed"), "{failure}");
}

#[test]
fn a_store_that_refuses_failed_commits_passes() {
    assert_eq!(run(false), None);
}
