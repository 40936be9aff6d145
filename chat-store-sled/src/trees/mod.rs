//! The store's operations, synchronous, on sled's trees. [`crate::SledStore`] runs them on
//! blocking threads and adds the group flush.
//!
//! This module holds the trees and what every transaction shares (how it aborts, how it is
//! retried); each entity's operations are an `impl Trees` block in a file of their own.

mod accounts;
mod attachments;
mod configs;
mod conversations;
mod import;
mod messages;

pub(crate) use messages::Append;
mod providers;
mod scan;

use chat_core::{Entity, Error, Result};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionResult};

use crate::error::StoreError;
use crate::keys::{Id, tree};
use crate::records::decode;

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
    disabled_users: sled::Tree,
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
            disabled_users: db.open_tree(tree::DISABLED_USERS)?,
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
}
