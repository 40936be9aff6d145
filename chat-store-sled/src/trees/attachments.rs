//! Attachments: indexed by message, by id and by conversation, so that a message's
//! delete and a conversation's purge can each find them.

use chat_core::{Attachment, AttachmentId, Entity, Error, MessageId, Result};
use sled::Transactional;

use super::{Trees, conflict, fail, purge_first, read, settle, sled_err, tx_decode};
use crate::error::StoreError;
use crate::keys::{self, MAX_ID, MIN_ID};
use crate::records::{AttachmentRec, MessagePos, MessageRec, decode, encode};

impl Trees {
    pub(crate) fn create_attachment(&self, attachment: &Attachment) -> Result<()> {
        let id = attachment.id.to_bytes();
        let message = attachment.message_id.to_bytes();
        let conversation = attachment.conversation_id.to_bytes();
        let user = attachment.user_id.to_bytes();
        let value = encode(&AttachmentRec::new(attachment));
        let trees = (
            &self.conversations,
            &self.deleted,
            &self.messages,
            &self.message_ids,
            &self.attachments,
            &self.attachment_ids,
            &self.conversation_attachments,
        );
        self.retrying(|| {
            Ok(trees.transaction(
                |(
                    convs,
                    deleted,
                    messages,
                    message_ids,
                    attachments,
                    attachment_ids,
                    conv_attachments,
                )| {
                    if let Some(owner) = attachment_ids.get(id)? {
                        let Some(owner) = keys::second(&owner) else {
                            return fail(StoreError::Corrupt("attachment index"));
                        };
                        if convs.get(owner)?.is_none() && deleted.get(owner)?.is_some() {
                            return purge_first(owner);
                        }
                        return fail(conflict(Entity::Attachment, "id"));
                    }
                    let not_found = || fail(Error::NotFound(Entity::Message));
                    let Some(bytes) = message_ids.get(message)? else {
                        return not_found();
                    };
                    let mut pos: MessagePos = tx_decode(&bytes)?;
                    if pos.conversation != conversation || convs.get(conversation)?.is_none() {
                        return not_found();
                    }
                    let Some(bytes) = messages.get(keys::message(pos.conversation, pos.seq))?
                    else {
                        return not_found();
                    };
                    if tx_decode::<MessageRec>(&bytes)?.user_id != user {
                        return not_found();
                    }
                    // So that a racing delete of the message sees that its list of
                    // attachments is stale.
                    pos.revision += 1;
                    message_ids.insert(&message, encode(&pos))?;
                    attachments.insert(&keys::pair(message, id), value.as_slice())?;
                    attachment_ids.insert(&id, &keys::pair(message, conversation))?;
                    conv_attachments.insert(&keys::pair(conversation, id), &message)?;
                    Ok(())
                },
            ))
        })
    }

    pub(crate) fn get_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        let id = id.to_bytes();
        let Some(owner) = self.attachment_ids.get(id).map_err(sled_err)? else {
            return Ok(None);
        };
        let (Some(message), Some(conversation)) = (keys::first(&owner), keys::second(&owner))
        else {
            return Err(StoreError::Corrupt("attachment index").into());
        };
        let rec: Option<AttachmentRec> = read(
            self.attachments
                .get(keys::pair(message, id))
                .map_err(sled_err)?,
        )?;
        if rec.is_none() || !self.conversation_exists(conversation)? {
            return Ok(None);
        }
        Ok(rec.map(AttachmentRec::into_model).transpose()?)
    }

    pub(crate) fn list_attachments(
        &self,
        message: MessageId,
        after: Option<AttachmentId>,
        limit: usize,
    ) -> Result<Vec<Attachment>> {
        let m = message.to_bytes();
        let first = match after {
            Some(after) => match keys::next_id(after.to_bytes()) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
            None => MIN_ID,
        };
        let page: Vec<Attachment> = self
            .attachments
            .range(keys::pair(m, first)..=keys::pair(m, MAX_ID))
            .values()
            .take(limit)
            .map(|value| {
                let value = value.map_err(sled_err)?;
                Ok(decode::<AttachmentRec>(&value)?.into_model()?)
            })
            .collect::<Result<_>>()?;
        // A message's attachments share its conversation; if that is gone, so are they.
        if let Some(a) = page.first() {
            if !self.conversation_exists(a.conversation_id.to_bytes())? {
                return Ok(Vec::new());
            }
        }
        Ok(page)
    }

    pub(crate) fn delete_attachment(&self, id: AttachmentId) -> Result<bool> {
        let id = id.to_bytes();
        settle(
            (
                &self.conversations,
                &self.attachments,
                &self.attachment_ids,
                &self.conversation_attachments,
            )
                .transaction(
                    |(convs, attachments, attachment_ids, conv_attachments)| {
                        let Some(owner) = attachment_ids.get(id)? else {
                            return Ok(false);
                        };
                        let (Some(message), Some(conversation)) =
                            (keys::first(&owner), keys::second(&owner))
                        else {
                            return fail(StoreError::Corrupt("attachment index"));
                        };
                        // An attachment of a deleted conversation is already gone.
                        if convs.get(conversation)?.is_none() {
                            return Ok(false);
                        }
                        attachments.remove(&keys::pair(message, id))?;
                        attachment_ids.remove(&id)?;
                        conv_attachments.remove(&keys::pair(conversation, id))?;
                        Ok(true)
                    },
                ),
        )
    }
}
