//! Imports of the records whose `create_*` call cannot keep everything a copy must: a
//! user's disabled mark, a conversation's last `seq`, a message's `seq`. Each is one
//! transaction, and a record already there is kept and answered `false`.

use chat_core::{Conversation, Entity, Error, Message, Result, UserAccount, username_key};
use sled::Transactional;

use super::messages::message_id_taken;
use super::{Trees, conflict, fail, purge_first, settle, tx_decode};
use crate::keys;
use crate::records::{ConversationRec, MessagePos, MessageRec, UserRec, encode};

impl Trees {
    pub(crate) fn import_user(&self, account: &UserAccount) -> Result<bool> {
        let name = username_key(&account.user.username);
        let id = account.user.id.to_bytes();
        let value = encode(&UserRec::new(&account.user));
        settle(
            (&self.usernames, &self.users, &self.disabled_users).transaction(
                |(names, users, marks)| {
                    if users.get(id)?.is_some() {
                        return Ok(false);
                    }
                    if names.get(name.as_bytes())?.is_some() {
                        return fail(conflict(Entity::User, "username"));
                    }
                    names.insert(name.as_bytes(), &id)?;
                    users.insert(&id, value.as_slice())?;
                    if account.disabled {
                        marks.insert(&id, &[])?;
                    }
                    Ok(true)
                },
            ),
        )
    }

    pub(crate) fn import_conversation(
        &self,
        conversation: &Conversation,
        last_seq: u64,
    ) -> Result<bool> {
        let id = conversation.id.to_bytes();
        let index = keys::pair(conversation.user_id.to_bytes(), id);
        let mut rec = ConversationRec::new(conversation);
        rec.last_seq = last_seq;
        let value = encode(&rec);
        self.retrying(|| {
            Ok(
                (&self.conversations, &self.user_conversations, &self.deleted).transaction(
                    |(convs, by_user, deleted)| {
                        if convs.get(id)?.is_some() {
                            return Ok(false);
                        }
                        // As in create_conversation: a deleted one's leftovers go first.
                        if deleted.get(id)?.is_some() {
                            return purge_first(id);
                        }
                        convs.insert(&id, value.as_slice())?;
                        by_user.insert(&index, &[])?;
                        Ok(true)
                    },
                ),
            )
        })
    }

    pub(crate) fn import_message(&self, message: &Message) -> Result<bool> {
        let conversation = message.conversation_id.to_bytes();
        let user = message.user_id.to_bytes();
        let message_id = message.id.to_bytes();
        let seq = message.seq;
        let value = encode(&MessageRec::new(message));
        let trees = (
            &self.conversations,
            &self.deleted,
            &self.messages,
            &self.message_ids,
        );
        self.retrying(|| {
            Ok(
                trees.transaction(|(convs, deleted, messages, message_ids)| {
                    if message_id_taken((convs, deleted, message_ids), message_id)? {
                        return Ok(false);
                    }
                    let rec = match convs.get(conversation)? {
                        Some(bytes) => Some(tx_decode::<ConversationRec>(&bytes)?),
                        None => None,
                    };
                    let Some(mut rec) = rec.filter(|rec| rec.user_id == user) else {
                        return fail(Error::NotFound(Entity::Conversation));
                    };
                    let key = keys::message(conversation, seq);
                    if messages.get(key)?.is_some() {
                        return fail(conflict(Entity::Message, "seq"));
                    }
                    // The counters came with the conversation; only a seq beyond its last
                    // one moves it, so that seq is never given out again.
                    if rec.last_seq < seq {
                        rec.last_seq = seq;
                        convs.insert(&conversation, encode(&rec))?;
                    }
                    let pos = MessagePos {
                        conversation,
                        seq,
                        revision: 0,
                    };
                    messages.insert(&key, value.as_slice())?;
                    message_ids.insert(&message_id, encode(&pos))?;
                    Ok(true)
                }),
            )
        })
    }
}
