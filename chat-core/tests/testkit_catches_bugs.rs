//! A kit that cannot fail is worthless: these stores are deliberately broken, each in one
//! way, and the kit's cases (and the property test) must catch each of them, while the
//! cases about other behaviours still pass, so that the failure names the right bug.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use async_trait::async_trait;
use chat_core::ConfigId;
use chat_core::testkit::concurrency::{EXPIRED_SESSIONS, PURGED_MESSAGES};
use chat_core::testkit::{Flavor, StoreFactory, cases, concurrency, factory_fn, model, run};
use chat_core::{
    Attachment, AttachmentId, Conversation, ConversationId, Entity, Error, Limit, LlmProvider,
    MemoryStore, Message, MessageDraft, MessageId, MessageOrder, Metadata, ProviderId, Record,
    Result, ScanCursor, SealedKey, Session, Store, TokenHash, User, UserId, UserLlmConfig,
};
use chrono::{DateTime, Utc};
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

/// The one thing each broken store gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    /// Numbers messages 0, 1, 2, … (consistently, cursors included).
    SeqFromZero,
    /// Deleting a conversation leaves its messages' attachments behind.
    DeleteForgetsAttachments,
    /// Usernames are unique and looked up case-sensitively.
    CaseSensitiveUsername,
    /// A page of conversations read with a cursor loses its first item.
    SkipsAtPageBoundary,
    /// `message_count` is read, then (after a yield) written back plus one, without a lock.
    LostCountUpdate,
    /// A lookup by a name holding U+0000 is a backend error, as PostgreSQL answers one.
    NulLookupFails,
    /// Metadata is kept as a parsed JSON value: keys sorted, numbers respelled.
    MetadataThroughValue,
    /// `delete_expired_sessions` removes one batch of 1,000 and stops.
    ExpiryStopsAfterOneBatch,
    /// A conversation's purge removes one batch of 1,000 messages and stops; the rest stay
    /// readable by id and by conversation.
    PurgeStopsAfterOneBatch,
    /// `delete_message` removes the row, then (a moment later, outside any transaction)
    /// moves the conversation's `message_count`.
    DeleteMessageInTwoSteps,
    /// `delete_conversation` hides the conversation, then removes its messages one by one,
    /// and `get_message` answers them meanwhile.
    GetMessageDuringDelete,
    /// `create_attachment` checks its message, then inserts: a `delete_message` in between
    /// leaves the attachment an orphan.
    AttachmentRaceOrphan,
    /// Usernames are folded with Unicode lower case, not ASCII case.
    UnicodeLowercaseUsernames,
    /// `create_conversation` writes `created_at` into `updated_at` too.
    CreatedAtIntoUpdatedAt,
    /// `updated_at` only ever grows: the greatest time seen.
    UpdatedAtIsMax,
    /// `delete_provider` leaves its configs' ids in the id index.
    StaleProviderConfigIndex,
    /// A conversation's purge leaves its messages' ids in the id index.
    StaleMessageIdIndex,
    /// `list_messages` reads the whole conversation to answer a page.
    ListWalksEverything,
}

/// The size of the batches of the batching bugs.
const BATCH: usize = 1_000;
// The kit's big cases must exceed two batches.
const _: () = assert!(PURGED_MESSAGES > 2 * BATCH && EXPIRED_SESSIONS > 2 * BATCH);

/// `MemoryStore` with one bug.
struct Broken {
    inner: MemoryStore,
    bug: Bug,
    /// `DeleteForgetsAttachments`: the attachments a conversation delete forgot.
    orphans: Mutex<HashMap<AttachmentId, Attachment>>,
    /// `CaseSensitiveUsername`: the users, kept here with their names as given.
    users: Mutex<Vec<User>>,
    /// `LostCountUpdate`: message counts, kept here and updated racily.
    counts: Mutex<HashMap<ConversationId, u64>>,
    /// `ExpiryStopsAfterOneBatch`: every session created.
    sessions: Mutex<Vec<Session>>,
    /// `PurgeStopsAfterOneBatch`: the messages a purge left behind.
    leftovers: Mutex<HashMap<MessageId, Message>>,
    /// `GetMessageDuringDelete`: conversations whose delete is under way.
    hidden: Mutex<HashSet<ConversationId>>,
    /// `UpdatedAtIsMax`: the greatest `updated_at` each conversation has shown.
    greatest: Mutex<HashMap<ConversationId, DateTime<Utc>>>,
    /// `StaleProviderConfigIndex`: the configs created, and the ids a provider's delete
    /// left taken.
    configs: Mutex<HashMap<ConfigId, ProviderId>>,
    stale_configs: Mutex<HashSet<ConfigId>>,
    /// `StaleMessageIdIndex`: the ids a purge left taken.
    stale_messages: Mutex<HashSet<MessageId>>,
}

impl Broken {
    fn new(bug: Bug) -> Self {
        Self {
            inner: MemoryStore::new(),
            bug,
            orphans: Mutex::default(),
            users: Mutex::default(),
            counts: Mutex::default(),
            sessions: Mutex::default(),
            leftovers: Mutex::default(),
            hidden: Mutex::default(),
            greatest: Mutex::default(),
            configs: Mutex::default(),
            stale_configs: Mutex::default(),
            stale_messages: Mutex::default(),
        }
    }

    /// Whether the users live in `users` rather than in the inner store.
    fn own_users(&self) -> bool {
        matches!(
            self.bug,
            Bug::CaseSensitiveUsername | Bug::UnicodeLowercaseUsernames
        )
    }

    /// Whether two usernames are the same name, as this store (wrongly) decides.
    fn same_name(&self, a: &str, b: &str) -> bool {
        match self.bug {
            Bug::UnicodeLowercaseUsernames => a.to_lowercase() == b.to_lowercase(),
            _ => a == b,
        }
    }

    /// Whether `message_count` is kept in `counts` rather than by the inner store.
    fn own_counts(&self) -> bool {
        matches!(
            self.bug,
            Bug::LostCountUpdate | Bug::DeleteMessageInTwoSteps
        )
    }

    /// Every message of a conversation, from the inner store.
    async fn whole(&self, id: ConversationId) -> Result<Vec<Message>> {
        let mut all: Vec<Message> = Vec::new();
        loop {
            let after = all.last().map(|m| m.seq);
            let page = self
                .inner
                .list_messages(id, MessageOrder::Ascending { after }, Limit::MAX)
                .await?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    /// Whether the delete of the conversation of `message` is under way.
    fn hidden_message(&self, conversation: ConversationId) -> bool {
        self.hidden.lock().unwrap().contains(&conversation)
    }

    fn patch(&self, mut c: Conversation) -> Conversation {
        if self.own_counts() {
            c.message_count = self.counts.lock().unwrap().get(&c.id).copied().unwrap_or(0);
        }
        if self.bug == Bug::UpdatedAtIsMax {
            let mut greatest = self.greatest.lock().unwrap();
            let seen = greatest.entry(c.id).or_insert(c.updated_at);
            *seen = (*seen).max(c.updated_at);
            c.updated_at = *seen;
        }
        c
    }

    fn shift(&self, mut m: Message) -> Message {
        if self.bug == Bug::SeqFromZero {
            m.seq -= 1;
        }
        m
    }
}

fn factory(bug: Bug) -> impl StoreFactory<Store = Broken> {
    factory_fn(move || async move { (Broken::new(bug), ()) })
}

#[async_trait]
impl Store for Broken {
    fn backend(&self) -> &'static str {
        "broken"
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        if !self.own_users() {
            return self.inner.create_user(user).await;
        }
        let mut users = self.users.lock().unwrap();
        if users
            .iter()
            .any(|u| self.same_name(&u.username, &user.username))
        {
            return Err(Error::Conflict {
                entity: Entity::User,
                field: "username",
            });
        }
        if users.iter().any(|u| u.id == user.id) {
            return Err(Error::Conflict {
                entity: Entity::User,
                field: "id",
            });
        }
        users.push(user.clone());
        Ok(())
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        if !self.own_users() {
            return self.inner.get_user(id).await;
        }
        Ok(self
            .users
            .lock()
            .unwrap()
            .iter()
            .find(|u| u.id == id)
            .cloned())
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        if self.bug == Bug::NulLookupFails && username.contains('\0') {
            return Err(Error::backend(
                "broken",
                "invalid byte sequence for encoding \"UTF8\": 0x00",
            ));
        }
        if !self.own_users() {
            return self.inner.get_user_by_username(username).await;
        }
        let users = self.users.lock().unwrap();
        Ok(users
            .iter()
            .find(|u| self.same_name(&u.username, username))
            .cloned())
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        self.inner.create_session(session).await?;
        self.sessions.lock().unwrap().push(session.clone());
        Ok(())
    }

    async fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>> {
        self.inner.get_session(token_hash).await
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> Result<bool> {
        self.inner.delete_session(token_hash).await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        if self.bug != Bug::ExpiryStopsAfterOneBatch {
            return self.inner.delete_expired_sessions(now).await;
        }
        let batch: Vec<TokenHash> = self
            .sessions
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.expires_at <= now)
            .map(|s| s.token_hash)
            .collect();
        let mut removed = 0;
        for token in batch {
            if self.inner.delete_session(&token).await? {
                removed += 1;
                if removed == BATCH as u64 {
                    break;
                }
            }
        }
        Ok(removed)
    }

    async fn create_conversation(&self, conversation: &Conversation) -> Result<()> {
        if self.bug == Bug::CreatedAtIntoUpdatedAt {
            let mut c = conversation.clone();
            c.updated_at = c.created_at;
            self.inner.create_conversation(&c).await?;
            self.counts.lock().unwrap().insert(conversation.id, 0);
            return Ok(());
        }
        self.inner.create_conversation(conversation).await?;
        self.counts.lock().unwrap().insert(conversation.id, 0);
        Ok(())
    }

    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        if self.hidden_message(id) {
            return Ok(None);
        }
        Ok(self
            .inner
            .get_conversation(id)
            .await?
            .map(|c| self.patch(c)))
    }

    async fn list_conversations(
        &self,
        user: UserId,
        before: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>> {
        let mut page = self.inner.list_conversations(user, before, limit).await?;
        if self.bug == Bug::SkipsAtPageBoundary && before.is_some() && !page.is_empty() {
            page.remove(0);
        }
        page.retain(|c| !self.hidden_message(c.id));
        Ok(page.into_iter().map(|c| self.patch(c)).collect())
    }

    async fn rename_conversation(
        &self,
        id: ConversationId,
        title: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>> {
        let renamed = self.inner.rename_conversation(id, title, at).await?;
        Ok(renamed.map(|c| self.patch(c)))
    }

    async fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        if self.bug == Bug::DeleteForgetsAttachments {
            let messages = self
                .inner
                .list_messages(id, MessageOrder::default(), Limit::MAX)
                .await?;
            for m in messages {
                for a in self.inner.list_attachments(m.id, None, Limit::MAX).await? {
                    self.orphans.lock().unwrap().insert(a.id, a);
                }
            }
        }
        self.counts.lock().unwrap().remove(&id);
        match self.bug {
            Bug::PurgeStopsAfterOneBatch | Bug::StaleMessageIdIndex => {
                let messages = self.whole(id).await?;
                let deleted = self.inner.delete_conversation(id).await?;
                if self.bug == Bug::StaleMessageIdIndex {
                    self.stale_messages
                        .lock()
                        .unwrap()
                        .extend(messages.iter().map(|m| m.id));
                } else {
                    self.leftovers
                        .lock()
                        .unwrap()
                        .extend(messages.into_iter().skip(BATCH).map(|m| (m.id, m)));
                }
                Ok(deleted)
            }
            Bug::GetMessageDuringDelete => {
                if self.inner.get_conversation(id).await?.is_none() {
                    return Ok(false);
                }
                self.hidden.lock().unwrap().insert(id);
                for (i, m) in self.whole(id).await?.into_iter().enumerate() {
                    self.inner.delete_message(m.id, m.created_at).await?;
                    if i % 100 == 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                }
                let deleted = self.inner.delete_conversation(id).await;
                self.hidden.lock().unwrap().remove(&id);
                deleted
            }
            Bug::AttachmentRaceOrphan => {
                self.orphans
                    .lock()
                    .unwrap()
                    .retain(|_, a| a.conversation_id != id);
                self.inner.delete_conversation(id).await
            }
            _ => self.inner.delete_conversation(id).await,
        }
    }

    async fn append_message(&self, mut draft: MessageDraft) -> Result<Message> {
        if self.leftovers.lock().unwrap().contains_key(&draft.id)
            || self.stale_messages.lock().unwrap().contains(&draft.id)
        {
            return Err(Error::Conflict {
                entity: Entity::Message,
                field: "id",
            });
        }
        if self.bug == Bug::DeleteMessageInTwoSteps {
            let message = self.inner.append_message(draft).await?;
            if let Some(n) = self
                .counts
                .lock()
                .unwrap()
                .get_mut(&message.conversation_id)
            {
                *n += 1;
            }
            return Ok(message);
        }
        if self.bug == Bug::MetadataThroughValue {
            draft.metadata = draft.metadata.map(|m| {
                let value = serde_json::from_str(m.as_str()).expect("metadata is JSON");
                Metadata::parse(value).expect("still valid metadata")
            });
        }
        if self.bug == Bug::LostCountUpdate {
            // Read the counter, let others run, write it back: updates get lost.
            let seen = self
                .counts
                .lock()
                .unwrap()
                .get(&draft.conversation_id)
                .copied();
            tokio::task::yield_now().await;
            let message = self.inner.append_message(draft).await?;
            if let Some(seen) = seen {
                self.counts
                    .lock()
                    .unwrap()
                    .insert(message.conversation_id, seen + 1);
            }
            return Ok(message);
        }
        Ok(self.shift(self.inner.append_message(draft).await?))
    }

    async fn get_message(&self, id: MessageId) -> Result<Option<Message>> {
        if let Some(left) = self.leftovers.lock().unwrap().get(&id) {
            return Ok(Some(left.clone()));
        }
        Ok(self.inner.get_message(id).await?.map(|m| self.shift(m)))
    }

    async fn list_messages(
        &self,
        conversation: ConversationId,
        order: MessageOrder,
        limit: Limit,
    ) -> Result<Vec<Message>> {
        let order = match (self.bug, order) {
            (Bug::SeqFromZero, MessageOrder::Ascending { after }) => MessageOrder::Ascending {
                after: after.map(|a| a.saturating_add(1)),
            },
            (Bug::SeqFromZero, MessageOrder::Descending { before }) => MessageOrder::Descending {
                before: before.map(|b| b.saturating_add(1)),
            },
            (_, order) => order,
        };
        if self.hidden_message(conversation) {
            return Ok(Vec::new());
        }
        if matches!(
            self.bug,
            Bug::ListWalksEverything | Bug::PurgeStopsAfterOneBatch
        ) {
            let mut all = self.whole(conversation).await?;
            all.extend(
                self.leftovers
                    .lock()
                    .unwrap()
                    .values()
                    .filter(|m| m.conversation_id == conversation)
                    .cloned(),
            );
            all.sort_by_key(|m| m.seq);
            let page: Vec<Message> = match order {
                MessageOrder::Ascending { after } => all
                    .into_iter()
                    .filter(|m| after.is_none_or(|a| m.seq > a))
                    .take(limit.get())
                    .collect(),
                MessageOrder::Descending { before } => all
                    .into_iter()
                    .rev()
                    .filter(|m| before.is_none_or(|b| m.seq < b))
                    .take(limit.get())
                    .collect(),
            };
            return Ok(page);
        }
        let page = self.inner.list_messages(conversation, order, limit).await?;
        Ok(page.into_iter().map(|m| self.shift(m)).collect())
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> Result<bool> {
        let message = self.inner.get_message(id).await?;
        if self.bug == Bug::AttachmentRaceOrphan {
            self.orphans
                .lock()
                .unwrap()
                .retain(|_, a| a.message_id != id);
        }
        let deleted = self.inner.delete_message(id, at).await?;
        if self.bug == Bug::DeleteMessageInTwoSteps {
            // The second statement, a moment after the first, outside a transaction.
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        if let (true, Some(m), true) = (deleted, message, self.own_counts()) {
            if let Some(n) = self.counts.lock().unwrap().get_mut(&m.conversation_id) {
                *n -= 1;
            }
        }
        Ok(deleted)
    }

    async fn create_attachment(&self, attachment: &Attachment) -> Result<()> {
        if self.orphans.lock().unwrap().contains_key(&attachment.id) {
            return Err(Error::Conflict {
                entity: Entity::Attachment,
                field: "id",
            });
        }
        if self.bug == Bug::AttachmentRaceOrphan {
            // Check, then insert, with time in between for a delete.
            let parent = self.inner.get_message(attachment.message_id).await?;
            match parent {
                Some(m)
                    if m.conversation_id == attachment.conversation_id
                        && m.user_id == attachment.user_id =>
                {
                    if self.inner.get_attachment(attachment.id).await?.is_some() {
                        return Err(Error::Conflict {
                            entity: Entity::Attachment,
                            field: "id",
                        });
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    self.orphans
                        .lock()
                        .unwrap()
                        .insert(attachment.id, attachment.clone());
                    return Ok(());
                }
                _ => return Err(Error::NotFound(Entity::Message)),
            }
        }
        self.inner.create_attachment(attachment).await
    }

    async fn get_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        match self.inner.get_attachment(id).await? {
            Some(a) if self.hidden_message(a.conversation_id) => Ok(None),
            Some(a) => Ok(Some(a)),
            None => Ok(self.orphans.lock().unwrap().get(&id).cloned()),
        }
    }

    async fn list_attachments(
        &self,
        message: MessageId,
        after: Option<AttachmentId>,
        limit: Limit,
    ) -> Result<Vec<Attachment>> {
        let mut page = self.inner.list_attachments(message, after, limit).await?;
        page.retain(|a| !self.hidden_message(a.conversation_id));
        page.extend(
            self.orphans
                .lock()
                .unwrap()
                .values()
                .filter(|a| a.message_id == message && after.is_none_or(|after| a.id > after))
                .cloned(),
        );
        page.sort_by_key(|a| a.id);
        page.truncate(limit.get());
        Ok(page)
    }

    async fn delete_attachment(&self, id: AttachmentId) -> Result<bool> {
        let orphan = self.orphans.lock().unwrap().remove(&id).is_some();
        Ok(self.inner.delete_attachment(id).await? || orphan)
    }

    async fn create_provider(&self, provider: &LlmProvider) -> Result<()> {
        self.inner.create_provider(provider).await
    }

    async fn get_provider(&self, id: ProviderId) -> Result<Option<LlmProvider>> {
        self.inner.get_provider(id).await
    }

    async fn list_providers(
        &self,
        user: UserId,
        after: Option<ProviderId>,
        limit: Limit,
    ) -> Result<Vec<LlmProvider>> {
        self.inner.list_providers(user, after, limit).await
    }

    async fn delete_provider(&self, id: ProviderId) -> Result<bool> {
        let deleted = self.inner.delete_provider(id).await?;
        if deleted && self.bug == Bug::StaleProviderConfigIndex {
            let mut configs = self.configs.lock().unwrap();
            let gone: Vec<ConfigId> = configs
                .iter()
                .filter(|(_, p)| **p == id)
                .map(|(c, _)| *c)
                .collect();
            for c in gone {
                configs.remove(&c);
                self.stale_configs.lock().unwrap().insert(c);
            }
        }
        Ok(deleted)
    }

    async fn create_config(&self, config: &UserLlmConfig) -> Result<()> {
        // The id index is asked once the provider is known to exist.
        if self.inner.get_provider(config.provider_id).await?.is_some()
            && self.stale_configs.lock().unwrap().contains(&config.id)
        {
            return Err(Error::Conflict {
                entity: Entity::Config,
                field: "id",
            });
        }
        self.inner.create_config(config).await?;
        self.configs
            .lock()
            .unwrap()
            .insert(config.id, config.provider_id);
        Ok(())
    }

    async fn get_config(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<UserLlmConfig>> {
        self.inner.get_config(user, provider).await
    }

    async fn update_config(
        &self,
        user: UserId,
        provider: ProviderId,
        sealed_key: SealedKey,
        api_key_hint: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<UserLlmConfig>> {
        self.inner
            .update_config(user, provider, sealed_key, api_key_hint, at)
            .await
    }

    async fn delete_config(&self, user: UserId, provider: ProviderId) -> Result<bool> {
        self.inner.delete_config(user, provider).await
    }

    async fn scan(&self, from: ScanCursor, limit: Limit) -> Result<Vec<Record>> {
        self.inner.scan(from, limit).await
    }

    async fn import(&self, record: &Record) -> Result<bool> {
        self.inner.import(record).await
    }

    async fn set_user_disabled(&self, user: UserId, disabled: bool) -> Result<bool> {
        self.inner.set_user_disabled(user, disabled).await
    }

    async fn list_idle_conversations(
        &self,
        updated_before: DateTime<Utc>,
        after: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>> {
        self.inner
            .list_idle_conversations(updated_before, after, limit)
            .await
    }
}

// ----- running cases and expecting them to fail -----

/// The panic message of `f`, or `None` when it did not panic.
fn panic_of(f: impl FnOnce()) -> Option<String> {
    catch_unwind(AssertUnwindSafe(f)).err().map(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}

type Case = for<'a> fn(
    &'a dyn Store,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

macro_rules! case {
    ($name:ident) => {
        (stringify!($name), (|s| Box::pin(cases::$name(s))) as Case)
    };
}

fn run_case(bug: Bug, case: Case) -> Option<String> {
    panic_of(|| {
        run(&factory(bug), Flavor::CurrentThread, |store| async move {
            case(&*store).await;
        });
    })
}

/// Each case in `failing` must fail against the store with `bug`, with a message that
/// contains `says`; each in `passing` must pass.
fn caught(bug: Bug, failing: &[(&str, Case)], says: &str, passing: &[(&str, Case)]) {
    for (name, case) in failing {
        match run_case(bug, *case) {
            Some(message) => assert!(
                message.contains(says),
                "{name} failed against {bug:?}, but for another reason: {message}"
            ),
            None => panic!("{name} did not catch {bug:?}"),
        }
    }
    for (name, case) in passing {
        if let Some(message) = run_case(bug, *case) {
            panic!("{name} has nothing to do with {bug:?} but failed: {message}");
        }
    }
}

/// The property test must fail against the store with `bug`, for each of a few fixed
/// seeds (so that this test is repeatable), and shrink to at most `max_ops` operations.
fn caught_by_model(bug: Bug, max_ops: usize) {
    for seed in [1, 2, 3] {
        let config = Config {
            cases: 256,
            rng_algorithm: RngAlgorithm::ChaCha,
            rng_seed: RngSeed::Fixed(seed),
            ..Config::default()
        };
        let message = panic_of(|| model::run_with_config(&factory(bug), config))
            .unwrap_or_else(|| panic!("the property test (seed {seed}) did not catch {bug:?}"));
        let ops: usize = message
            .split("shortest failing sequence (")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("the property test's message names no sequence: {message}"));
        assert!(
            ops <= max_ops,
            "the property test (seed {seed}) caught {bug:?} but shrank only to {ops} operations: {message}"
        );
    }
}

fn unrelated() -> Vec<(&'static str, Case)> {
    vec![
        case!(user_round_trip),
        case!(session_round_trip),
        case!(provider_round_trip),
        case!(one_config_per_user_and_provider),
    ]
}

#[test]
fn seq_from_zero_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(delete_conversation_cascades),
        case!(list_messages_pages_both_ways),
        case!(username_unique_ignoring_ascii_case),
        case!(list_conversations_pages),
    ]);
    caught(
        Bug::SeqFromZero,
        &[
            case!(append_assigns_seq_from_one),
            case!(seq_never_reused_after_delete),
            case!(list_messages_cursor_need_not_exist),
        ],
        "seq",
        &passing,
    );
    caught_by_model(Bug::SeqFromZero, 3);
}

#[test]
fn delete_that_forgets_attachments_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(delete_message_cascades_to_attachments),
        case!(list_attachments_pages),
        case!(append_assigns_seq_from_one),
    ]);
    caught(
        Bug::DeleteForgetsAttachments,
        &[case!(delete_conversation_cascades)],
        "attachments",
        &passing,
    );
    let race = panic_of(|| {
        run(
            &factory(Bug::DeleteForgetsAttachments),
            Flavor::MultiThread,
            concurrency::delete_racing_appends_leaves_no_orphans,
        );
    });
    assert!(
        race.is_some(),
        "the delete race did not catch a delete that forgets attachments"
    );
    caught_by_model(Bug::DeleteForgetsAttachments, 8);
}

#[test]
fn case_sensitive_username_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(missing_user_is_none),
        case!(user_id_taken_is_conflict),
        case!(append_assigns_seq_from_one),
    ]);
    caught(
        Bug::CaseSensitiveUsername,
        &[
            case!(username_unique_ignoring_ascii_case),
            case!(user_lookup_by_username_ignores_ascii_case),
        ],
        "username",
        &passing,
    );
    let race = panic_of(|| {
        run(
            &factory(Bug::CaseSensitiveUsername),
            Flavor::MultiThread,
            concurrency::concurrent_registrations_have_one_winner,
        );
    });
    assert!(
        race.is_some_and(|m| m.contains("exactly one")),
        "the registration race did not catch case-sensitive usernames"
    );
    caught_by_model(Bug::CaseSensitiveUsername, 3);
}

#[test]
fn list_that_skips_at_a_page_boundary_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(list_conversations_newest_first_and_only_own),
        case!(list_messages_pages_both_ways),
        case!(list_providers_pages),
    ]);
    caught(
        Bug::SkipsAtPageBoundary,
        &[case!(list_conversations_pages)],
        "list_conversations",
        &passing,
    );
    caught_by_model(Bug::SkipsAtPageBoundary, 6);
}

#[test]
fn lost_counter_update_under_concurrency_is_caught() {
    // One at a time, the racy counter is right.
    let mut passing = unrelated();
    passing.extend([
        case!(append_moves_updated_at_and_message_count),
        case!(delete_message_moves_updated_at_and_message_count),
        case!(seq_never_reused_after_delete),
    ]);
    caught(Bug::LostCountUpdate, &[], "", &passing);
    let message = panic_of(|| {
        run(
            &factory(Bug::LostCountUpdate),
            Flavor::MultiThread,
            concurrency::concurrent_appends_are_gapless,
        );
    })
    .expect("concurrent appends did not catch a racy message_count");
    assert!(
        message.contains("message_count"),
        "concurrent appends failed for another reason: {message}"
    );
    // The other races have nothing to do with it.
    assert_eq!(
        panic_of(|| run(
            &factory(Bug::LostCountUpdate),
            Flavor::MultiThread,
            concurrency::concurrent_registrations_have_one_winner
        )),
        None
    );
    assert_eq!(
        panic_of(|| run(
            &factory(Bug::LostCountUpdate),
            Flavor::MultiThread,
            concurrency::concurrent_config_creations_have_one_winner
        )),
        None
    );
}

#[test]
fn lookup_that_fails_on_nul_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(user_lookup_by_username_ignores_ascii_case),
        case!(missing_user_is_none),
        case!(username_unique_ignoring_ascii_case),
    ]);
    caught(
        Bug::NulLookupFails,
        &[case!(lookup_with_nul_finds_nothing)],
        "get_user_by_username(\"\\0\")",
        &passing,
    );
}

#[test]
fn the_unbroken_wrapper_passes() {
    // The wrapper itself is sound: with a bug that only shows under concurrency, the
    // property test (one operation at a time) passes.
    assert_eq!(
        panic_of(|| model::run(&factory(Bug::LostCountUpdate), 32)),
        None
    );
}

#[test]
fn metadata_kept_as_a_parsed_value_is_caught() {
    let mut passing = unrelated();
    // The older round trip sends only what a parsed value spells the same way again.
    passing.extend([
        case!(message_round_trip),
        case!(append_assigns_seq_from_one),
    ]);
    caught(
        Bug::MetadataThroughValue,
        &[case!(metadata_kept_exactly_as_sent)],
        "metadata as given",
        &passing,
    );
}

// ----- the bugs that only bigger, concurrent or unusual cases catch -----

type Race = fn(
    std::sync::Arc<dyn Store>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

macro_rules! race {
    ($name:ident) => {
        (
            stringify!($name),
            (|s| Box::pin(concurrency::$name(s))) as Race,
        )
    };
}

/// The race `race` must fail against the store with `bug`, saying `says`.
fn race_caught(bug: Bug, (name, race): (&str, Race), says: &str) {
    let message = panic_of(|| run(&factory(bug), Flavor::MultiThread, race))
        .unwrap_or_else(|| panic!("{name} did not catch {bug:?}"));
    assert!(
        message.contains(says),
        "{name} failed against {bug:?}, but for another reason: {message}"
    );
}

/// The race `race` must pass against the store with `bug`: it is about something else.
fn race_passes(bug: Bug, (name, race): (&str, Race)) {
    if let Some(message) = panic_of(|| run(&factory(bug), Flavor::MultiThread, race)) {
        panic!("{name} has nothing to do with {bug:?} but failed: {message}");
    }
}

#[test]
fn expiry_that_stops_after_one_batch_is_caught() {
    let mut passing = unrelated();
    passing.push(case!(delete_expired_sessions_removes_exactly_the_expired));
    caught(Bug::ExpiryStopsAfterOneBatch, &[], "", &passing);
    race_caught(
        Bug::ExpiryStopsAfterOneBatch,
        race!(expired_sessions_beyond_one_batch),
        "delete_expired_sessions must remove and count all",
    );
    race_passes(
        Bug::ExpiryStopsAfterOneBatch,
        race!(deleted_conversation_beyond_one_purge_batch),
    );
}

#[test]
fn purge_that_stops_after_one_batch_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(delete_conversation_cascades),
        case!(purged_conversation_leaves_no_index_answering),
    ]);
    caught(Bug::PurgeStopsAfterOneBatch, &[], "", &passing);
    race_caught(
        Bug::PurgeStopsAfterOneBatch,
        race!(deleted_conversation_beyond_one_purge_batch),
        "of a deleted conversation",
    );
    race_passes(
        Bug::PurgeStopsAfterOneBatch,
        race!(expired_sessions_beyond_one_batch),
    );
}

#[test]
fn delete_message_in_two_steps_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(delete_message_moves_updated_at_and_message_count),
        case!(append_moves_updated_at_and_message_count),
    ]);
    caught(Bug::DeleteMessageInTwoSteps, &[], "", &passing);
    race_caught(
        Bug::DeleteMessageInTwoSteps,
        race!(message_count_brackets_listing_during_deletes),
        "message_count before",
    );
    race_passes(
        Bug::DeleteMessageInTwoSteps,
        race!(attachments_racing_their_messages_delete_leave_no_orphans),
    );
}

#[test]
fn get_message_answering_during_a_delete_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(delete_conversation_cascades),
        case!(delete_conversation_leaves_others_alone),
    ]);
    caught(Bug::GetMessageDuringDelete, &[], "", &passing);
    race_caught(
        Bug::GetMessageDuringDelete,
        race!(readers_never_see_messages_of_a_gone_conversation),
        "get_message answered a message of a conversation",
    );
    race_passes(
        Bug::GetMessageDuringDelete,
        race!(message_count_brackets_listing_during_deletes),
    );
}

#[test]
fn attachment_racing_its_messages_delete_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(delete_message_cascades_to_attachments),
        case!(attachment_round_trip),
        case!(list_attachments_pages),
    ]);
    caught(Bug::AttachmentRaceOrphan, &[], "", &passing);
    race_caught(
        Bug::AttachmentRaceOrphan,
        race!(attachments_racing_their_messages_delete_leave_no_orphans),
        "outlived the message",
    );
}

#[test]
fn unicode_lower_cased_usernames_are_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(username_unique_ignoring_ascii_case),
        case!(user_lookup_by_username_ignores_ascii_case),
        case!(missing_user_is_none),
    ]);
    caught(
        Bug::UnicodeLowercaseUsernames,
        &[case!(
            usernames_differing_only_in_non_ascii_case_are_distinct
        )],
        "differ beyond ASCII case",
        &passing,
    );
    caught_by_model(Bug::UnicodeLowercaseUsernames, 3);
}

#[test]
fn created_at_written_into_updated_at_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(conversation_round_trip),
        case!(append_moves_updated_at_and_message_count),
    ]);
    caught(
        Bug::CreatedAtIntoUpdatedAt,
        &[case!(
            conversation_created_with_later_updated_at_round_trips
        )],
        "updated_at later than created_at",
        &passing,
    );
    caught_by_model(Bug::CreatedAtIntoUpdatedAt, 3);
}

#[test]
fn updated_at_kept_as_the_greatest_time_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(conversation_round_trip),
        case!(conversation_created_with_later_updated_at_round_trips),
    ]);
    caught(
        Bug::UpdatedAtIsMax,
        &[
            case!(appends_with_times_going_backwards),
            case!(append_moves_updated_at_and_message_count),
        ],
        "updated_at must be",
        &passing,
    );
    caught_by_model(Bug::UpdatedAtIsMax, 8);
}

#[test]
fn stale_provider_config_index_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(delete_provider_cascades_to_configs),
        case!(delete_config),
    ]);
    caught(
        Bug::StaleProviderConfigIndex,
        &[case!(deleted_provider_leaves_no_index_answering)],
        "create_config with the id of a config that went with its provider",
        &passing,
    );
}

#[test]
fn stale_message_id_index_after_a_purge_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(delete_conversation_cascades),
        case!(message_id_taken_is_conflict),
    ]);
    caught(
        Bug::StaleMessageIdIndex,
        &[case!(purged_conversation_leaves_no_index_answering)],
        "append_message with the id of a message of a deleted conversation",
        &passing,
    );
    race_caught(
        Bug::StaleMessageIdIndex,
        race!(deleted_conversation_beyond_one_purge_batch),
        "append_message with the id of a purged message",
    );
}

#[test]
fn list_that_walks_the_whole_conversation_is_caught() {
    let mut passing = unrelated();
    passing.extend([
        case!(list_messages_pages_both_ways),
        case!(list_messages_cursor_need_not_exist),
    ]);
    caught(Bug::ListWalksEverything, &[], "", &passing);
    race_caught(
        Bug::ListWalksEverything,
        race!(newest_page_cost_follows_the_page),
        "in proportion to the page",
    );
}
