//! Scans of every record of a kind in key order, for copying a store, and of the
//! conversations a retention policy removes. Each is a range of the tree the kind lives in,
//! so a page starts where the last one ended without reading what came before.

use std::ops::Bound;

use chat_core::{Conversation, ConversationId, Record, Result, ScanCursor, UserAccount};
use chrono::{DateTime, Utc};

use super::{Trees, sled_err};
use crate::error::StoreError;
use crate::keys::{self, Id};
use crate::records::{
    AttachmentRec, ConfigRec, ConversationRec, MessageRec, ProviderRec, SessionRec, UserRec, decode,
};

/// The entries of `tree` with keys above `after` (every entry without one), in key order.
fn after(tree: &sled::Tree, after: Option<&[u8]>) -> sled::Iter {
    let lower = match after {
        Some(key) => Bound::Excluded(key.to_vec()),
        None => Bound::Unbounded,
    };
    tree.range::<Vec<u8>, _>((lower, Bound::Unbounded))
}

impl Trees {
    pub(crate) fn scan(&self, from: ScanCursor, limit: usize) -> Result<Vec<Record>> {
        let mut page = Vec::with_capacity(limit.min(256));
        match from {
            ScanCursor::Users(cursor) => {
                let cursor = cursor.map(|id| id.to_bytes());
                for item in after(&self.users, cursor.as_ref().map(|k| &k[..])).take(limit) {
                    let (_, value) = item.map_err(sled_err)?;
                    let rec: UserRec = decode(&value)?;
                    let disabled = self.is_disabled(rec.id)?;
                    page.push(Record::User(UserAccount {
                        user: rec.into_model()?,
                        disabled,
                    }));
                }
            }
            ScanCursor::Sessions(cursor) => {
                let cursor = cursor.map(|t| t.0);
                for item in after(&self.sessions, cursor.as_ref().map(|k| &k[..])) {
                    if page.len() == limit {
                        break;
                    }
                    let (_, value) = item.map_err(sled_err)?;
                    let rec: SessionRec = decode(&value)?;
                    // As get_session: a disabled user's sessions are already dead.
                    if !self.is_disabled(rec.user_id)? {
                        page.push(Record::Session(rec.into_model()?));
                    }
                }
            }
            ScanCursor::Providers(cursor) => {
                let cursor = cursor.map(|id| id.to_bytes());
                for item in after(&self.providers, cursor.as_ref().map(|k| &k[..])).take(limit) {
                    let (_, value) = item.map_err(sled_err)?;
                    page.push(Record::Provider(
                        decode::<ProviderRec>(&value)?.into_model()?,
                    ));
                }
            }
            ScanCursor::Configs(cursor) => {
                let cursor = cursor.map(|(u, p)| keys::pair(u.to_bytes(), p.to_bytes()));
                for item in after(&self.configs, cursor.as_ref().map(|k| &k[..])).take(limit) {
                    let (_, value) = item.map_err(sled_err)?;
                    page.push(Record::Config(decode::<ConfigRec>(&value)?.into_model()?));
                }
            }
            ScanCursor::Conversations(cursor) => {
                let cursor = cursor.map(|id| id.to_bytes());
                for item in after(&self.conversations, cursor.as_ref().map(|k| &k[..])).take(limit)
                {
                    let (_, value) = item.map_err(sled_err)?;
                    let rec: ConversationRec = decode(&value)?;
                    page.push(Record::Conversation {
                        conversation: rec.to_model()?,
                        last_seq: rec.last_seq,
                    });
                }
            }
            ScanCursor::Messages(cursor) => {
                let cursor = cursor.map(|(c, seq)| keys::message(c.to_bytes(), seq));
                // What is left of a deleted conversation until its purge is skipped; the
                // last answer is remembered, as a page mostly holds one conversation.
                let mut live: Option<(Id, bool)> = None;
                for item in after(&self.messages, cursor.as_ref().map(|k| &k[..])) {
                    if page.len() == limit {
                        break;
                    }
                    let (key, value) = item.map_err(sled_err)?;
                    let conversation =
                        keys::first(&key).ok_or(StoreError::Corrupt("message key"))?;
                    let seq = keys::message_seq(&key).ok_or(StoreError::Corrupt("message key"))?;
                    let exists = match live {
                        Some((id, exists)) if id == conversation => exists,
                        _ => {
                            let exists = self.conversation_exists(conversation)?;
                            live = Some((conversation, exists));
                            exists
                        }
                    };
                    if exists {
                        let rec: MessageRec = decode(&value)?;
                        page.push(Record::Message(rec.into_model(conversation, seq)?));
                    }
                }
            }
            ScanCursor::Attachments(cursor) => {
                let cursor = cursor.map(|id| id.to_bytes());
                for item in after(&self.attachment_ids, cursor.as_ref().map(|k| &k[..])) {
                    if page.len() == limit {
                        break;
                    }
                    let (id, owner) = item.map_err(sled_err)?;
                    let id = keys::first(&id).ok_or(StoreError::Corrupt("attachment id key"))?;
                    let message =
                        keys::first(&owner).ok_or(StoreError::Corrupt("attachment index"))?;
                    let conversation =
                        keys::second(&owner).ok_or(StoreError::Corrupt("attachment index"))?;
                    let value = self
                        .attachments
                        .get(keys::pair(message, id))
                        .map_err(sled_err)?;
                    if let Some(value) = value {
                        if self.conversation_exists(conversation)? {
                            let rec: AttachmentRec = decode(&value)?;
                            page.push(Record::Attachment(rec.into_model()?));
                        }
                    }
                }
            }
        }
        Ok(page)
    }

    /// The conversations not updated since `before`, by id: a walk of the conversations
    /// tree (sled keeps no index by time), so its cost follows the conversations read.
    pub(crate) fn list_idle_conversations(
        &self,
        before: DateTime<Utc>,
        cursor: Option<ConversationId>,
        limit: usize,
    ) -> Result<Vec<Conversation>> {
        let cursor = cursor.map(|id| id.to_bytes());
        let mut page = Vec::new();
        for item in after(&self.conversations, cursor.as_ref().map(|k| &k[..])) {
            if page.len() == limit {
                break;
            }
            let (_, value) = item.map_err(sled_err)?;
            let conversation = decode::<ConversationRec>(&value)?.to_model()?;
            if conversation.updated_at < before {
                page.push(conversation);
            }
        }
        Ok(page)
    }
}
