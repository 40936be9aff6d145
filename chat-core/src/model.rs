//! The stored entities.
//!
//! These are what a [`Store`](crate::Store) keeps and returns. They hold plain values that
//! were validated on the way in (see [`crate::validation`]); reading them back does not
//! validate again. All timestamps are UTC with microsecond precision (see [`crate::time`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{
    AttachmentId, ConfigId, ConversationId, MessageId, ProviderId, SessionId, UserId,
};
use crate::secrets::SealedKey;
use crate::validation::{Metadata, Rule, ValidationError};

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The name as chosen; unique ignoring ASCII case.
    pub username: String,
    /// An optional email address; not unique.
    pub email: Option<String>,
    /// The Argon2id hash of the password, in PHC string form.
    pub password_hash: PasswordHash,
    /// When the user registered.
    pub created_at: DateTime<Utc>,
}

/// An Argon2id password hash in PHC string form. Kept out of `Debug` output all the same.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A login session. The token itself is never stored, only its SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session's id.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// SHA-256 of the bearer token.
    pub token_hash: TokenHash,
    /// When the user logged in.
    pub created_at: DateTime<Utc>,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

/// The SHA-256 hash of a bearer token: what a store keeps and looks sessions up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in a debugger and useless to an attacker.
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

/// A conversation between a user and an LLM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The conversation's id; conversations are listed newest first by id.
    pub id: ConversationId,
    /// The owner.
    pub user_id: UserId,
    /// The title, trimmed.
    pub title: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was created, renamed, or last had a message added or deleted.
    pub updated_at: DateTime<Utc>,
    /// How many messages it holds now.
    pub message_count: u64,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The human.
    User,
    /// The model.
    Assistant,
    /// A tool's output.
    Tool,
}

impl Role {
    /// Every role, in the order the contract lists them.
    pub const ALL: [Role; 4] = [Role::System, Role::User, Role::Assistant, Role::Tool];
    const NAMES: &'static [&'static str] = &["system", "user", "assistant", "tool"];

    /// The role's name on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or(ValidationError::new("role", Rule::OneOf(Role::NAMES)))
    }
}

/// A message in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// The conversation's owner, kept on the message so access checks need no second read.
    pub user_id: UserId,
    /// The position in its conversation: 1, 2, 3, … assigned by the store, never reused.
    pub seq: u64,
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// A JSON object the client attached, kept as sent.
    pub metadata: Option<Metadata>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// A message before the store has given it its `seq`: what
/// [`Store::append_message`](crate::Store::append_message) takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDraft {
    /// The message's id.
    pub id: MessageId,
    /// The conversation to append to.
    pub conversation_id: ConversationId,
    /// Must be the conversation's owner; the store answers not found otherwise.
    pub user_id: UserId,
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// A JSON object the client attached, kept as sent.
    pub metadata: Option<Metadata>,
    /// When it was added; becomes the conversation's `updated_at`.
    pub created_at: DateTime<Utc>,
}

impl MessageDraft {
    /// The message this draft becomes at position `seq`.
    #[must_use]
    pub fn with_seq(self, seq: u64) -> Message {
        Message {
            id: self.id,
            conversation_id: self.conversation_id,
            user_id: self.user_id,
            seq,
            role: self.role,
            content: self.content,
            metadata: self.metadata,
            created_at: self.created_at,
        }
    }
}

/// A reference to a file that belongs to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The attachment's id; a message's attachments are listed by id.
    pub id: AttachmentId,
    /// The message it belongs to.
    pub message_id: MessageId,
    /// The message's conversation, so deleting a conversation finds its attachments.
    pub conversation_id: ConversationId,
    /// The owner, kept so access checks need no second read.
    pub user_id: UserId,
    /// A media type or short type token.
    pub file_type: String,
    /// Where the file lives, as the client names it.
    pub file_path: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// An LLM provider: a name and the endpoint to call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmProvider {
    /// The provider's id; providers are listed by id.
    pub id: ProviderId,
    /// The user who created it, or `None` for a shared provider set up by the operator.
    pub owner_id: Option<UserId>,
    /// Its name, trimmed; unique per owner ignoring case.
    pub name: String,
    /// Where its API lives.
    pub api_endpoint: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl LlmProvider {
    /// Whether `user` may see and use this provider: it is shared, or it is theirs.
    #[must_use]
    pub fn is_visible_to(&self, user: UserId) -> bool {
        self.owner_id.is_none_or(|owner| owner == user)
    }
}

/// A user's API key for one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLlmConfig {
    /// The config's id.
    pub id: ConfigId,
    /// Whose key it is.
    pub user_id: UserId,
    /// Which provider it is for.
    pub provider_id: ProviderId,
    /// The key, sealed under the master key and bound to `user_id` and `provider_id`.
    pub sealed_key: SealedKey,
    /// `"…"` and the key's last four characters, or `None` for short keys.
    pub api_key_hint: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its key was last replaced.
    pub updated_at: DateTime<Utc>,
}
