//! The store's operations, synchronous, on sled's trees. [`crate::SledStore`] runs them on
//! blocking threads and adds the group flush.

use chat_core::{
    Attachment, AttachmentId, Conversation, ConversationId, Entity, Error, LlmProvider, Message,
    MessageDraft, MessageId, MessageOrder, ProviderId, Result, SealedKey, Session, TokenHash, User,
    UserId, UserLlmConfig, provider_name_key, username_key,
};
use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionResult, TransactionalTree,
};

use crate::error::StoreError;
use crate::keys::{self, Id, MAX_ID, MIN_ID, tree};
use crate::records::{
    AttachmentRec, ConfigRec, ConversationRec, MessagePos, MessageRec, ProviderRec, SessionRec,
    UserRec, decode, encode,
};

/// How many messages (and how many attachments) one transaction of a conversation's purge
/// removes.
const PURGE_BATCH: usize = 1_000;

/// How many expired sessions one transaction removes.
const EXPIRY_BATCH: usize = 1000;

/// Why a transaction closure gave up.
enum Abort {
    /// An answer for the caller: not found, a conflict, a decoding failure.
    Fail(Error),
    /// What was read before the transaction changed; read again and retry.
    Stale,
    /// An id is held by what is left of a deleted conversation: purge that, then retry.
    Purge(Id),
}

type Tx<T> = Result<T, ConflictableTransactionError<Abort>>;

fn fail<T>(e: impl Into<Error>) -> Tx<T> {
    Err(ConflictableTransactionError::Abort(Abort::Fail(e.into())))
}

fn stale<T>() -> Tx<T> {
    Err(ConflictableTransactionError::Abort(Abort::Stale))
}

fn purge_first<T>(conversation: Id) -> Tx<T> {
    Err(ConflictableTransactionError::Abort(Abort::Purge(
        conversation,
    )))
}

fn conflict(entity: Entity, field: &'static str) -> Error {
    Error::Conflict { entity, field }
}

/// Decodes inside a transaction, aborting it on failure.
fn tx_decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Tx<T> {
    decode(bytes).map_err(|e| ConflictableTransactionError::Abort(Abort::Fail(e.into())))
}

/// How a transaction ended, for the operations that may run one again.
enum Attempt<T> {
    Done(T),
    Stale,
    Purge(Id),
}

fn attempt<T>(result: TransactionResult<T, Abort>) -> Result<Attempt<T>> {
    match result {
        Ok(value) => Ok(Attempt::Done(value)),
        Err(TransactionError::Abort(Abort::Fail(e))) => Err(e),
        Err(TransactionError::Abort(Abort::Stale)) => Ok(Attempt::Stale),
        Err(TransactionError::Abort(Abort::Purge(id))) => Ok(Attempt::Purge(id)),
        Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e).into()),
    }
}

/// The answer of a transaction that neither goes stale nor needs a purge.
fn settle<T>(result: TransactionResult<T, Abort>) -> Result<T> {
    match attempt(result)? {
        Attempt::Done(value) => Ok(value),
        Attempt::Stale | Attempt::Purge(_) => {
            Err(StoreError::Corrupt("a transaction asked to be run again").into())
        }
    }
}

fn sled_err(e: sled::Error) -> Error {
    StoreError::Sled(e).into()
}

fn read<T: serde::de::DeserializeOwned>(value: Option<sled::IVec>) -> Result<Option<T>> {
    value
        .map(|bytes| decode(&bytes).map_err(Error::from))
        .transpose()
}

/// The sled trees of one database.
pub(crate) struct Trees {
    pub db: sled::Db,
    pub meta: sled::Tree,
    users: sled::Tree,
    usernames: sled::Tree,
    sessions: sled::Tree,
    session_ids: sled::Tree,
    session_expiry: sled::Tree,
    conversations: sled::Tree,
    user_conversations: sled::Tree,
    /// Conversations deleted but not yet purged of their messages and attachments.
    deleted: sled::Tree,
    messages: sled::Tree,
    message_ids: sled::Tree,
    attachments: sled::Tree,
    attachment_ids: sled::Tree,
    conversation_attachments: sled::Tree,
    providers: sled::Tree,
    provider_names: sled::Tree,
    provider_owners: sled::Tree,
    configs: sled::Tree,
    provider_configs: sled::Tree,
    config_ids: sled::Tree,
}

impl Trees {
    pub(crate) fn open(db: sled::Db) -> sled::Result<Self> {
        Ok(Self {
            meta: db.open_tree(tree::META)?,
            users: db.open_tree(tree::USERS)?,
            usernames: db.open_tree(tree::USERNAMES)?,
            sessions: db.open_tree(tree::SESSIONS)?,
            session_ids: db.open_tree(tree::SESSION_IDS)?,
            session_expiry: db.open_tree(tree::SESSION_EXPIRY)?,
            conversations: db.open_tree(tree::CONVERSATIONS)?,
            user_conversations: db.open_tree(tree::USER_CONVERSATIONS)?,
            deleted: db.open_tree(tree::DELETED)?,
            messages: db.open_tree(tree::MESSAGES)?,
            message_ids: db.open_tree(tree::MESSAGE_IDS)?,
            attachments: db.open_tree(tree::ATTACHMENTS)?,
            attachment_ids: db.open_tree(tree::ATTACHMENT_IDS)?,
            conversation_attachments: db.open_tree(tree::CONVERSATION_ATTACHMENTS)?,
            providers: db.open_tree(tree::PROVIDERS)?,
            provider_names: db.open_tree(tree::PROVIDER_NAMES)?,
            provider_owners: db.open_tree(tree::PROVIDER_OWNERS)?,
            configs: db.open_tree(tree::CONFIGS)?,
            provider_configs: db.open_tree(tree::PROVIDER_CONFIGS)?,
            config_ids: db.open_tree(tree::CONFIG_IDS)?,
            db,
        })
    }

    /// Runs `attempt_once` until its transaction neither finds what it read stale nor an id
    /// held by a deleted conversation, purging such a conversation before trying again.
    fn retrying<T>(
        &self,
        mut attempt_once: impl FnMut() -> Result<TransactionResult<T, Abort>>,
    ) -> Result<T> {
        loop {
            match attempt(attempt_once()?)? {
                Attempt::Done(value) => return Ok(value),
                Attempt::Stale => {}
                Attempt::Purge(conversation) => self.purge(conversation)?,
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn deleted_is_empty(&self) -> bool {
        self.deleted.is_empty()
    }

    pub(crate) fn messages_tree(&self) -> &sled::Tree {
        &self.messages
    }

    pub(crate) fn message_ids_tree(&self) -> &sled::Tree {
        &self.message_ids
    }

    pub(crate) fn conversations_tree(&self) -> &sled::Tree {
        &self.conversations
    }

    // ----- users and sessions -----

    pub(crate) fn create_user(&self, user: &User) -> Result<()> {
        let name = username_key(&user.username);
        let id = user.id.to_bytes();
        let value = encode(&UserRec::new(user));
        settle(
            (&self.usernames, &self.users).transaction(|(names, users)| {
                if names.get(name.as_bytes())?.is_some() {
                    return fail(conflict(Entity::User, "username"));
                }
                if users.get(id)?.is_some() {
                    return fail(conflict(Entity::User, "id"));
                }
                names.insert(name.as_bytes(), &id)?;
                users.insert(&id, value.as_slice())?;
                Ok(())
            }),
        )
    }

    pub(crate) fn get_user(&self, id: UserId) -> Result<Option<User>> {
        let rec: Option<UserRec> = read(self.users.get(id.to_bytes()).map_err(sled_err)?)?;
        Ok(rec.map(UserRec::into_model).transpose()?)
    }

    pub(crate) fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        let key = username_key(username);
        let Some(id) = self.usernames.get(key.as_bytes()).map_err(sled_err)? else {
            return Ok(None);
        };
        let rec: Option<UserRec> = read(self.users.get(id).map_err(sled_err)?)?;
        Ok(rec.map(UserRec::into_model).transpose()?)
    }

    pub(crate) fn create_session(&self, session: &Session) -> Result<()> {
        let token = session.token_hash.0;
        let id = session.id.to_bytes();
        let expiry = keys::expiry(session.expires_at, &token);
        let value = encode(&SessionRec::new(session));
        settle(
            (&self.sessions, &self.session_ids, &self.session_expiry).transaction(
                |(sessions, ids, expiries)| {
                    if sessions.get(token)?.is_some() {
                        return fail(conflict(Entity::Session, "token"));
                    }
                    if ids.get(id)?.is_some() {
                        return fail(conflict(Entity::Session, "id"));
                    }
                    sessions.insert(&token, value.as_slice())?;
                    ids.insert(&id, &token)?;
                    expiries.insert(&expiry[..], &[])?;
                    Ok(())
                },
            ),
        )
    }

    pub(crate) fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>> {
        let rec: Option<SessionRec> = read(self.sessions.get(token_hash.0).map_err(sled_err)?)?;
        Ok(rec.map(SessionRec::into_model).transpose()?)
    }

    /// Removes the session under `token` if `pred` holds for it; answers whether it did.
    fn remove_session_if(
        (sessions, ids, expiries): &(TransactionalTree, TransactionalTree, TransactionalTree),
        token: &[u8; 32],
        pred: impl Fn(&SessionRec) -> bool,
    ) -> Tx<bool> {
        let Some(bytes) = sessions.get(token)? else {
            return Ok(false);
        };
        let rec: SessionRec = tx_decode(&bytes)?;
        if !pred(&rec) {
            return Ok(false);
        }
        let at: DateTime<Utc> = match rec.expires_at.try_into() {
            Ok(at) => at,
            Err(e) => return fail(e),
        };
        sessions.remove(token)?;
        ids.remove(&rec.id)?;
        expiries.remove(&keys::expiry(at, token)[..])?;
        Ok(true)
    }

    fn session_trees(&self) -> (&sled::Tree, &sled::Tree, &sled::Tree) {
        (&self.sessions, &self.session_ids, &self.session_expiry)
    }

    pub(crate) fn delete_session(&self, token_hash: &TokenHash) -> Result<bool> {
        settle(
            self.session_trees()
                .transaction(|trees| Self::remove_session_if(trees, &token_hash.0, |_| true)),
        )
    }

    pub(crate) fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut upper = keys::time(now).to_vec();
        upper.extend_from_slice(&[0xff; 32]);
        let mut removed = 0;
        loop {
            // Batches keep each transaction small; each session goes with its index entry.
            let batch: Vec<(sled::IVec, [u8; 32])> = self
                .session_expiry
                .range(..=upper.as_slice())
                .keys()
                .take(EXPIRY_BATCH)
                .map(|key| {
                    let key = key.map_err(sled_err)?;
                    let token = key
                        .get(12..44)
                        .and_then(|t| <[u8; 32]>::try_from(t).ok())
                        .ok_or(StoreError::Corrupt("session expiry key"))?;
                    Ok((key, token))
                })
                .collect::<Result<_>>()?;
            if batch.is_empty() {
                return Ok(removed);
            }
            let done = batch.len() < EXPIRY_BATCH;
            removed += settle(self.session_trees().transaction(|trees| {
                let mut count = 0u64;
                for (key, token) in &batch {
                    let expired = |rec: &SessionRec| {
                        DateTime::<Utc>::try_from(rec.expires_at).is_ok_and(|at| at <= now)
                    };
                    if Self::remove_session_if(trees, token, expired)? {
                        count += 1;
                    }
                    // An entry left over from a session that is gone must not be found
                    // again by the next batch.
                    trees.2.remove(key)?;
                }
                Ok(count)
            }))?;
            if done {
                return Ok(removed);
            }
        }
    }

    // ----- conversations -----

    fn conversation_rec(&self, id: Id) -> Result<Option<ConversationRec>> {
        read(self.conversations.get(id).map_err(sled_err)?)
    }

    fn conversation_exists(&self, id: Id) -> Result<bool> {
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

    // ----- messages -----

    pub(crate) fn append_message(&self, draft: MessageDraft) -> Result<Message> {
        let conversation = draft.conversation_id.to_bytes();
        let user = draft.user_id.to_bytes();
        let message_id = draft.id.to_bytes();
        let created_at = draft.created_at;
        // The record is built once with seq 0; seq lives in the key.
        let message = draft.with_seq(0);
        let value = encode(&MessageRec::new(&message));
        let trees = (
            &self.conversations,
            &self.deleted,
            &self.messages,
            &self.message_ids,
        );
        let seq = self.retrying(|| {
            Ok(
                trees.transaction(|(convs, deleted, messages, message_ids)| {
                    if let Some(bytes) = message_ids.get(message_id)? {
                        let taken: MessagePos = tx_decode(&bytes)?;
                        // The id of a message whose conversation is being purged is free again,
                        // once the purge is done.
                        if convs.get(taken.conversation)?.is_none()
                            && deleted.get(taken.conversation)?.is_some()
                        {
                            return purge_first(taken.conversation);
                        }
                        return fail(conflict(Entity::Message, "id"));
                    }
                    let rec = match convs.get(conversation)? {
                        Some(bytes) => Some(tx_decode::<ConversationRec>(&bytes)?),
                        None => None,
                    };
                    let Some(mut rec) = rec.filter(|rec| rec.user_id == user) else {
                        return fail(Error::NotFound(Entity::Conversation));
                    };
                    rec.last_seq += 1;
                    rec.message_count += 1;
                    rec.updated_at = created_at.into();
                    let seq = rec.last_seq;
                    let pos = MessagePos {
                        conversation,
                        seq,
                        revision: 0,
                    };
                    convs.insert(&conversation, encode(&rec))?;
                    messages.insert(&keys::message(conversation, seq), value.as_slice())?;
                    message_ids.insert(&message_id, encode(&pos))?;
                    Ok(seq)
                }),
            )
        })?;
        Ok(Message { seq, ..message })
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

    // ----- attachments -----

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

    // ----- LLM providers -----

    pub(crate) fn create_provider(&self, provider: &LlmProvider) -> Result<()> {
        let id = provider.id.to_bytes();
        let owner = keys::owner(provider.owner_id.map(UserId::to_bytes));
        let name = keys::join(&owner, provider_name_key(&provider.name).as_bytes());
        let by_owner = keys::join(&owner, &id);
        let value = encode(&ProviderRec::new(provider));
        settle(
            (&self.provider_names, &self.providers, &self.provider_owners).transaction(
                |(names, providers, owners)| {
                    if names.get(name.as_slice())?.is_some() {
                        return fail(conflict(Entity::Provider, "name"));
                    }
                    if providers.get(id)?.is_some() {
                        return fail(conflict(Entity::Provider, "id"));
                    }
                    names.insert(name.as_slice(), &id)?;
                    providers.insert(&id, value.as_slice())?;
                    owners.insert(by_owner.as_slice(), &[])?;
                    Ok(())
                },
            ),
        )
    }

    fn provider_rec(&self, id: Id) -> Result<Option<ProviderRec>> {
        read(self.providers.get(id).map_err(sled_err)?)
    }

    pub(crate) fn get_provider(&self, id: ProviderId) -> Result<Option<LlmProvider>> {
        Ok(self
            .provider_rec(id.to_bytes())?
            .map(ProviderRec::into_model)
            .transpose()?)
    }

    /// Up to `limit` provider ids of one owner, ascending, above `after`.
    fn provider_ids(&self, owner: Option<Id>, after: Option<Id>, limit: usize) -> Result<Vec<Id>> {
        let prefix = keys::owner(owner);
        let first = match after {
            Some(after) => match keys::next_id(after) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
            None => MIN_ID,
        };
        self.provider_owners
            .range(keys::join(&prefix, &first)..=keys::join(&prefix, &MAX_ID))
            .keys()
            .take(limit)
            .map(|key| {
                let key = key.map_err(sled_err)?;
                key.get(prefix.len()..)
                    .and_then(|id| Id::try_from(id).ok())
                    .ok_or_else(|| StoreError::Corrupt("provider owner key").into())
            })
            .collect()
    }

    pub(crate) fn list_providers(
        &self,
        user: UserId,
        after: Option<ProviderId>,
        limit: usize,
    ) -> Result<Vec<LlmProvider>> {
        let after = after.map(ProviderId::to_bytes);
        // Shared providers and the user's own are two ranges of one index: take a page of
        // each and merge, so the cost is two pages whatever is stored.
        let mut ids = self.provider_ids(None, after, limit)?;
        ids.extend(self.provider_ids(Some(user.to_bytes()), after, limit)?);
        ids.sort_unstable();
        let mut page = Vec::with_capacity(ids.len().min(limit));
        for id in ids {
            if page.len() == limit {
                break;
            }
            if let Some(rec) = self.provider_rec(id)? {
                page.push(rec.into_model()?);
            }
        }
        Ok(page)
    }

    pub(crate) fn delete_provider(&self, id: ProviderId) -> Result<bool> {
        let id = id.to_bytes();
        let trees = (
            &self.providers,
            &self.provider_names,
            &self.provider_owners,
            &self.configs,
            &self.provider_configs,
            &self.config_ids,
        );
        self.retrying(|| {
            let Some(seen) = self.provider_rec(id)? else {
                return Ok(Ok(false));
            };
            let users: Vec<Id> = self
                .provider_configs
                .scan_prefix(id)
                .keys()
                .map(|key| {
                    let key = key.map_err(sled_err)?;
                    keys::second(&key).ok_or_else(|| StoreError::Corrupt("config index").into())
                })
                .collect::<Result<_>>()?;
            Ok(trees.transaction(
                |(providers, names, owners, configs, provider_configs, config_ids)| {
                    let Some(bytes) = providers.get(id)? else {
                        return Ok(false);
                    };
                    let rec: ProviderRec = tx_decode(&bytes)?;
                    // A new config moves the revision.
                    if rec.revision != seen.revision {
                        return stale();
                    }
                    let owner = keys::owner(rec.owner_id);
                    providers.remove(&id)?;
                    names.remove(keys::join(&owner, provider_name_key(&rec.name).as_bytes()))?;
                    owners.remove(keys::join(&owner, &id))?;
                    for user in &users {
                        let key = keys::pair(*user, id);
                        if let Some(bytes) = configs.remove(&key)? {
                            let config: ConfigRec = tx_decode(&bytes)?;
                            config_ids.remove(&config.id)?;
                        }
                        provider_configs.remove(&keys::pair(id, *user))?;
                    }
                    Ok(true)
                },
            ))
        })
    }

    // ----- user LLM configs -----

    pub(crate) fn create_config(&self, config: &UserLlmConfig) -> Result<()> {
        let id = config.id.to_bytes();
        let user = config.user_id.to_bytes();
        let provider = config.provider_id.to_bytes();
        let key = keys::pair(user, provider);
        let value = encode(&ConfigRec::new(config));
        let trees = (
            &self.providers,
            &self.configs,
            &self.config_ids,
            &self.provider_configs,
        );
        settle(
            trees.transaction(|(providers, configs, config_ids, provider_configs)| {
                let Some(bytes) = providers.get(provider)? else {
                    return fail(Error::NotFound(Entity::Provider));
                };
                if configs.get(key)?.is_some() {
                    return fail(conflict(Entity::Config, "provider_id"));
                }
                if config_ids.get(id)?.is_some() {
                    return fail(conflict(Entity::Config, "id"));
                }
                let mut rec: ProviderRec = tx_decode(&bytes)?;
                rec.revision += 1;
                providers.insert(&provider, encode(&rec))?;
                configs.insert(&key, value.as_slice())?;
                config_ids.insert(&id, &key)?;
                provider_configs.insert(&keys::pair(provider, user), &[])?;
                Ok(())
            }),
        )
    }

    pub(crate) fn get_config(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<UserLlmConfig>> {
        let key = keys::pair(user.to_bytes(), provider.to_bytes());
        let rec: Option<ConfigRec> = read(self.configs.get(key).map_err(sled_err)?)?;
        Ok(rec.map(ConfigRec::into_model).transpose()?)
    }

    pub(crate) fn update_config(
        &self,
        user: UserId,
        provider: ProviderId,
        sealed_key: &SealedKey,
        api_key_hint: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<UserLlmConfig>> {
        let key = keys::pair(user.to_bytes(), provider.to_bytes());
        settle(self.configs.transaction(|configs| {
            let Some(bytes) = configs.get(key)? else {
                return Ok(None);
            };
            let mut rec: ConfigRec = tx_decode(&bytes)?;
            rec.sealed_key = sealed_key.0.clone();
            rec.api_key_hint = api_key_hint.map(str::to_owned);
            rec.updated_at = at.into();
            configs.insert(&key, encode(&rec))?;
            match rec.into_model() {
                Ok(config) => Ok(Some(config)),
                Err(e) => fail(e),
            }
        }))
    }

    pub(crate) fn delete_config(&self, user: UserId, provider: ProviderId) -> Result<bool> {
        let user = user.to_bytes();
        let provider = provider.to_bytes();
        let key = keys::pair(user, provider);
        settle(
            (&self.configs, &self.config_ids, &self.provider_configs).transaction(
                |(configs, config_ids, provider_configs)| {
                    let Some(bytes) = configs.remove(&key)? else {
                        return Ok(false);
                    };
                    let rec: ConfigRec = tx_decode(&bytes)?;
                    config_ids.remove(&rec.id)?;
                    provider_configs.remove(&keys::pair(provider, user))?;
                    Ok(true)
                },
            ),
        )
    }
}
