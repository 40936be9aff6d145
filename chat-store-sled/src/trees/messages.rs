//! Messages: appends, which give out `seq` and move the conversation's counters, reads
//! by id or by page, and deletes that take the message's attachments along.

use chat_core::{
    ConversationId, Entity, Error, Message, MessageDraft, MessageId, MessageOrder, Result,
};
use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::{Abort, Trees, Tx, conflict, fail, purge_first, read, sled_err, stale, tx_decode};
use crate::error::StoreError;
use crate::keys::{self, Id};
use crate::records::{ConversationRec, MessagePos, MessageRec, decode, encode};

/// Whether a message holds `id`. The id of a message whose conversation is being purged is
/// free again once the purge is done, so that case aborts the transaction to purge first.
pub(super) fn message_id_taken(
    (convs, deleted, message_ids): (&TransactionalTree, &TransactionalTree, &TransactionalTree),
    id: Id,
) -> Tx<bool> {
    let Some(bytes) = message_ids.get(id)? else {
        return Ok(false);
    };
    let taken: MessagePos = tx_decode(&bytes)?;
    if convs.get(taken.conversation)?.is_none() && deleted.get(taken.conversation)?.is_some() {
        return purge_first(taken.conversation);
    }
    Ok(true)
}

/// An append made ready before its transaction: its keys, and its record encoded once.
pub(crate) struct Append {
    conversation: Id,
    user: Id,
    message_id: Id,
    created_at: DateTime<Utc>,
    value: Vec<u8>,
    /// The message as it will be answered, but for its `seq`.
    message: Message,
}

impl Append {
    pub(crate) fn new(draft: MessageDraft) -> Self {
        // The record is built once with seq 0; seq lives in the key.
        let message = draft.with_seq(0);
        Self {
            conversation: message.conversation_id.to_bytes(),
            user: message.user_id.to_bytes(),
            message_id: message.id.to_bytes(),
            created_at: message.created_at,
            value: encode(&MessageRec::new(&message)),
            message,
        }
    }

    fn answer(&self, seq: u64) -> Message {
        Message {
            seq,
            ..self.message.clone()
        }
    }
}

/// The trees an append writes, as a transaction sees them.
type AppendTrees = (
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
);

/// One append inside a transaction, which may hold others: checks first, so an append that
/// fails has written nothing and the transaction can go on without it.
fn append_in((convs, deleted, messages, message_ids): &AppendTrees, append: &Append) -> Tx<u64> {
    if message_id_taken((convs, deleted, message_ids), append.message_id)? {
        return fail(conflict(Entity::Message, "id"));
    }
    let rec = match convs.get(append.conversation)? {
        Some(bytes) => Some(tx_decode::<ConversationRec>(&bytes)?),
        None => None,
    };
    let Some(mut rec) = rec.filter(|rec| rec.user_id == append.user) else {
        return fail(Error::NotFound(Entity::Conversation));
    };
    rec.last_seq += 1;
    rec.message_count += 1;
    rec.updated_at = append.created_at.into();
    let seq = rec.last_seq;
    let pos = MessagePos {
        conversation: append.conversation,
        seq,
        revision: 0,
    };
    convs.insert(&append.conversation, encode(&rec))?;
    messages.insert(
        &keys::message(append.conversation, seq),
        append.value.as_slice(),
    )?;
    message_ids.insert(&append.message_id, encode(&pos))?;
    Ok(seq)
}

impl Trees {
    fn append_trees(&self) -> (&sled::Tree, &sled::Tree, &sled::Tree, &sled::Tree) {
        (
            &self.conversations,
            &self.deleted,
            &self.messages,
            &self.message_ids,
        )
    }

    /// One append in a transaction of its own.
    pub(crate) fn append_one(&self, append: &Append) -> Result<Message> {
        let trees = self.append_trees();
        let seq = self.retrying(|| Ok(trees.transaction(|t| append_in(t, append))))?;
        Ok(append.answer(seq))
    }

    /// Appends in one transaction, answering each on its own: one that fails (its
    /// conversation missing or not its user's, its id taken, its conversation's record
    /// unreadable) fails alone and writes nothing, and the others commit. An `Err` is a
    /// failure of the whole transaction, which then wrote nothing.
    pub(crate) fn append_batch(&self, batch: &[&Append]) -> Result<Vec<Result<Message>>> {
        let trees = self.append_trees();
        let seqs = self.retrying(|| {
            Ok(trees.transaction(|t| {
                let mut seqs = Vec::with_capacity(batch.len());
                for append in batch {
                    match append_in(t, append) {
                        Err(ConflictableTransactionError::Abort(Abort::Fail(e))) => {
                            seqs.push(Err(e));
                        }
                        // A purge to run first, or sled failing: the whole batch waits.
                        Err(other) => return Err(other),
                        Ok(seq) => seqs.push(Ok(seq)),
                    }
                }
                Ok(seqs)
            }))
        })?;
        Ok(batch
            .iter()
            .zip(seqs)
            .map(|(append, seq)| seq.map(|seq| append.answer(seq)))
            .collect())
    }

    fn message_pos(&self, id: Id) -> Result<Option<MessagePos>> {
        read(self.message_ids.get(id).map_err(sled_err)?)
    }

    pub(crate) fn get_message(&self, id: MessageId) -> Result<Option<Message>> {
        let Some(pos) = self.message_pos(id.to_bytes())? else {
            return Ok(None);
        };
        let key = keys::message(pos.conversation, pos.seq);
        let rec: Option<MessageRec> = read(self.messages.get(key).map_err(sled_err)?)?;
        // Read after the message: if the conversation is there now, it was there when the
        // message was read, so no leftover of a deleted conversation is ever answered.
        if rec.is_none() || !self.conversation_exists(pos.conversation)? {
            return Ok(None);
        }
        Ok(rec
            .map(|rec| rec.into_model(pos.conversation, pos.seq))
            .transpose()?)
    }

    pub(crate) fn list_messages(
        &self,
        conversation: ConversationId,
        order: MessageOrder,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let c = conversation.to_bytes();
        let to_message = |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<Message> {
            let (key, value) = item.map_err(sled_err)?;
            let seq = keys::message_seq(&key).ok_or(StoreError::Corrupt("message key"))?;
            Ok(decode::<MessageRec>(&value)?.into_model(c, seq)?)
        };
        let page: Vec<Message> = match order {
            MessageOrder::Ascending { after } => {
                let first = match after {
                    Some(u64::MAX) => return Ok(Vec::new()),
                    Some(seq) => seq + 1,
                    None => 0,
                };
                self.messages
                    .range(keys::message(c, first)..=keys::message(c, u64::MAX))
                    .take(limit)
                    .map(to_message)
                    .collect::<Result<_>>()?
            }
            MessageOrder::Descending { before } => {
                if before == Some(0) {
                    return Ok(Vec::new());
                }
                let lower = keys::message(c, 0);
                match before {
                    Some(seq) => self
                        .messages
                        .range(lower..keys::message(c, seq))
                        .rev()
                        .take(limit)
                        .map(to_message)
                        .collect::<Result<_>>()?,
                    None => self
                        .messages
                        .range(lower..=keys::message(c, u64::MAX))
                        .rev()
                        .take(limit)
                        .map(to_message)
                        .collect::<Result<_>>()?,
                }
            }
        };
        // Checked after the scan, as in get_message.
        if !page.is_empty() && !self.conversation_exists(c)? {
            return Ok(Vec::new());
        }
        Ok(page)
    }

    pub(crate) fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> Result<bool> {
        let id = id.to_bytes();
        let trees = (
            &self.conversations,
            &self.messages,
            &self.message_ids,
            &self.attachments,
            &self.attachment_ids,
            &self.conversation_attachments,
        );
        self.retrying(|| {
            let Some(seen) = self.message_pos(id)? else {
                return Ok(Ok(false));
            };
            let attachments: Vec<Id> = self
                .attachments
                .scan_prefix(id)
                .keys()
                .map(|key| {
                    let key = key.map_err(sled_err)?;
                    keys::second(&key).ok_or_else(|| StoreError::Corrupt("attachment key").into())
                })
                .collect::<Result<_>>()?;
            Ok(trees.transaction(
                |(
                    convs,
                    messages,
                    message_ids,
                    attachments_tree,
                    attachment_ids,
                    conv_attachments,
                )| {
                    let Some(bytes) = message_ids.get(id)? else {
                        return Ok(false);
                    };
                    // A new attachment moves the position's revision.
                    if tx_decode::<MessagePos>(&bytes)? != seen {
                        return stale();
                    }
                    // A message of a deleted conversation is already gone; the purge
                    // removes what is left of it.
                    let Some(bytes) = convs.get(seen.conversation)? else {
                        return Ok(false);
                    };
                    let mut rec: ConversationRec = tx_decode(&bytes)?;
                    rec.message_count = rec.message_count.saturating_sub(1);
                    rec.updated_at = at.into();
                    convs.insert(&seen.conversation, encode(&rec))?;
                    messages.remove(&keys::message(seen.conversation, seen.seq))?;
                    message_ids.remove(&id)?;
                    for attachment in &attachments {
                        attachments_tree.remove(&keys::pair(id, *attachment))?;
                        attachment_ids.remove(attachment)?;
                        conv_attachments.remove(&keys::pair(seen.conversation, *attachment))?;
                    }
                    Ok(true)
                },
            ))
        })
    }
}
