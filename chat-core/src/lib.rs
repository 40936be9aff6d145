#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod accounts;
pub mod completion;
mod error;
mod ids;
mod input;
mod memory;
mod model;
mod records;
mod secrets;
mod service;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
pub mod validation;

pub use error::{BoxError, Entity, Error, Forbidden, Result, Unavailable};
pub use ids::{
    AttachmentId, ConfigId, ConversationId, InvalidId, MessageId, ProviderId, SessionId, UserId,
};
pub use input::{NewAttachment, NewConfig, NewConversation, NewMessage, NewProvider, NewUser};
pub use memory::MemoryStore;
pub use model::{
    Attachment, Conversation, LlmProvider, Message, MessageDraft, PasswordHash, Role, Session,
    TokenHash, User, UserLlmConfig,
};
pub use records::{Record, RecordKind, ScanCursor, UserAccount, import_plain};
pub use secrets::{InvalidMasterKey, MasterKey, SealedKey, Sealer};
pub use service::{Caller, ChatService, IssuedToken, Pruned, ServiceConfig};
pub use store::{MessageOrder, Store};
pub use validation::{
    ApiEndpoint, ApiKey, Content, Email, FilePath, FileType, Limit, Metadata, Password,
    ProviderName, Title, Username, ValidationError, provider_name_key, username_key,
};
