//! A kit that cannot fail is worthless: these stores are deliberately broken, each in one
//! way, and the kit's cases (and the property test) must catch each of them, while the
//! cases about other behaviours still pass, so that the failure names the right bug.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use async_trait::async_trait;
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
}

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
}

impl Broken {
    fn new(bug: Bug) -> Self {
        Self {
            inner: MemoryStore::new(),
            bug,
            orphans: Mutex::default(),
            users: Mutex::default(),
            counts: Mutex::default(),
        }
    }

    fn patch(&self, mut c: Conversation) -> Conversation {
        if self.bug == Bug::LostCountUpdate {
            c.message_count = self.counts.lock().unwrap().get(&c.id).copied().unwrap_or(0);
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
        if self.bug != Bug::CaseSensitiveUsername {
            return self.inner.create_user(user).await;
        }
        let mut users = self.users.lock().unwrap();
        if users.iter().any(|u| u.username == user.username) {
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
        if self.bug != Bug::CaseSensitiveUsername {
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
        if self.bug != Bug::CaseSensitiveUsername {
            return self.inner.get_user_by_username(username).await;
        }
        let users = self.users.lock().unwrap();
        Ok(users.iter().find(|u| u.username == username).cloned())
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        self.inner.create_session(session).await
    }

    async fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>> {
        self.inner.get_session(token_hash).await
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> Result<bool> {
        self.inner.delete_session(token_hash).await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.inner.delete_expired_sessions(now).await
    }

    async fn create_conversation(&self, conversation: &Conversation) -> Result<()> {
        self.inner.create_conversation(conversation).await?;
        self.counts.lock().unwrap().insert(conversation.id, 0);
        Ok(())
    }

    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
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
        self.inner.delete_conversation(id).await
    }

    async fn append_message(&self, mut draft: MessageDraft) -> Result<Message> {
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
        let page = self.inner.list_messages(conversation, order, limit).await?;
        Ok(page.into_iter().map(|m| self.shift(m)).collect())
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> Result<bool> {
        let message = self.inner.get_message(id).await?;
        let deleted = self.inner.delete_message(id, at).await?;
        if let (true, Some(m), Bug::LostCountUpdate) = (deleted, message, self.bug) {
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
        self.inner.create_attachment(attachment).await
    }

    async fn get_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        match self.inner.get_attachment(id).await? {
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
        self.inner.delete_provider(id).await
    }

    async fn create_config(&self, config: &UserLlmConfig) -> Result<()> {
        self.inner.create_config(config).await
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
