//! What callers hand the service to create things: the `New…` types.
//!
//! Every field is one of the validated types of [`crate::validation`], so a `New…` value can
//! only exist once its fields have passed validation. Each type also has a `parse` function
//! that takes the raw values of a request and reports the first field at fault.

use serde_json::value::RawValue;

use crate::ids::{ConversationId, MessageId, ProviderId, UserId};
use crate::model::Role;
use crate::validation::{
    ApiEndpoint, ApiKey, Content, Email, FilePath, FileType, Metadata, Password, ProviderName,
    Title, Username, ValidationError,
};

/// A registration.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The name to register.
    pub username: Username,
    /// The password, hashed before it is stored.
    pub password: Password,
    /// An optional email address.
    pub email: Option<Email>,
}

impl NewUser {
    /// Validates a registration's raw fields.
    ///
    /// ```
    /// use chat_core::NewUser;
    /// assert!(NewUser::parse("ada", "correct horse", Some("ada@example.com")).is_ok());
    /// assert_eq!(NewUser::parse("a", "correct horse", None).unwrap_err().field, "username");
    /// ```
    pub fn parse(
        username: &str,
        password: &str,
        email: Option<&str>,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            username: Username::parse(username)?,
            password: Password::parse(password)?,
            email: email.map(Email::parse).transpose()?,
        })
    }
}

/// A conversation to create.
#[derive(Debug, Clone)]
pub struct NewConversation {
    /// Whose conversation; `None` means the caller. Anyone else is forbidden.
    pub user_id: Option<UserId>,
    /// Its title.
    pub title: Title,
}

impl NewConversation {
    /// Validates a conversation's raw fields.
    pub fn parse(user_id: Option<UserId>, title: &str) -> Result<Self, ValidationError> {
        Ok(Self {
            user_id,
            title: Title::parse(title)?,
        })
    }
}

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The conversation to append to.
    pub conversation_id: ConversationId,
    /// Who wrote it.
    pub role: Role,
    /// The text, without U+0000. Its length is the service's to check, against the limit the
    /// operator set ([`ServiceConfig::max_content_bytes`](crate::ServiceConfig)).
    pub content: Content,
    /// An optional JSON object, kept as sent.
    pub metadata: Option<Metadata>,
}

impl NewMessage {
    /// Validates a message's raw fields, all but the content's length, which
    /// [`ChatService::append_message`](crate::ChatService::append_message) checks against
    /// its configured limit.
    ///
    /// `metadata` is JSON text, as the client sent it (see [`Metadata::parse_json`]); a
    /// [`serde_json::Value`] can be handed over with [`serde_json::value::to_raw_value`].
    ///
    /// ```
    /// use chat_core::{ConversationId, NewMessage};
    /// let chat = ConversationId::new();
    /// assert!(NewMessage::parse(chat, "user", "hello", None).is_ok());
    /// assert_eq!(NewMessage::parse(chat, "robot", "hello", None).unwrap_err().field, "role");
    /// assert_eq!(NewMessage::parse(chat, "user", "a\0b", None).unwrap_err().field, "content");
    ///
    /// let sent = serde_json::from_str(r#"{"z": 1E2, "a": [1.0, -0]}"#).unwrap();
    /// let message = NewMessage::parse(chat, "user", "hello", Some(sent)).unwrap();
    /// assert_eq!(message.metadata.unwrap().as_str(), r#"{"z":1E2,"a":[1.0,-0]}"#);
    /// ```
    pub fn parse(
        conversation_id: ConversationId,
        role: &str,
        content: &str,
        metadata: Option<Box<RawValue>>,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            conversation_id,
            role: role.parse()?,
            content: Content::parse_any_length(content)?,
            metadata: metadata
                .map(|raw| Metadata::parse_json(raw.get()))
                .transpose()?,
        })
    }
}

/// An attachment to add to a message.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// The message it belongs to.
    pub message_id: MessageId,
    /// Its type.
    pub file_type: FileType,
    /// Where the file lives.
    pub file_path: FilePath,
}

impl NewAttachment {
    /// Validates an attachment's raw fields.
    pub fn parse(
        message_id: MessageId,
        file_type: &str,
        file_path: &str,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            message_id,
            file_type: FileType::parse(file_type)?,
            file_path: FilePath::parse(file_path)?,
        })
    }
}

/// An LLM provider to create.
#[derive(Debug, Clone)]
pub struct NewProvider {
    /// Its name.
    pub name: ProviderName,
    /// Its endpoint.
    pub api_endpoint: ApiEndpoint,
}

impl NewProvider {
    /// Validates a provider's raw fields.
    pub fn parse(name: &str, api_endpoint: &str) -> Result<Self, ValidationError> {
        Ok(Self {
            name: ProviderName::parse(name)?,
            api_endpoint: ApiEndpoint::parse(api_endpoint)?,
        })
    }
}

/// A user's API key for a provider.
#[derive(Debug, Clone)]
pub struct NewConfig {
    /// Whose config; `None` means the caller. Anyone else is forbidden.
    pub user_id: Option<UserId>,
    /// The provider the key is for.
    pub provider_id: ProviderId,
    /// The key, sealed before it is stored.
    pub api_key: ApiKey,
}

impl NewConfig {
    /// Validates a config's raw fields.
    pub fn parse(
        user_id: Option<UserId>,
        provider_id: ProviderId,
        api_key: &str,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            user_id,
            provider_id,
            api_key: ApiKey::parse(api_key)?,
        })
    }
}
