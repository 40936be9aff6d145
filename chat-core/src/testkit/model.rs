//! The model-based property test: the store under test must answer like
//! [`MemoryStore`], the reference, for any sequence of operations.
//!
//! [`run`] generates random sequences of operations with proptest: creates, reads, lists
//! with random limits and cursors, renames, updates and deletes of every kind of object,
//! valid or not (taken names and ids, missing parents, another user's conversation). Ids are
//! drawn from small pools of those created before, plus unknown ones, so that most
//! operations hit something. Every operation goes to a fresh store from the factory and to
//! a fresh `MemoryStore` with exactly the same inputs (ids and times are made from the
//! sequence, not from the clock), and every answer must agree: the `Ok` value, or the kind
//! of error (`NotFound(entity)`, `Conflict { entity, field }`). Where one input breaks two
//! rules at once (a taken id *and* a taken name), either error is accepted. At the end of a
//! sequence the whole content of both stores is read back and compared.
//!
//! When a sequence fails, proptest shrinks it and the panic shows the shortest failing
//! sequence it found and the first answer that differed.
//!
//! The number of sequences is `cases` unless the `PROPTEST_CASES` environment variable is
//! set; `PROPTEST_MAX_SHRINK_ITERS` and the other proptest variables apply as usual.

use std::collections::HashMap;
use std::fmt::Debug;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::json;

use super::{Flavor, StoreFactory, runtime};
use crate::error::{Entity, Error};
use crate::ids::{
    AttachmentId, ConfigId, ConversationId, MessageId, ProviderId, SessionId, UserId,
};
use crate::memory::MemoryStore;
use crate::model::{
    Attachment, Conversation, LlmProvider, Message, MessageDraft, Role, Session, TokenHash, User,
    UserLlmConfig,
};
use crate::secrets::SealedKey;
use crate::store::{MessageOrder, Store};
use crate::validation::{Limit, Metadata, provider_name_key};

/// How many random operation sequences the property test tries by default.
///
/// Chosen so that a store whose fresh instance costs up to a few hundred milliseconds (a
/// database schema) still finishes in about a minute on a small machine; the
/// [`MemoryStore`] suite runs them in well under a second.
pub const DEFAULT_PROPTEST_CASES: u32 = 128;

/// The longest generated sequence of operations.
pub const MAX_OPS: usize = 80;

const USER_NAMES: &[&str] = &[
    "ann",
    "Ann",
    "ANN",
    "bob",
    "BoB",
    "user0",
    "USER1",
    "carl.x",
    // Names that differ only in non-ASCII case are different users, and the Kelvin sign
    // is not `K`: a store folding usernames with Unicode case rules answers otherwise.
    "jürgen",
    "jÜrgen",
    "JüRGEN",
    "kelvin",
    "\u{212A}elvin",
    "\u{212A}ELVIN",
];
const PROVIDER_NAMES: &[&str] = &[
    "OpenAI", "openai", "OPENAI", "Ünï", "üNÏ", "local", "ΟΔΟΣ", "οδος",
];
const TITLES: &[&str] = &["chat", "Grüße 🎉", "x"];
const CONTENTS: &[&str] = &["hi", "ünïcode 🚀", "multi\nline"];
const TOKENS: u8 = 3;
const SETUP_USERS: usize = 3;

/// Runs the property test against stores from `factory`: `cases` random sequences unless
/// `PROPTEST_CASES` says otherwise.
///
/// Must be called outside any async runtime (it builds its own), e.g. from a plain
/// `#[test]`, which is what [`store_tests!`](crate::store_tests) generates.
///
/// # Panics
///
/// With the shortest failing sequence found, when the store answers differently from
/// [`MemoryStore`].
pub fn run<F: StoreFactory>(factory: &F, cases: u32) {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    run_with_config(factory, config);
}

/// [`run`] with a proptest [`Config`] of the caller's, e.g. with a fixed
/// [`rng_seed`](Config::rng_seed) to make a run repeatable. Failing cases are never written
/// to a file, whatever `config.failure_persistence` says.
///
/// # Panics
///
/// As [`run`].
pub fn run_with_config<F: StoreFactory>(factory: &F, config: Config) {
    if super::skipped(factory) {
        return;
    }
    let config = Config {
        failure_persistence: None,
        ..config
    };
    let rt = runtime(Flavor::CurrentThread);
    let mut runner = TestRunner::new(config);
    let strategy = proptest::collection::vec(op(), 1..=MAX_OPS);
    let attempt = |ops: &[Op]| {
        rt.block_on(async {
            let (store, guard) = factory.create().await;
            let result = check(&store, ops).await;
            factory.destroy(store, guard).await;
            result
        })
    };
    let result = runner.run(&strategy, |ops| attempt(&ops).map_err(TestCaseError::fail));
    match result {
        Ok(()) => {}
        Err(TestError::Fail(_, ops)) => {
            let (ops, reason) = minimize(ops, attempt);
            panic!(
                "the store answered differently from MemoryStore.\n{reason}\n\
                 shortest failing sequence ({} operations):\n{ops:#?}",
                ops.len()
            )
        }
        Err(TestError::Abort(reason)) => panic!("the property test gave up: {reason}"),
    }
}

/// The most attempts [`minimize`] makes.
const MAX_MINIMIZE_ATTEMPTS: usize = 2000;

/// Removes operations from a failing sequence, one at a time, for as long as it still
/// fails. proptest's own shrinking stops deleting once it has started simplifying single
/// operations, which leaves harmless reads behind.
fn minimize(mut ops: Vec<Op>, attempt: impl Fn(&[Op]) -> Result<(), String>) -> (Vec<Op>, String) {
    let mut reason = match attempt(&ops) {
        Err(reason) => reason,
        Ok(()) => return (ops, "the failure did not repeat (a race?)".to_owned()),
    };
    let mut attempts = 0;
    let mut i = 0;
    while i < ops.len() && attempts < MAX_MINIMIZE_ATTEMPTS {
        let mut shorter = ops.clone();
        shorter.remove(i);
        attempts += 1;
        match attempt(&shorter) {
            Err(why) => {
                ops = shorter;
                reason = why;
                i = 0;
            }
            Ok(()) => i += 1,
        }
    }
    (ops, reason)
}

/// Applies `ops` to `store` and to a fresh [`MemoryStore`], comparing every answer and then
/// the whole content; `Err` describes the first difference.
async fn check(store: &dyn Store, ops: &[Op]) -> Result<(), String> {
    let model = MemoryStore::new();
    let mut ctx = Ctx::default();
    for i in 0..SETUP_USERS {
        let u = User {
            id: ctx.fresh(),
            username: format!("user{i}"),
            email: None,
            password_hash: super::fixtures::password_hash(),
            created_at: time_at(0),
        };
        let call = Call::CreateUser(u);
        step(store, &model, &mut ctx, &call, "setup").await?;
    }
    // Something to hit from the first operation on: a conversation for each of two users,
    // a shared provider and a private one.
    let setup = [
        Op::CreateConversation {
            id: NewId::Fresh,
            user: 0,
            title: 0,
            imported: false,
        },
        Op::CreateConversation {
            id: NewId::Fresh,
            user: 8,
            title: 1,
            imported: false,
        },
        Op::CreateProvider {
            id: NewId::Fresh,
            owner: None,
            name: 5,
        },
        Op::CreateProvider {
            id: NewId::Fresh,
            owner: Some(0),
            name: 0,
        },
    ];
    for op in &setup {
        let call = ctx.resolve(op, 0);
        step(store, &model, &mut ctx, &call, &format!("setup ({op:?})")).await?;
    }
    for (i, op) in ops.iter().enumerate() {
        let call = ctx.resolve(op, i as i64 + 1);
        step(
            store,
            &model,
            &mut ctx,
            &call,
            &format!("operation {i} ({op:?})"),
        )
        .await?;
    }
    compare_contents(store, &model, &ctx).await
}

// ----- generated operations -----

/// Which id a create uses: a new one, or one from the pool of earlier ones.
#[derive(Debug, Clone, Copy)]
enum NewId {
    Fresh,
    Reuse(u8),
}

/// A list cursor: none, an id from the pool, or a position just after one (naming nothing).
#[derive(Debug, Clone, Copy)]
enum Cursor {
    Start,
    At(u8),
    After(u8),
}

/// How a new attachment's parents are named.
#[derive(Debug, Clone, Copy)]
enum Parents {
    Right,
    OtherConversation,
    OtherUser,
}

/// One generated operation. Numbers index pools of earlier ids (see [`Ctx`]).
#[derive(Debug, Clone)]
enum Op {
    CreateUser {
        id: NewId,
        name: u8,
        email: bool,
    },
    GetUser {
        user: u8,
    },
    GetUserByUsername {
        name: u8,
    },
    CreateSession {
        id: NewId,
        user: u8,
        token: u8,
        expires: i8,
    },
    GetSession {
        token: u8,
    },
    DeleteSession {
        token: u8,
    },
    DeleteExpiredSessions {
        at: i8,
    },
    CreateConversation {
        id: NewId,
        user: u8,
        title: u8,
        /// Created with `updated_at` later than `created_at`, as an import makes it.
        imported: bool,
    },
    GetConversation {
        conversation: u8,
    },
    ListConversations {
        user: u8,
        before: Cursor,
        limit: u16,
    },
    RenameConversation {
        conversation: u8,
        title: u8,
    },
    DeleteConversation {
        conversation: u8,
    },
    Append {
        id: NewId,
        conversation: u8,
        intruder: bool,
        role: u8,
        content: u8,
        meta: bool,
        /// Dated before the operation's time: times that go backwards.
        backdated: bool,
    },
    GetMessage {
        message: u8,
    },
    ListMessages {
        conversation: u8,
        descending: bool,
        cursor: Option<u8>,
        limit: u16,
    },
    DeleteMessage {
        message: u8,
    },
    CreateAttachment {
        id: NewId,
        message: u8,
        parents: Parents,
    },
    GetAttachment {
        attachment: u8,
    },
    ListAttachments {
        message: u8,
        after: Cursor,
        limit: u16,
    },
    DeleteAttachment {
        attachment: u8,
    },
    CreateProvider {
        id: NewId,
        owner: Option<u8>,
        name: u8,
    },
    GetProvider {
        provider: u8,
    },
    ListProviders {
        user: u8,
        after: Cursor,
        limit: u16,
    },
    DeleteProvider {
        provider: u8,
    },
    CreateConfig {
        id: NewId,
        user: u8,
        provider: u8,
    },
    GetConfig {
        user: u8,
        provider: u8,
    },
    UpdateConfig {
        user: u8,
        provider: u8,
        key: u8,
        hint: bool,
    },
    DeleteConfig {
        user: u8,
        provider: u8,
    },
}

fn new_id() -> impl Strategy<Value = NewId> {
    prop_oneof![6 => Just(NewId::Fresh), 1 => any::<u8>().prop_map(NewId::Reuse)]
}

fn cursor() -> impl Strategy<Value = Cursor> {
    prop_oneof![
        2 => Just(Cursor::Start),
        2 => any::<u8>().prop_map(Cursor::At),
        1 => any::<u8>().prop_map(Cursor::After),
    ]
}

fn limit() -> impl Strategy<Value = u16> {
    prop_oneof![4 => 1..=4u16, 1 => Just(1000u16)]
}

fn parents() -> impl Strategy<Value = Parents> {
    prop_oneof![
        6 => Just(Parents::Right),
        1 => Just(Parents::OtherConversation),
        1 => Just(Parents::OtherUser),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let n = any::<u8>;
    prop_oneof![
        2 => (new_id(), n(), any::<bool>())
            .prop_map(|(id, name, email)| Op::CreateUser { id, name, email }),
        1 => n().prop_map(|user| Op::GetUser { user }),
        1 => n().prop_map(|name| Op::GetUserByUsername { name }),
        2 => (new_id(), n(), 0..TOKENS, -5i8..5)
            .prop_map(|(id, user, token, expires)| Op::CreateSession { id, user, token, expires }),
        1 => (0..TOKENS).prop_map(|token| Op::GetSession { token }),
        1 => (0..TOKENS).prop_map(|token| Op::DeleteSession { token }),
        1 => (-8i8..8).prop_map(|at| Op::DeleteExpiredSessions { at }),
        // `imported` and `backdated` are read off bytes drawn anyway, so that the random
        // sequences (and so the fixed seeds of the kit's own tests) stay what they were.
        4 => (new_id(), n(), n())
            .prop_map(|(id, user, title)| Op::CreateConversation {
                id, user, title, imported: title >= 192,
            }),
        1 => n().prop_map(|conversation| Op::GetConversation { conversation }),
        2 => (n(), cursor(), limit())
            .prop_map(|(user, before, limit)| Op::ListConversations { user, before, limit }),
        1 => (n(), n()).prop_map(|(conversation, title)| Op::RenameConversation { conversation, title }),
        1 => n().prop_map(|conversation| Op::DeleteConversation { conversation }),
        8 => (new_id(), n(), prop::bool::weighted(0.1), n(), n(), any::<bool>())
            .prop_map(|(id, conversation, intruder, role, content, meta)| Op::Append {
                id, conversation, intruder, role, content, meta, backdated: content >= 204,
            }),
        1 => n().prop_map(|message| Op::GetMessage { message }),
        3 => (n(), any::<bool>(), prop::option::weighted(0.6, 0..8u8), limit())
            .prop_map(|(conversation, descending, cursor, limit)| Op::ListMessages {
                conversation, descending, cursor, limit,
            }),
        2 => n().prop_map(|message| Op::DeleteMessage { message }),
        5 => (new_id(), n(), parents())
            .prop_map(|(id, message, parents)| Op::CreateAttachment { id, message, parents }),
        1 => n().prop_map(|attachment| Op::GetAttachment { attachment }),
        2 => (n(), cursor(), limit())
            .prop_map(|(message, after, limit)| Op::ListAttachments { message, after, limit }),
        1 => n().prop_map(|attachment| Op::DeleteAttachment { attachment }),
        3 => (new_id(), prop::option::of(n()), n())
            .prop_map(|(id, owner, name)| Op::CreateProvider { id, owner, name }),
        1 => n().prop_map(|provider| Op::GetProvider { provider }),
        2 => (n(), cursor(), limit())
            .prop_map(|(user, after, limit)| Op::ListProviders { user, after, limit }),
        1 => n().prop_map(|provider| Op::DeleteProvider { provider }),
        3 => (new_id(), n(), n())
            .prop_map(|(id, user, provider)| Op::CreateConfig { id, user, provider }),
        1 => (n(), n()).prop_map(|(user, provider)| Op::GetConfig { user, provider }),
        1 => (n(), n(), n(), any::<bool>())
            .prop_map(|(user, provider, key, hint)| Op::UpdateConfig { user, provider, key, hint }),
        1 => (n(), n()).prop_map(|(user, provider)| Op::DeleteConfig { user, provider }),
    ]
}

// ----- resolving operations into calls -----

/// The pools of ids seen so far, and the counter that makes new ids.
#[derive(Default)]
struct Ctx {
    counter: u64,
    users: Vec<UserId>,
    sessions: Vec<SessionId>,
    conversations: Vec<(ConversationId, UserId)>,
    messages: Vec<(MessageId, ConversationId, UserId)>,
    attachments: Vec<AttachmentId>,
    /// The message of each attachment in `attachments`.
    attachment_messages: Vec<MessageId>,
    providers: Vec<ProviderId>,
    configs: HashMap<ConfigId, (UserId, ProviderId)>,
    config_ids: Vec<ConfigId>,
}

/// `time_at(n)`: a fixed instant plus `n` seconds and `n` microseconds.
fn time_at(n: i64) -> DateTime<Utc> {
    super::fixtures::at(n) + chrono::Duration::microseconds(n)
}

/// Which of `len` pooled ids `r` names, or `None` for an unknown id: one time in eight an
/// unknown id, half the time one of the three newest (likely alive, likely related to what
/// the sequence just did), otherwise any.
fn choose(len: usize, r: u8) -> Option<usize> {
    let (kind, n) = (r % 8, usize::from(r / 8));
    match kind {
        _ if len == 0 => None,
        0 => None,
        1..=4 => Some(len - 1 - n % len.min(3)),
        _ => Some(n % len),
    }
}

impl Ctx {
    /// A new id, made from the counter: UUIDv7-shaped and increasing, with room between
    /// two ids for cursors that name nothing.
    fn fresh<T: From<uuid::Uuid>>(&mut self) -> T {
        self.counter += 1;
        let millis = 1_790_000_000_000 + self.counter;
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&self.counter.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(millis, &random)
            .into_uuid()
            .into()
    }

    fn pick<T: Copy + From<uuid::Uuid>>(&mut self, pool: impl Fn(&Self) -> Vec<T>, r: u8) -> T {
        let pool = pool(self);
        match choose(pool.len(), r) {
            Some(i) => pool[i],
            None => self.fresh(),
        }
    }

    fn new_id<T: Copy + From<uuid::Uuid>>(
        &mut self,
        pool: impl Fn(&Self) -> Vec<T>,
        id: NewId,
    ) -> T {
        match id {
            NewId::Fresh => self.fresh(),
            NewId::Reuse(r) => self.pick(pool, r),
        }
    }

    /// An existing user (the setup makes sure there is one).
    ///
    /// Mostly one of the users of the setup, so that conversations, providers and configs
    /// pile up on a few owners and lists have something to page through.
    fn owner(&self, r: u8) -> UserId {
        let pool = if r % 8 == 7 {
            self.users.len()
        } else {
            SETUP_USERS.min(self.users.len())
        };
        self.users[usize::from(r / 8) % pool]
    }

    /// A user to look something up for: an [`owner`](Self::owner), or sometimes an
    /// unknown user.
    fn user(&mut self, r: u8) -> UserId {
        if r % 16 == 15 {
            self.fresh()
        } else {
            self.owner(r)
        }
    }

    /// A (user, provider) pair to look a config up by: mostly that of a config created
    /// before (alive or not), otherwise any.
    fn config_pair(&mut self, user: u8, provider: u8) -> (UserId, ProviderId) {
        match choose(self.config_ids.len(), provider) {
            Some(i) if user % 4 != 3 => self.configs[&self.config_ids[i]],
            _ => {
                let u = self.user(user);
                (u, self.pick(|c| c.providers.clone(), provider))
            }
        }
    }

    fn cursor<T: Copy + From<uuid::Uuid> + Into<uuid::Uuid>>(
        &mut self,
        pool: impl Fn(&Self) -> Vec<T>,
        c: Cursor,
    ) -> Option<T> {
        match c {
            Cursor::Start => None,
            Cursor::At(r) => Some(self.pick(pool, r)),
            Cursor::After(r) => {
                let id: uuid::Uuid = self.pick(pool, r).into();
                Some(uuid::Uuid::from_u128(id.as_u128().wrapping_add(1)).into())
            }
        }
    }

    fn resolve(&mut self, op: &Op, step: i64) -> Call {
        let now = time_at(step);
        let limit = |n: u16| Limit::new(u64::from(n)).expect("a valid limit");
        let users = |c: &Self| c.users.clone();
        let conversations = |c: &Self| c.conversations.iter().map(|x| x.0).collect::<Vec<_>>();
        let messages = |c: &Self| c.messages.iter().map(|x| x.0).collect::<Vec<_>>();
        let attachments = |c: &Self| c.attachments.clone();
        let providers = |c: &Self| c.providers.clone();
        match *op {
            Op::CreateUser { id, name, email } => {
                let name = USER_NAMES[usize::from(name) % USER_NAMES.len()];
                Call::CreateUser(User {
                    id: self.new_id(users, id),
                    username: name.to_owned(),
                    email: email.then(|| format!("{name}@example.com")),
                    password_hash: super::fixtures::password_hash(),
                    created_at: now,
                })
            }
            Op::GetUser { user } => Call::GetUser(self.pick(users, user)),

            Op::GetUserByUsername { name } => {
                Call::GetUserByUsername(USER_NAMES[usize::from(name) % USER_NAMES.len()].to_owned())
            }
            Op::CreateSession {
                id,
                user,
                token,
                expires,
            } => Call::CreateSession(Session {
                id: self.new_id(|c| c.sessions.clone(), id),
                user_id: self.owner(user),
                token_hash: TokenHash([token + 1; 32]),
                created_at: now,
                expires_at: time_at(step + i64::from(expires)),
            }),
            Op::GetSession { token } => Call::GetSession(TokenHash([token + 1; 32])),
            Op::DeleteSession { token } => Call::DeleteSession(TokenHash([token + 1; 32])),
            Op::DeleteExpiredSessions { at } => {
                Call::DeleteExpiredSessions(time_at(step + i64::from(at)))
            }
            Op::CreateConversation {
                id,
                user,
                title,
                imported,
            } => Call::CreateConversation(Conversation {
                id: self.new_id(conversations, id),
                user_id: self.owner(user),
                title: TITLES[usize::from(title) % TITLES.len()].to_owned(),
                created_at: if imported { time_at(step - 1_000) } else { now },
                updated_at: now,
                message_count: 0,
            }),
            Op::GetConversation { conversation } => {
                Call::GetConversation(self.pick(conversations, conversation))
            }
            Op::ListConversations {
                user,
                before,
                limit: n,
            } => Call::ListConversations(
                self.user(user),
                self.cursor(conversations, before),
                limit(n),
            ),
            Op::RenameConversation {
                conversation,
                title,
            } => Call::RenameConversation(
                self.pick(conversations, conversation),
                TITLES[usize::from(title) % TITLES.len()].to_owned(),
                now,
            ),
            Op::DeleteConversation { conversation } => {
                Call::DeleteConversation(self.pick(conversations, conversation))
            }
            Op::Append {
                id,
                conversation,
                intruder,
                role,
                content,
                meta,
                backdated,
            } => {
                let id = self.new_id(messages, id);
                let (conversation_id, owner) = match choose(self.conversations.len(), conversation)
                {
                    Some(i) => self.conversations[i],
                    None => (self.fresh(), self.owner(conversation)),
                };
                let user_id = if intruder {
                    self.users
                        .iter()
                        .copied()
                        .find(|u| *u != owner)
                        .unwrap_or_else(|| self.fresh())
                } else {
                    owner
                };
                Call::Append(MessageDraft {
                    id,
                    conversation_id,
                    user_id,
                    role: Role::ALL[usize::from(role) % Role::ALL.len()],
                    content: CONTENTS[usize::from(content) % CONTENTS.len()].to_owned(),
                    metadata: meta.then(|| {
                        Metadata::parse(json!({"step": step, "nested": {"ok": true}}))
                            .expect("valid metadata")
                    }),
                    created_at: if backdated { time_at(step - 100) } else { now },
                })
            }
            Op::GetMessage { message } => Call::GetMessage(self.pick(messages, message)),
            Op::ListMessages {
                conversation,
                descending,
                cursor,
                limit: n,
            } => {
                let cursor = cursor.map(u64::from);
                // Mostly a conversation that has had messages.
                let conversation = match choose(self.messages.len(), conversation) {
                    Some(i) if conversation % 4 != 3 => self.messages[i].1,
                    _ => self.pick(conversations, conversation),
                };
                Call::ListMessages(
                    conversation,
                    if descending {
                        MessageOrder::Descending { before: cursor }
                    } else {
                        MessageOrder::Ascending { after: cursor }
                    },
                    limit(n),
                )
            }
            Op::DeleteMessage { message } => Call::DeleteMessage(self.pick(messages, message), now),
            Op::CreateAttachment {
                id,
                message,
                parents,
            } => {
                let id = self.new_id(attachments, id);
                let (message_id, mut conversation_id, mut user_id) =
                    match choose(self.messages.len(), message) {
                        Some(i) => self.messages[i],
                        None => (self.fresh(), self.fresh(), self.owner(message)),
                    };
                match parents {
                    Parents::Right => {}
                    Parents::OtherConversation => {
                        conversation_id = self
                            .conversations
                            .iter()
                            .map(|c| c.0)
                            .find(|c| *c != conversation_id)
                            .unwrap_or_else(|| self.fresh());
                    }
                    Parents::OtherUser => {
                        user_id = self
                            .users
                            .iter()
                            .copied()
                            .find(|u| *u != user_id)
                            .unwrap_or_else(|| self.fresh());
                    }
                }
                Call::CreateAttachment(Attachment {
                    id,
                    message_id,
                    conversation_id,
                    user_id,
                    file_type: "image/png".to_owned(),
                    file_path: format!("files/{step}.png"),
                    created_at: now,
                })
            }
            Op::GetAttachment { attachment } => {
                Call::GetAttachment(self.pick(attachments, attachment))
            }
            Op::ListAttachments {
                message,
                after,
                limit: n,
            } => {
                // Mostly a message that has had attachments.
                let message = match choose(self.attachment_messages.len(), message) {
                    Some(i) if message % 4 != 3 => self.attachment_messages[i],
                    _ => self.pick(messages, message),
                };
                Call::ListAttachments(message, self.cursor(attachments, after), limit(n))
            }
            Op::DeleteAttachment { attachment } => {
                Call::DeleteAttachment(self.pick(attachments, attachment))
            }
            Op::CreateProvider { id, owner, name } => Call::CreateProvider(LlmProvider {
                id: self.new_id(providers, id),
                owner_id: owner.map(|o| self.owner(o)),
                name: PROVIDER_NAMES[usize::from(name) % PROVIDER_NAMES.len()].to_owned(),
                api_endpoint: format!("https://llm{step}.example.com/v1"),
                created_at: now,
            }),
            Op::GetProvider { provider } => Call::GetProvider(self.pick(providers, provider)),
            Op::ListProviders {
                user,
                after,
                limit: n,
            } => Call::ListProviders(self.user(user), self.cursor(providers, after), limit(n)),
            Op::DeleteProvider { provider } => Call::DeleteProvider(self.pick(providers, provider)),
            Op::CreateConfig { id, user, provider } => {
                let id = self.new_id(|c| c.config_ids.clone(), id);
                let user_id = self.owner(user);
                let provider_id = self.pick(providers, provider);
                Call::CreateConfig(UserLlmConfig {
                    id,
                    user_id,
                    provider_id,
                    sealed_key: SealedKey(vec![1, user, provider]),
                    api_key_hint: Some("…abcd".to_owned()),
                    created_at: now,
                    updated_at: now,
                })
            }
            Op::GetConfig { user, provider } => {
                let (u, p) = self.config_pair(user, provider);
                Call::GetConfig(u, p)
            }
            Op::UpdateConfig {
                user,
                provider,
                key,
                hint,
            } => {
                let (u, p) = self.config_pair(user, provider);
                Call::UpdateConfig(
                    u,
                    p,
                    SealedKey(vec![2, key]),
                    hint.then(|| format!("…{key:04}")),
                    now,
                )
            }
            Op::DeleteConfig { user, provider } => {
                let (u, p) = self.config_pair(user, provider);
                Call::DeleteConfig(u, p)
            }
        }
    }

    /// Adds what a successful call created to the pools.
    fn created(&mut self, call: &Call) {
        match call {
            Call::CreateUser(u) => self.users.push(u.id),
            Call::CreateSession(s) => self.sessions.push(s.id),
            Call::CreateConversation(c) => self.conversations.push((c.id, c.user_id)),
            Call::Append(d) => self.messages.push((d.id, d.conversation_id, d.user_id)),
            Call::CreateAttachment(a) => {
                self.attachments.push(a.id);
                self.attachment_messages.push(a.message_id);
            }
            Call::CreateProvider(p) => self.providers.push(p.id),
            Call::CreateConfig(c) => {
                self.config_ids.push(c.id);
                self.configs.insert(c.id, (c.user_id, c.provider_id));
            }
            _ => {}
        }
    }
}

// ----- calls and answers -----

/// An operation with every input spelled out, given to both stores alike.
#[derive(Debug, Clone)]
enum Call {
    CreateUser(User),
    GetUser(UserId),
    GetUserByUsername(String),
    CreateSession(Session),
    GetSession(TokenHash),
    DeleteSession(TokenHash),
    DeleteExpiredSessions(DateTime<Utc>),
    CreateConversation(Conversation),
    GetConversation(ConversationId),
    ListConversations(UserId, Option<ConversationId>, Limit),
    RenameConversation(ConversationId, String, DateTime<Utc>),
    DeleteConversation(ConversationId),
    Append(MessageDraft),
    GetMessage(MessageId),
    ListMessages(ConversationId, MessageOrder, Limit),
    DeleteMessage(MessageId, DateTime<Utc>),
    CreateAttachment(Attachment),
    GetAttachment(AttachmentId),
    ListAttachments(MessageId, Option<AttachmentId>, Limit),
    DeleteAttachment(AttachmentId),
    CreateProvider(LlmProvider),
    GetProvider(ProviderId),
    ListProviders(UserId, Option<ProviderId>, Limit),
    DeleteProvider(ProviderId),
    CreateConfig(UserLlmConfig),
    GetConfig(UserId, ProviderId),
    UpdateConfig(UserId, ProviderId, SealedKey, Option<String>, DateTime<Utc>),
    DeleteConfig(UserId, ProviderId),
}

/// What a call answered, when it answered `Ok`.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Done,
    Found(bool),
    Count(u64),
    User(Option<User>),
    Session(Option<Session>),
    Conversation(Option<Conversation>),
    Conversations(Vec<Conversation>),
    Appended(Message),
    Message(Option<Message>),
    Messages(Vec<Message>),
    Attachment(Option<Attachment>),
    Attachments(Vec<Attachment>),
    Provider(Option<LlmProvider>),
    Providers(Vec<LlmProvider>),
    Config(Option<UserLlmConfig>),
}

/// The kind of error a call answered.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    NotFound(Entity),
    Conflict {
        entity: Entity,
        field: String,
    },
    /// Any other error: never expected, never equal to anything.
    Other(String),
}

type Outcome = Result<Answer, Failure>;

fn failure(err: &Error) -> Failure {
    match err {
        Error::NotFound(entity) => Failure::NotFound(*entity),
        Error::Conflict { entity, field } => Failure::Conflict {
            entity: *entity,
            field: (*field).to_owned(),
        },
        other => Failure::Other(format!("{other:?}")),
    }
}

fn conflict(entity: Entity, field: &str) -> Failure {
    Failure::Conflict {
        entity,
        field: field.to_owned(),
    }
}

async fn apply(store: &dyn Store, call: &Call) -> Outcome {
    use Answer as A;
    let result = match call.clone() {
        Call::CreateUser(u) => store.create_user(&u).await.map(|()| A::Done),
        Call::GetUser(id) => store.get_user(id).await.map(A::User),
        Call::GetUserByUsername(name) => store.get_user_by_username(&name).await.map(A::User),
        Call::CreateSession(s) => store.create_session(&s).await.map(|()| A::Done),
        Call::GetSession(t) => store.get_session(&t).await.map(A::Session),
        Call::DeleteSession(t) => store.delete_session(&t).await.map(A::Found),
        Call::DeleteExpiredSessions(at) => store.delete_expired_sessions(at).await.map(A::Count),
        Call::CreateConversation(c) => store.create_conversation(&c).await.map(|()| A::Done),
        Call::GetConversation(id) => store.get_conversation(id).await.map(A::Conversation),
        Call::ListConversations(u, before, limit) => store
            .list_conversations(u, before, limit)
            .await
            .map(A::Conversations),
        Call::RenameConversation(id, title, at) => store
            .rename_conversation(id, &title, at)
            .await
            .map(A::Conversation),
        Call::DeleteConversation(id) => store.delete_conversation(id).await.map(A::Found),
        Call::Append(d) => store.append_message(d).await.map(A::Appended),
        Call::GetMessage(id) => store.get_message(id).await.map(A::Message),
        Call::ListMessages(c, order, limit) => {
            store.list_messages(c, order, limit).await.map(A::Messages)
        }
        Call::DeleteMessage(id, at) => store.delete_message(id, at).await.map(A::Found),
        Call::CreateAttachment(a) => store.create_attachment(&a).await.map(|()| A::Done),
        Call::GetAttachment(id) => store.get_attachment(id).await.map(A::Attachment),
        Call::ListAttachments(m, after, limit) => store
            .list_attachments(m, after, limit)
            .await
            .map(A::Attachments),
        Call::DeleteAttachment(id) => store.delete_attachment(id).await.map(A::Found),
        Call::CreateProvider(p) => store.create_provider(&p).await.map(|()| A::Done),
        Call::GetProvider(id) => store.get_provider(id).await.map(A::Provider),
        Call::ListProviders(u, after, limit) => store
            .list_providers(u, after, limit)
            .await
            .map(A::Providers),
        Call::DeleteProvider(id) => store.delete_provider(id).await.map(A::Found),
        Call::CreateConfig(c) => store.create_config(&c).await.map(|()| A::Done),
        Call::GetConfig(u, p) => store.get_config(u, p).await.map(A::Config),
        Call::UpdateConfig(u, p, key, hint, at) => store
            .update_config(u, p, key, hint, at)
            .await
            .map(A::Config),
        Call::DeleteConfig(u, p) => store.delete_config(u, p).await.map(A::Found),
    };
    result.map_err(|e| failure(&e))
}

/// Every error `call` may rightly answer in the model's present state: where an input
/// breaks two rules at once the contract does not say which is reported.
async fn causes(model: &MemoryStore, ctx: &Ctx, call: &Call) -> Vec<Failure> {
    let mut causes = Vec::new();
    let found = |r: crate::error::Result<bool>| r.unwrap_or(false);
    match call {
        Call::CreateUser(u) => {
            if found(
                model
                    .get_user_by_username(&u.username)
                    .await
                    .map(|x| x.is_some()),
            ) {
                causes.push(conflict(Entity::User, "username"));
            }
            if found(model.get_user(u.id).await.map(|x| x.is_some())) {
                causes.push(conflict(Entity::User, "id"));
            }
        }
        Call::CreateSession(_) => {
            // Sessions can be looked up only by token, so the field is not checked.
            causes.push(conflict(Entity::Session, "token"));
            causes.push(conflict(Entity::Session, "id"));
        }
        Call::Append(d) => {
            if found(model.get_message(d.id).await.map(|x| x.is_some())) {
                causes.push(conflict(Entity::Message, "id"));
            }
            let owned = model
                .get_conversation(d.conversation_id)
                .await
                .ok()
                .flatten()
                .is_some_and(|c| c.user_id == d.user_id);
            if !owned {
                causes.push(Failure::NotFound(Entity::Conversation));
            }
        }
        Call::CreateAttachment(a) => {
            if found(model.get_attachment(a.id).await.map(|x| x.is_some())) {
                causes.push(conflict(Entity::Attachment, "id"));
            }
            let parent = model
                .get_message(a.message_id)
                .await
                .ok()
                .flatten()
                .is_some_and(|m| m.conversation_id == a.conversation_id && m.user_id == a.user_id);
            if !parent {
                causes.push(Failure::NotFound(Entity::Message));
            }
        }
        Call::CreateProvider(p) => {
            if found(model.get_provider(p.id).await.map(|x| x.is_some())) {
                causes.push(conflict(Entity::Provider, "id"));
            }
            let viewer = p.owner_id.unwrap_or_else(UserId::new);
            let key = provider_name_key(&p.name);
            let clash = model
                .list_providers(viewer, None, Limit::MAX)
                .await
                .unwrap_or_default()
                .iter()
                .any(|q| q.owner_id == p.owner_id && provider_name_key(&q.name) == key);
            if clash {
                causes.push(conflict(Entity::Provider, "name"));
            }
        }
        Call::CreateConfig(c) => {
            if !found(model.get_provider(c.provider_id).await.map(|x| x.is_some())) {
                causes.push(Failure::NotFound(Entity::Provider));
            }
            if found(
                model
                    .get_config(c.user_id, c.provider_id)
                    .await
                    .map(|x| x.is_some()),
            ) {
                causes.push(conflict(Entity::Config, "provider_id"));
            }
            if let Some((u, p)) = ctx.configs.get(&c.id) {
                let live = model.get_config(*u, *p).await.ok().flatten();
                if live.is_some_and(|live| live.id == c.id) {
                    causes.push(conflict(Entity::Config, "id"));
                }
            }
        }
        _ => {}
    }
    causes
}

/// Applies `call` to both stores and compares the answers.
async fn step(
    store: &dyn Store,
    model: &MemoryStore,
    ctx: &mut Ctx,
    call: &Call,
    what: &str,
) -> Result<(), String> {
    let causes = causes(model, ctx, call).await;
    let expected = apply(model, call).await;
    let actual = apply(store, call).await;
    let agrees = match (&expected, &actual) {
        (Ok(e), Ok(a)) => e == a,
        (Err(e), Err(a)) => !matches!(a, Failure::Other(_)) && (a == e || causes.contains(a)),
        _ => false,
    };
    if !agrees {
        return Err(format!(
            "{what}: the store answered\n  {actual:?}\nwhere MemoryStore answered\n  {expected:?}\n\
                 to the call\n  {call:?}"
        ));
    }
    if expected.is_ok() {
        ctx.created(call);
    }
    Ok(())
}

fn differs<T: PartialEq + Debug>(what: &str, expected: &T, actual: &T) -> Result<(), String> {
    if expected == actual {
        Ok(())
    } else {
        Err(format!(
            "at the end of the sequence, {what}: the store holds\n  {actual:?}\nwhere MemoryStore holds\n  {expected:?}"
        ))
    }
}

/// Reads everything back from both stores and compares.
async fn compare_contents(store: &dyn Store, model: &MemoryStore, ctx: &Ctx) -> Result<(), String> {
    let both =
        |call: Call| async move { (apply(model, &call).await, apply(store, &call).await, call) };
    let mut calls = Vec::new();
    for u in &ctx.users {
        calls.push(Call::GetUser(*u));
        calls.push(Call::ListConversations(*u, None, Limit::MAX));
        calls.push(Call::ListProviders(*u, None, Limit::MAX));
        for p in &ctx.providers {
            calls.push(Call::GetConfig(*u, *p));
        }
    }
    for name in USER_NAMES {
        calls.push(Call::GetUserByUsername((*name).to_owned()));
    }
    for t in 0..TOKENS {
        calls.push(Call::GetSession(TokenHash([t + 1; 32])));
    }
    for (c, _) in &ctx.conversations {
        calls.push(Call::GetConversation(*c));
        calls.push(Call::ListMessages(*c, MessageOrder::default(), Limit::MAX));
    }
    for (m, _, _) in &ctx.messages {
        calls.push(Call::GetMessage(*m));
        calls.push(Call::ListAttachments(*m, None, Limit::MAX));
    }
    for a in &ctx.attachments {
        calls.push(Call::GetAttachment(*a));
    }
    for p in &ctx.providers {
        calls.push(Call::GetProvider(*p));
    }
    for call in calls {
        let (expected, actual, call) = both(call).await;
        differs(&format!("{call:?}"), &expected, &actual)?;
    }
    Ok(())
}
