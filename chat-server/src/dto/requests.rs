//! Request bodies, each read from a JSON object field by field, in the order the contract
//! lists them, so the first field at fault is the one reported.

use chat_core::ValidationError;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use super::fields::{Fields, FromFields};
use super::responses::RoleName;
use super::secret::SecretText;

/// A registration.
#[derive(Debug, ToSchema)]
pub struct RegisterRequest {
    /// 3 to 64 characters of `[A-Za-z0-9_.-]`, unique ignoring case.
    pub username: String,
    /// 8 to 1024 characters.
    #[schema(value_type = String, format = Password)]
    pub password: SecretText,
    /// At most 254 characters with exactly one `@`.
    pub email: Option<String>,
}

impl FromFields for RegisterRequest {
    fn from_fields(f: &mut Fields) -> Result<Self, ValidationError> {
        Ok(Self {
            username: f.str("username")?,
            password: f.secret("password")?,
            email: f.opt_str("email")?,
        })
    }
}

/// A login.
#[derive(Debug, ToSchema)]
pub struct LoginRequest {
    /// The user name, matched ignoring case.
    pub username: String,
    /// The password.
    #[schema(value_type = String, format = Password)]
    pub password: SecretText,
}

impl FromFields for LoginRequest {
    fn from_fields(f: &mut Fields) -> Result<Self, ValidationError> {
        Ok(Self {
            username: f.str("username")?,
            password: f.secret("password")?,
        })
    }
}

/// A conversation to create.
#[derive(Debug, ToSchema)]
pub struct CreateConversationRequest {
    /// Must be the caller's own id when given.
    pub user_id: Option<Uuid>,
    /// 1 to 200 characters after trimming, no control characters.
    pub title: String,
}

impl FromFields for CreateConversationRequest {
    fn from_fields(f: &mut Fields) -> Result<Self, ValidationError> {
        Ok(Self {
            user_id: f.opt_id::<chat_core::UserId>("user_id")?.map(Into::into),
            title: f.str("title")?,
        })
    }
}

/// A new title.
#[derive(Debug, ToSchema)]
pub struct RenameConversationRequest {
    /// 1 to 200 characters after trimming, no control characters.
    pub title: String,
}

impl FromFields for RenameConversationRequest {
    fn from_fields(f: &mut Fields) -> Result<Self, ValidationError> {
        Ok(Self {
            title: f.str("title")?,
        })
    }
}

/// A message to append.
#[derive(Debug, ToSchema)]
pub struct CreateMessageRequest {
    /// The conversation to append to.
    pub conversation_id: Uuid,
    /// Who wrote it.
    #[schema(value_type = RoleName)]
    pub role: String,
    /// 1 byte to 256 KiB (configurable) of text without U+0000.
    pub content: String,
    /// A JSON object of at most 16 KiB, stored and returned as sent (whitespace outside
    /// strings removed); kept here as the client's JSON text.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
}

impl FromFields for CreateMessageRequest {
    fn from_fields(f: &mut Fields) -> Result<Self, ValidationError> {
        Ok(Self {
            conversation_id: f.id::<chat_core::ConversationId>("conversation_id")?.into(),
            role: f.str("role")?,
            content: f.str("content")?,
            metadata: f.raw("metadata"),
        })
    }
}

/// An attachment to add to a message.
#[derive(Debug, ToSchema)]
pub struct CreateAttachmentRequest {
    /// The message it belongs to.
    pub message_id: Uuid,
    /// A media type or short token: 1 to 127 characters, no spaces or control characters.
    pub file_type: String,
    /// Where the file lives: 1 to 4096 bytes, no control characters.
    pub file_path: String,
}

impl FromFields for CreateAttachmentRequest {
    fn from_fields(f: &mut Fields) -> Result<Self, ValidationError> {
        Ok(Self {
            message_id: f.id::<chat_core::MessageId>("message_id")?.into(),
            file_type: f.str("file_type")?,
            file_path: f.str("file_path")?,
        })
    }
}

/// A private LLM provider to create.
#[derive(Debug, ToSchema)]
pub struct CreateProviderRequest {
    /// 1 to 100 characters, no control characters; unique among the caller's providers.
    pub name: String,
    /// An absolute http or https URL of at most 2048 characters.
    pub api_endpoint: String,
}

impl FromFields for CreateProviderRequest {
    fn from_fields(f: &mut Fields) -> Result<Self, ValidationError> {
        Ok(Self {
            name: f.str("name")?,
            api_endpoint: f.str("api_endpoint")?,
        })
    }
}

/// The caller's API key for a provider.
#[derive(Debug, ToSchema)]
pub struct CreateConfigRequest {
    /// Must be the caller's own id when given.
    pub user_id: Option<Uuid>,
    /// A provider the caller can see.
    pub provider_id: Uuid,
    /// 1 to 4096 characters, no whitespace or control characters. Never returned.
    #[schema(value_type = String, format = Password)]
    pub api_key: SecretText,
}

impl FromFields for CreateConfigRequest {
    fn from_fields(f: &mut Fields) -> Result<Self, ValidationError> {
        Ok(Self {
            user_id: f.opt_id::<chat_core::UserId>("user_id")?.map(Into::into),
            provider_id: f.id::<chat_core::ProviderId>("provider_id")?.into(),
            api_key: f.secret("api_key")?,
        })
    }
}

/// A replacement API key.
#[derive(Debug, ToSchema)]
pub struct UpdateConfigRequest {
    /// 1 to 4096 characters, no whitespace or control characters. Never returned.
    #[schema(value_type = String, format = Password)]
    pub api_key: SecretText,
}

impl FromFields for UpdateConfigRequest {
    fn from_fields(f: &mut Fields) -> Result<Self, ValidationError> {
        Ok(Self {
            api_key: f.secret("api_key")?,
        })
    }
}

/// A completion to run.
#[derive(Debug, ToSchema)]
pub struct CompletionRequestBody {
    /// A provider the caller can see and has a config (an API key) for.
    pub provider_id: Uuid,
    /// The model, 1 to 200 characters, no whitespace or control characters.
    pub model: String,
    /// The sampling temperature, 0 to 2.
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    /// The reply's token limit, 1 to 1000000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_tokens: Option<u64>,
    /// Whether to answer with server-sent events as the reply arrives (default false).
    pub stream: Option<bool>,
}

impl FromFields for CompletionRequestBody {
    fn from_fields(f: &mut Fields) -> Result<Self, ValidationError> {
        use chat_core::validation::Rule;
        Ok(Self {
            provider_id: f.id::<chat_core::ProviderId>("provider_id")?.into(),
            model: f.str("model")?,
            temperature: f.opt_value("temperature", Rule::Other("must be a number from 0 to 2"))?,
            max_tokens: f.opt_value(
                "max_tokens",
                Rule::Range {
                    min: 1,
                    max: 1_000_000,
                },
            )?,
            stream: f.opt_value("stream", Rule::Other("must be true or false"))?,
        })
    }
}
