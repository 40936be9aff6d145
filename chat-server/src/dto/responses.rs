//! Response objects: only what the contract shows, never a password hash, a sealed key or an
//! owner id the contract does not list.

use chat_core::{
    Attachment, Conversation, LlmProvider, Message, Metadata, Role, User, UserLlmConfig,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    /// Instructions that frame the conversation.
    System,
    /// The human.
    User,
    /// The model.
    Assistant,
    /// A tool's output.
    Tool,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::System => RoleName::System,
            Role::User => RoleName::User,
            Role::Assistant => RoleName::Assistant,
            Role::Tool => RoleName::Tool,
        }
    }
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// The user's id.
    pub id: Uuid,
    /// The name as registered.
    pub username: String,
    /// The email address, or `null`.
    pub email: Option<String>,
    /// When the user registered.
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        Self {
            id: u.id.into(),
            username: u.username,
            email: u.email,
            created_at: u.created_at,
        }
    }
}

/// A login's token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    /// The bearer token, shown only here.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// Whose token it is.
    pub user_id: Uuid,
}

/// A conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationOut {
    /// Its id.
    pub id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// Its title.
    pub title: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was renamed or a message was added or deleted.
    pub updated_at: DateTime<Utc>,
    /// How many messages it holds.
    pub message_count: u64,
}

impl From<Conversation> for ConversationOut {
    fn from(c: Conversation) -> Self {
        Self {
            id: c.id.into(),
            user_id: c.user_id.into(),
            title: c.title,
            created_at: c.created_at,
            updated_at: c.updated_at,
            message_count: c.message_count,
        }
    }
}

/// A message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    /// Its id.
    pub id: Uuid,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// Its position in the conversation: 1, 2, 3, … never reused.
    pub seq: u64,
    /// Who wrote it.
    pub role: RoleName,
    /// The text.
    pub content: String,
    /// The JSON object the client attached, as sent (whitespace outside strings removed),
    /// or `null`.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

impl From<Message> for MessageOut {
    fn from(m: Message) -> Self {
        Self {
            id: m.id.into(),
            conversation_id: m.conversation_id.into(),
            seq: m.seq,
            role: m.role.into(),
            content: m.content,
            metadata: m.metadata,
            created_at: m.created_at,
        }
    }
}

/// An attachment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentOut {
    /// Its id.
    pub id: Uuid,
    /// Its message.
    pub message_id: Uuid,
    /// Its type.
    pub file_type: String,
    /// Where the file lives.
    pub file_path: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

impl From<Attachment> for AttachmentOut {
    fn from(a: Attachment) -> Self {
        Self {
            id: a.id.into(),
            message_id: a.message_id.into(),
            file_type: a.file_type,
            file_path: a.file_path,
            created_at: a.created_at,
        }
    }
}

/// An LLM provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderOut {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Where its API lives.
    pub api_endpoint: String,
    /// Its owner, or `null` for a shared provider.
    pub owner_id: Option<Uuid>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<LlmProvider> for ProviderOut {
    fn from(p: LlmProvider) -> Self {
        Self {
            id: p.id.into(),
            name: p.name,
            api_endpoint: p.api_endpoint,
            owner_id: p.owner_id.map(Into::into),
            created_at: p.created_at,
        }
    }
}

/// A user's LLM config. The key itself is never returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigOut {
    /// Its id.
    pub id: Uuid,
    /// Whose key it is.
    pub user_id: Uuid,
    /// Which provider it is for.
    pub provider_id: Uuid,
    /// `…` and the key's last 4 characters for keys of 12 characters or more, else `null`.
    pub api_key_hint: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its key was last replaced.
    pub updated_at: DateTime<Utc>,
}

impl From<UserLlmConfig> for ConfigOut {
    fn from(c: UserLlmConfig) -> Self {
        Self {
            id: c.id.into(),
            user_id: c.user_id.into(),
            provider_id: c.provider_id.into(),
            api_key_hint: c.api_key_hint,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// The answer of the health and readiness checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}
