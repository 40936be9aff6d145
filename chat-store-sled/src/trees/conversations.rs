//! Conversations, and their deletion: one small transaction that makes the conversation
//! unreachable, then a purge of what it held in transactions of bounded size.

use chat_core::{Conversation, ConversationId, Entity, Error, Result, UserId};
use chrono::{DateTime, Utc};
use sled::Transactional;

use super::{Trees, conflict, fail, purge_first, read, settle, sled_err, tx_decode};
use crate::error::StoreError;
use crate::keys::{self, Id, MAX_ID, MIN_ID};
use crate::records::{ConversationRec, MessagePos, encode};

/// How many messages (and how many attachments) one transaction of a conversation's purge
/// removes.
const PURGE_BATCH: usize = 1_000;

impl Trees {
    fn conversation_rec(&self, id: Id) -> Result<Option<ConversationRec>> {
        read(self.conversations.get(id).map_err(sled_err)?)
    }

    /// Whether the conversation is still there. Reads of messages and attachments ask
    /// after reading them, so nothing of a deleted conversation is ever answered.
    pub(super) fn conversation_exists(&self, id: Id) -> Result<bool> {
        self.conversations.contains_key(id).map_err(sled_err)
    }

    pub(crate) fn create_conversation(&self, conversation: &Conversation) -> Result<()> {
        let id = conversation.id.to_bytes();
        let index = keys::pair(conversation.user_id.to_bytes(), id);
        let value = encode(&ConversationRec::new(conversation));
        self.retrying(|| {
            Ok(
                (&self.conversations, &self.user_conversations, &self.deleted).transaction(
                    |(convs, by_user, deleted)| {
                        if convs.get(id)?.is_some() {
                            return fail(conflict(Entity::Conversation, "id"));
                        }
                        // The same id again, while the last one's messages are being
                        // removed: they must be gone before new ones share the prefix.
                        if deleted.get(id)?.is_some() {
                            return purge_first(id);
                        }
                        convs.insert(&id, value.as_slice())?;
                        by_user.insert(&index, &[])?;
                        Ok(())
                    },
                ),
            )
        })
    }

    pub(crate) fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        Ok(self
            .conversation_rec(id.to_bytes())?
            .map(|rec| rec.to_model())
            .transpose()?)
    }

    pub(crate) fn list_conversations(
        &self,
        user: UserId,
        before: Option<ConversationId>,
        limit: usize,
    ) -> Result<Vec<Conversation>> {
        let user = user.to_bytes();
        let lower = keys::pair(user, MIN_ID);
        let range = match before {
            Some(before) if before.to_bytes() == MIN_ID => return Ok(Vec::new()),
            Some(before) => self
                .user_conversations
                .range(lower..keys::pair(user, before.to_bytes())),
            None => self
                .user_conversations
                .range(lower..=keys::pair(user, MAX_ID)),
        };
        let mut page = Vec::with_capacity(limit.min(64));
        for key in range.keys().rev() {
            if page.len() == limit {
                break;
            }
            let key = key.map_err(sled_err)?;
            let id = keys::second(&key).ok_or(StoreError::Corrupt("conversation index key"))?;
            // A conversation deleted since the index was read is skipped, not an error.
            if let Some(rec) = self.conversation_rec(id)? {
                page.push(rec.to_model()?);
            }
        }
        Ok(page)
    }

    pub(crate) fn rename_conversation(
        &self,
        id: ConversationId,
        title: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>> {
        let id = id.to_bytes();
        settle(self.conversations.transaction(|convs| {
            let Some(bytes) = convs.get(id)? else {
                return Ok(None);
            };
            let mut rec: ConversationRec = tx_decode(&bytes)?;
            rec.title = title.to_owned();
            rec.updated_at = at.into();
            convs.insert(&id, encode(&rec))?;
            match rec.to_model() {
                Ok(conversation) => Ok(Some(conversation)),
                Err(e) => fail(e),
            }
        }))
    }

    /// Deletes the conversation in one small transaction, then removes what it held.
    ///
    /// The transaction removes the conversation's row and marks its id in `deleted`. From
    /// that moment the delete has happened for everyone: appends and new attachments find no
    /// conversation, and every read of a message or an attachment checks that its
    /// conversation still exists. [`purge`](Self::purge) then removes the leftovers in
    /// transactions of bounded size, so deleting a conversation of a million messages
    /// neither builds one huge transaction nor holds sled's lock for long.
    pub(crate) fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        let id = id.to_bytes();
        let deleted = self.mark_deleted(id)?;
        if deleted {
            self.purge(id)?;
        }
        Ok(deleted)
    }

    pub(crate) fn mark_deleted(&self, id: Id) -> Result<bool> {
        settle(
            (&self.conversations, &self.user_conversations, &self.deleted).transaction(
                |(convs, by_user, deleted)| {
                    let Some(bytes) = convs.remove(&id)? else {
                        return Ok(false);
                    };
                    let rec: ConversationRec = tx_decode(&bytes)?;
                    by_user.remove(&keys::pair(rec.user_id, id))?;
                    deleted.insert(&id, &[])?;
                    Ok(true)
                },
            ),
        )
    }

    /// Removes the messages, message ids and attachments of the deleted conversation `id`,
    /// [`PURGE_BATCH`] of each per transaction, then its mark.
    ///
    /// Nothing can be added to a deleted conversation, so each pass finds less, and the
    /// loop ends. Two purges of the same conversation at once are harmless: removing what
    /// is gone does nothing, and index entries are removed only while they still point
    /// into this conversation (an id may have been used again elsewhere).
    pub(crate) fn purge(&self, id: Id) -> Result<()> {
        loop {
            let mut messages = Vec::new();
            for item in self.messages.scan_prefix(id).take(PURGE_BATCH) {
                let (key, value) = item.map_err(sled_err)?;
                let seq = keys::message_seq(&key).ok_or(StoreError::Corrupt("message key"))?;
                // The id is the record's first field, so the rest need not be decoded.
                let (message, _): (Id, _) = postcard::take_from_bytes(&value)
                    .map_err(|e| Error::from(StoreError::Decode(e)))?;
                messages.push((key, seq, message));
            }
            let mut attachments = Vec::new();
            for item in self
                .conversation_attachments
                .scan_prefix(id)
                .take(PURGE_BATCH)
            {
                let (key, value) = item.map_err(sled_err)?;
                let attachment = keys::second(&key).ok_or(StoreError::Corrupt("attachment key"))?;
                let message = keys::first(&value).ok_or(StoreError::Corrupt("attachment index"))?;
                attachments.push((attachment, message));
            }
            let done = messages.is_empty() && attachments.is_empty();
            let trees = (
                &self.deleted,
                &self.messages,
                &self.message_ids,
                &self.attachments,
                &self.attachment_ids,
                &self.conversation_attachments,
            );
            settle(trees.transaction(
                |(
                    deleted,
                    messages_tree,
                    message_ids,
                    attachments_tree,
                    attachment_ids,
                    conv_attachments,
                )| {
                    if done {
                        deleted.remove(&id)?;
                        return Ok(());
                    }
                    for (key, seq, message) in &messages {
                        messages_tree.remove(key)?;
                        if let Some(bytes) = message_ids.get(message)? {
                            let pos: MessagePos = tx_decode(&bytes)?;
                            if pos.conversation == id && pos.seq == *seq {
                                message_ids.remove(message)?;
                            }
                        }
                    }
                    for (attachment, message) in &attachments {
                        attachments_tree.remove(&keys::pair(*message, *attachment))?;
                        if let Some(owner) = attachment_ids.get(attachment)? {
                            if keys::second(&owner) == Some(id) {
                                attachment_ids.remove(attachment)?;
                            }
                        }
                        conv_attachments.remove(&keys::pair(id, *attachment))?;
                    }
                    Ok(())
                },
            ))?;
            if done {
                return Ok(());
            }
        }
    }

    /// Completes the purges that a crash interrupted.
    pub(crate) fn finish_deletes(&self) -> Result<()> {
        let ids: Vec<sled::IVec> = self
            .deleted
            .iter()
            .keys()
            .collect::<Result<_, _>>()
            .map_err(sled_err)?;
        for id in ids {
            let id: Id = id
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("deleted conversation key"))?;
            self.purge(id)?;
        }
        Ok(())
    }
}
