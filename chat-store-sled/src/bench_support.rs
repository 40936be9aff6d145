//! Helpers for this crate's benchmark. Not a stable API.

use chat_core::{ConversationId, Message};

use crate::SledStore;
use crate::keys;
use crate::records::{ConversationRec, MessagePos, MessageRec, decode, encode};

impl SledStore {
    /// Writes `messages` (whose `seq` must continue the conversation's) in sled batches
    /// through the store's own key layout, moving the conversation's counters once, and
    /// flushes once. For filling big conversations quickly; no checks, no atomicity.
    #[doc(hidden)]
    pub fn bench_bulk_append(
        &self,
        conversation: ConversationId,
        messages: &[Message],
    ) -> Result<(), sled::Error> {
        let t = &self.inner.trees;
        let c = conversation.to_bytes();
        let mut batch = sled::Batch::default();
        let mut ids = sled::Batch::default();
        for m in messages {
            batch.insert(&keys::message(c, m.seq), encode(&MessageRec::new(m)));
            let pos = MessagePos {
                conversation: c,
                seq: m.seq,
                revision: 0,
            };
            ids.insert(&m.id.to_bytes(), encode(&pos));
        }
        t.messages_tree().apply_batch(batch)?;
        t.message_ids_tree().apply_batch(ids)?;
        if let (Some(bytes), Some(last)) = (t.conversations_tree().get(c)?, messages.last()) {
            let mut rec: ConversationRec =
                decode(&bytes).map_err(|e| sled::Error::Unsupported(e.to_string()))?;
            rec.last_seq = last.seq;
            rec.message_count += messages.len() as u64;
            rec.updated_at = last.created_at.into();
            t.conversations_tree().insert(c, encode(&rec))?;
        }
        t.db.flush()?;
        Ok(())
    }

    /// The sled database under the store, for a baseline that writes the same keys raw.
    #[doc(hidden)]
    pub fn bench_db(&self) -> &sled::Db {
        &self.inner.trees.db
    }
}

/// The bytes the store keeps for `message`, for a baseline that writes the same.
#[doc(hidden)]
pub fn message_value(message: &Message) -> Vec<u8> {
    encode(&MessageRec::new(message))
}

/// The key the store keeps `message` under.
#[doc(hidden)]
pub fn message_key(message: &Message) -> [u8; 24] {
    keys::message(message.conversation_id.to_bytes(), message.seq)
}

/// The bytes the store keeps for a conversation, for a baseline of the same size.
#[doc(hidden)]
pub fn conversation_value(conversation: &chat_core::Conversation) -> Vec<u8> {
    encode(&ConversationRec::new(conversation))
}
