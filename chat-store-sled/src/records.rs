//! What is stored under each key: private records, encoded with postcard.
//!
//! The records are this crate's own rather than chat-core's serde forms, so a change to the
//! model's JSON shape can never change the bytes on disk; [`crate::FORMAT_VERSION`] names
//! this layout.

use chat_core::{
    Attachment, AttachmentId, ConfigId, Conversation, ConversationId, LlmProvider, Message,
    MessageId, Metadata, PasswordHash, ProviderId, Role, SealedKey, Session, SessionId, TokenHash,
    User, UserId, UserLlmConfig,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::StoreError;
use crate::keys::Id;

/// A timestamp exactly as given: whole seconds and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Time(i64, u32);

impl From<DateTime<Utc>> for Time {
    fn from(t: DateTime<Utc>) -> Self {
        Time(t.timestamp(), t.timestamp_subsec_nanos())
    }
}

impl TryFrom<Time> for DateTime<Utc> {
    type Error = StoreError;

    fn try_from(t: Time) -> Result<Self, StoreError> {
        DateTime::from_timestamp(t.0, t.1).ok_or(StoreError::Corrupt("timestamp out of range"))
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec fails only for types postcard cannot represent, and every record
    // here is plain fields.
    postcard::to_allocvec(value).expect("records are always encodable")
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(StoreError::Decode)
}

fn role_code(role: Role) -> u8 {
    match role {
        Role::System => 0,
        Role::User => 1,
        Role::Assistant => 2,
        Role::Tool => 3,
    }
}

fn role_from_code(code: u8) -> Result<Role, StoreError> {
    Ok(match code {
        0 => Role::System,
        1 => Role::User,
        2 => Role::Assistant,
        3 => Role::Tool,
        _ => return Err(StoreError::Corrupt("unknown role")),
    })
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct UserRec {
    pub id: Id,
    pub username: String,
    pub email: Option<String>,
    pub password_hash: String,
    pub created_at: Time,
}

impl UserRec {
    pub fn new(u: &User) -> Self {
        Self {
            id: u.id.to_bytes(),
            username: u.username.clone(),
            email: u.email.clone(),
            password_hash: u.password_hash.0.clone(),
            created_at: u.created_at.into(),
        }
    }

    pub fn into_model(self) -> Result<User, StoreError> {
        Ok(User {
            id: UserId::from_bytes(self.id),
            username: self.username,
            email: self.email,
            password_hash: PasswordHash(self.password_hash),
            created_at: self.created_at.try_into()?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SessionRec {
    pub id: Id,
    pub user_id: Id,
    pub token_hash: [u8; 32],
    pub created_at: Time,
    pub expires_at: Time,
}

impl SessionRec {
    pub fn new(s: &Session) -> Self {
        Self {
            id: s.id.to_bytes(),
            user_id: s.user_id.to_bytes(),
            token_hash: s.token_hash.0,
            created_at: s.created_at.into(),
            expires_at: s.expires_at.into(),
        }
    }

    pub fn into_model(self) -> Result<Session, StoreError> {
        Ok(Session {
            id: SessionId::from_bytes(self.id),
            user_id: UserId::from_bytes(self.user_id),
            token_hash: TokenHash(self.token_hash),
            created_at: self.created_at.try_into()?,
            expires_at: self.expires_at.try_into()?,
        })
    }
}

/// A conversation with the counters the store keeps for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConversationRec {
    pub id: Id,
    pub user_id: Id,
    pub title: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub message_count: u64,
    /// The last `seq` handed out; never goes down, so numbers are not reused.
    pub last_seq: u64,
}

impl ConversationRec {
    pub fn new(c: &Conversation) -> Self {
        Self {
            id: c.id.to_bytes(),
            user_id: c.user_id.to_bytes(),
            title: c.title.clone(),
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
            message_count: c.message_count,
            last_seq: 0,
        }
    }

    pub fn to_model(&self) -> Result<Conversation, StoreError> {
        Ok(Conversation {
            id: ConversationId::from_bytes(self.id),
            user_id: UserId::from_bytes(self.user_id),
            title: self.title.clone(),
            created_at: self.created_at.try_into()?,
            updated_at: self.updated_at.try_into()?,
            message_count: self.message_count,
        })
    }
}

/// A message; its conversation and `seq` are its key.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MessageRec {
    pub id: Id,
    pub user_id: Id,
    pub role: u8,
    pub content: String,
    /// The metadata object's text as the client sent it, compact ([`chat_core::Metadata`]):
    /// the form in which it is returned, which postcard carries as a plain string. Records
    /// written before metadata was kept as sent hold serde_json's compact serialization of
    /// the object here, which reads back just as well, so the format did not change.
    pub metadata: Option<String>,
    pub created_at: Time,
}

impl MessageRec {
    pub fn new(m: &Message) -> Self {
        Self {
            id: m.id.to_bytes(),
            user_id: m.user_id.to_bytes(),
            role: role_code(m.role),
            content: m.content.clone(),
            metadata: m.metadata.as_ref().map(|meta| meta.as_str().to_owned()),
            created_at: m.created_at.into(),
        }
    }

    pub fn into_model(self, conversation: Id, seq: u64) -> Result<Message, StoreError> {
        Ok(Message {
            id: MessageId::from_bytes(self.id),
            conversation_id: ConversationId::from_bytes(conversation),
            user_id: UserId::from_bytes(self.user_id),
            seq,
            role: role_from_code(self.role)?,
            content: self.content,
            metadata: self
                .metadata
                .map(|text| Metadata::from_stored(text).map_err(StoreError::Json))
                .transpose()?,
            created_at: self.created_at.try_into()?,
        })
    }
}

/// Where a message lives, and how often its attachments changed (so deleting the message
/// can tell its list of attachments went stale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MessagePos {
    pub conversation: Id,
    pub seq: u64,
    pub revision: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AttachmentRec {
    pub id: Id,
    pub message_id: Id,
    pub conversation_id: Id,
    pub user_id: Id,
    pub file_type: String,
    pub file_path: String,
    pub created_at: Time,
}

impl AttachmentRec {
    pub fn new(a: &Attachment) -> Self {
        Self {
            id: a.id.to_bytes(),
            message_id: a.message_id.to_bytes(),
            conversation_id: a.conversation_id.to_bytes(),
            user_id: a.user_id.to_bytes(),
            file_type: a.file_type.clone(),
            file_path: a.file_path.clone(),
            created_at: a.created_at.into(),
        }
    }

    pub fn into_model(self) -> Result<Attachment, StoreError> {
        Ok(Attachment {
            id: AttachmentId::from_bytes(self.id),
            message_id: MessageId::from_bytes(self.message_id),
            conversation_id: ConversationId::from_bytes(self.conversation_id),
            user_id: UserId::from_bytes(self.user_id),
            file_type: self.file_type,
            file_path: self.file_path,
            created_at: self.created_at.try_into()?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ProviderRec {
    pub id: Id,
    pub owner_id: Option<Id>,
    pub name: String,
    pub api_endpoint: String,
    pub created_at: Time,
    /// Moves whenever a config for this provider is added, so deleting the provider can
    /// tell its list of configs went stale.
    pub revision: u64,
}

impl ProviderRec {
    pub fn new(p: &LlmProvider) -> Self {
        Self {
            id: p.id.to_bytes(),
            owner_id: p.owner_id.map(UserId::to_bytes),
            name: p.name.clone(),
            api_endpoint: p.api_endpoint.clone(),
            created_at: p.created_at.into(),
            revision: 0,
        }
    }

    pub fn into_model(self) -> Result<LlmProvider, StoreError> {
        Ok(LlmProvider {
            id: ProviderId::from_bytes(self.id),
            owner_id: self.owner_id.map(UserId::from_bytes),
            name: self.name,
            api_endpoint: self.api_endpoint,
            created_at: self.created_at.try_into()?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ConfigRec {
    pub id: Id,
    pub user_id: Id,
    pub provider_id: Id,
    pub sealed_key: Vec<u8>,
    pub api_key_hint: Option<String>,
    pub created_at: Time,
    pub updated_at: Time,
}

impl ConfigRec {
    pub fn new(c: &UserLlmConfig) -> Self {
        Self {
            id: c.id.to_bytes(),
            user_id: c.user_id.to_bytes(),
            provider_id: c.provider_id.to_bytes(),
            sealed_key: c.sealed_key.0.clone(),
            api_key_hint: c.api_key_hint.clone(),
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
        }
    }

    pub fn into_model(self) -> Result<UserLlmConfig, StoreError> {
        Ok(UserLlmConfig {
            id: ConfigId::from_bytes(self.id),
            user_id: UserId::from_bytes(self.user_id),
            provider_id: ProviderId::from_bytes(self.provider_id),
            sealed_key: SealedKey(self.sealed_key),
            api_key_hint: self.api_key_hint,
            created_at: self.created_at.try_into()?,
            updated_at: self.updated_at.try_into()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message record as this format has always written it, metadata included: the bytes
    /// pin the layout, and metadata written before it was kept as sent (serde_json's
    /// compact text of the object, keys sorted) reads back as that same text.
    #[test]
    fn message_records_keep_their_layout() {
        let rec = MessageRec {
            id: [1; 16],
            user_id: [2; 16],
            role: 2,
            content: "hi".into(),
            metadata: Some(r#"{"a":1,"b":[1.5,"x"]}"#.into()),
            created_at: Time(1_700_000_000, 123_000),
        };
        let bytes = encode(&rec);
        assert_eq!(bytes, GOLDEN);
        let m = decode::<MessageRec>(GOLDEN)
            .unwrap()
            .into_model([3; 16], 7)
            .unwrap();
        assert_eq!(m.metadata.unwrap().as_str(), r#"{"a":1,"b":[1.5,"x"]}"#);
        assert_eq!(m.seq, 7);
    }

    /// Metadata goes to disk as its compact text, and comes back byte for byte.
    #[test]
    fn metadata_is_stored_as_sent() {
        let sent = r#"{ "z": 1E2, "a": [1.0, -0, 123456789012345678901234567890], "é": "\u00e9" }"#;
        let kept = r#"{"z":1E2,"a":[1.0,-0,123456789012345678901234567890],"é":"\u00e9"}"#;
        let message = Message {
            id: MessageId::new(),
            conversation_id: ConversationId::new(),
            user_id: UserId::new(),
            seq: 1,
            role: Role::User,
            content: "c".into(),
            metadata: Some(Metadata::parse_json(sent).unwrap()),
            created_at: chrono::Utc::now(),
        };
        let rec = MessageRec::new(&message);
        assert_eq!(rec.metadata.as_deref(), Some(kept));
        let back = decode::<MessageRec>(&encode(&rec))
            .unwrap()
            .into_model(message.conversation_id.to_bytes(), 1)
            .unwrap();
        assert_eq!(back.metadata.unwrap().as_str(), kept);
    }

    /// Text that is not a JSON object is refused rather than served.
    #[test]
    fn corrupt_metadata_is_an_error() {
        for text in ["[1]", "{", "\"1\""] {
            let rec = MessageRec {
                id: [1; 16],
                user_id: [2; 16],
                role: 1,
                content: "hi".into(),
                metadata: Some(text.into()),
                created_at: Time(0, 0),
            };
            assert!(matches!(
                rec.into_model([3; 16], 1),
                Err(StoreError::Json(_))
            ));
        }
    }

    /// postcard: the two ids, role 2, "hi", `Some` and the metadata text, then the time as
    /// zigzag varint seconds and varint nanoseconds.
    const GOLDEN: &[u8] = &[
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // id
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, // user_id
        2, // role
        2, 104, 105, // content
        1, 21, 123, 34, 97, 34, 58, 49, 44, 34, 98, 34, 58, 91, 49, 46, 53, 44, 34, 120, 34, 93,
        125, // metadata
        128, 196, 159, 213, 12, 248, 192, 7, // created_at
    ];
}
