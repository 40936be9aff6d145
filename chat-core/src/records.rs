//! Whole stored objects, as an operator's tools move them between stores: what
//! [`Store::scan`](crate::Store::scan) gives and [`Store::import`](crate::Store::import)
//! takes, and the cursor that pages through them.

use crate::error::{Error, Result};
use crate::ids::{AttachmentId, ConversationId, ProviderId, UserId};
use crate::model::{
    Attachment, Conversation, LlmProvider, Message, Session, TokenHash, User, UserLlmConfig,
};
use crate::store::Store;

/// A user with what the store keeps beside the [`User`] itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAccount {
    /// The user.
    pub user: User,
    /// Whether the operator has disabled the account: it holds no sessions and cannot log in.
    pub disabled: bool,
}

/// One stored object, complete: every field a store keeps, including what the API never
/// shows (password hashes, sealed keys, a conversation's last `seq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A user and whether they are disabled.
    User(UserAccount),
    /// A login session.
    Session(Session),
    /// A provider, shared or a user's own.
    Provider(LlmProvider),
    /// A user's config, with the key sealed as it was stored.
    Config(UserLlmConfig),
    /// A conversation with its counters.
    Conversation {
        /// The conversation, `message_count` and `updated_at` included.
        conversation: Conversation,
        /// The last `seq` the store gave out in it: never below any of its messages' `seq`,
        /// and above them when its last messages were deleted.
        last_seq: u64,
    },
    /// A message with its `seq`.
    Message(Message),
    /// An attachment.
    Attachment(Attachment),
}

/// The kinds of [`Record`], in the order an importer must take them: every kind after the
/// kinds it refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// [`Record::User`].
    User,
    /// [`Record::Session`].
    Session,
    /// [`Record::Provider`].
    Provider,
    /// [`Record::Config`], after the providers they use.
    Config,
    /// [`Record::Conversation`].
    Conversation,
    /// [`Record::Message`], after their conversations.
    Message,
    /// [`Record::Attachment`], after their messages.
    Attachment,
}

impl RecordKind {
    /// Every kind, parents first.
    pub const ALL: [RecordKind; 7] = [
        RecordKind::User,
        RecordKind::Session,
        RecordKind::Provider,
        RecordKind::Config,
        RecordKind::Conversation,
        RecordKind::Message,
        RecordKind::Attachment,
    ];

    /// A plural name for progress lines: `"users"`, `"messages"`, ….
    #[must_use]
    pub const fn plural(self) -> &'static str {
        match self {
            RecordKind::User => "users",
            RecordKind::Session => "sessions",
            RecordKind::Provider => "providers",
            RecordKind::Config => "configs",
            RecordKind::Conversation => "conversations",
            RecordKind::Message => "messages",
            RecordKind::Attachment => "attachments",
        }
    }
}

/// Where a [`Store::scan`](crate::Store::scan) starts: a kind, and the key of the last
/// record already seen (`None` to start from the beginning).
///
/// Each kind is scanned in the order of its key, the same on every store: users, providers,
/// conversations and attachments by id; sessions by token hash; configs by (user,
/// provider); messages by (conversation, `seq`). A key need not name an existing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanCursor {
    /// Users with an id above this.
    Users(Option<UserId>),
    /// Sessions with a token hash above this.
    Sessions(Option<TokenHash>),
    /// Providers with an id above this.
    Providers(Option<ProviderId>),
    /// Configs with a (user, provider) above this.
    Configs(Option<(UserId, ProviderId)>),
    /// Conversations with an id above this.
    Conversations(Option<ConversationId>),
    /// Messages with a (conversation, `seq`) above this.
    Messages(Option<(ConversationId, u64)>),
    /// Attachments with an id above this.
    Attachments(Option<AttachmentId>),
}

impl ScanCursor {
    /// The start of `kind`.
    #[must_use]
    pub const fn start(kind: RecordKind) -> Self {
        match kind {
            RecordKind::User => ScanCursor::Users(None),
            RecordKind::Session => ScanCursor::Sessions(None),
            RecordKind::Provider => ScanCursor::Providers(None),
            RecordKind::Config => ScanCursor::Configs(None),
            RecordKind::Conversation => ScanCursor::Conversations(None),
            RecordKind::Message => ScanCursor::Messages(None),
            RecordKind::Attachment => ScanCursor::Attachments(None),
        }
    }

    /// The kind this cursor scans.
    #[must_use]
    pub const fn kind(&self) -> RecordKind {
        match self {
            ScanCursor::Users(_) => RecordKind::User,
            ScanCursor::Sessions(_) => RecordKind::Session,
            ScanCursor::Providers(_) => RecordKind::Provider,
            ScanCursor::Configs(_) => RecordKind::Config,
            ScanCursor::Conversations(_) => RecordKind::Conversation,
            ScanCursor::Messages(_) => RecordKind::Message,
            ScanCursor::Attachments(_) => RecordKind::Attachment,
        }
    }
}

impl Record {
    /// The kind of this record.
    #[must_use]
    pub fn kind(&self) -> RecordKind {
        self.cursor().kind()
    }

    /// The cursor that continues a scan after this record.
    #[must_use]
    pub fn cursor(&self) -> ScanCursor {
        match self {
            Record::User(account) => ScanCursor::Users(Some(account.user.id)),
            Record::Session(s) => ScanCursor::Sessions(Some(s.token_hash)),
            Record::Provider(p) => ScanCursor::Providers(Some(p.id)),
            Record::Config(c) => ScanCursor::Configs(Some((c.user_id, c.provider_id))),
            Record::Conversation { conversation, .. } => {
                ScanCursor::Conversations(Some(conversation.id))
            }
            Record::Message(m) => ScanCursor::Messages(Some((m.conversation_id, m.seq))),
            Record::Attachment(a) => ScanCursor::Attachments(Some(a.id)),
        }
    }
}

/// [`Store::import`](crate::Store::import) for the kinds whose `create_*` call already keeps
/// every field as given (sessions, providers, configs, attachments), written once over those
/// calls. The kinds a store must import itself (users, conversations, messages, whose
/// disabled flag, last `seq` and `seq` no `create_*` call takes) are refused with
/// [`Error::Backend`]: a store calls this only for the others.
///
/// An object already there answers `Ok(false)`, whether found before the insert or by the
/// insert's id clash (another importer got there first).
pub async fn import_plain(store: &dyn Store, record: &Record) -> Result<bool> {
    match record {
        Record::User(_) | Record::Conversation { .. } | Record::Message(_) => Err(Error::backend(
            store.backend(),
            NotPlain(record.kind().plural()),
        )),
        Record::Session(s) => match store.get_session(&s.token_hash).await {
            Ok(Some(_)) => Ok(false),
            Ok(None) => kept_on_clash(store.create_session(s).await, "token"),
            Err(e) => Err(e),
        },
        Record::Provider(p) => match store.get_provider(p.id).await {
            Ok(Some(_)) => Ok(false),
            Ok(None) => kept_on_clash(store.create_provider(p).await, "id"),
            Err(e) => Err(e),
        },
        Record::Config(c) => match store.get_config(c.user_id, c.provider_id).await {
            Ok(Some(_)) => Ok(false),
            Ok(None) => kept_on_clash(store.create_config(c).await, "provider_id"),
            Err(e) => Err(e),
        },
        Record::Attachment(a) => match store.get_attachment(a.id).await {
            Ok(Some(_)) => Ok(false),
            Ok(None) => kept_on_clash(store.create_attachment(a).await, "id"),
            Err(e) => Err(e),
        },
    }
}

/// [`import_plain`] was given a kind the store has to import itself.
#[derive(Debug, thiserror::Error)]
#[error("{0} cannot be imported through create calls; the store imports them itself")]
struct NotPlain(&'static str);

/// `Ok(true)` for an insert, `Ok(false)` for a clash on the record's own identity.
fn kept_on_clash(created: Result<()>, identity: &'static str) -> Result<bool> {
    match created {
        Ok(()) => Ok(true),
        Err(Error::Conflict { field, .. }) if field == identity => Ok(false),
        Err(e) => Err(e),
    }
}
