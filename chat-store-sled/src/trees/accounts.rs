//! Users and their sessions: the uniqueness of usernames and tokens, and the expiry index
//! that lets expired sessions be removed in batches.

use chat_core::{Entity, Error, Forbidden, Result, Session, TokenHash, User, UserId, username_key};
use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::TransactionalTree;

use super::{Trees, Tx, conflict, fail, read, settle, sled_err, tx_decode};
use crate::error::StoreError;
use crate::keys::{self, Id};
use crate::records::{SessionRec, UserRec, encode};

/// How many expired sessions one transaction removes.
const EXPIRY_BATCH: usize = 1000;

impl Trees {
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
        let user = session.user_id.to_bytes();
        let value = encode(&SessionRec::new(session));
        settle(
            (
                &self.sessions,
                &self.session_ids,
                &self.session_expiry,
                &self.disabled_users,
            )
                .transaction(|(sessions, ids, expiries, disabled)| {
                    // Read in the transaction: a disable that commits first is seen, and
                    // one that commits after finds this session in its sweep.
                    if disabled.get(user)?.is_some() {
                        return fail(Error::Forbidden(Forbidden::UserDisabled));
                    }
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
                }),
        )
    }

    pub(crate) fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>> {
        let rec: Option<SessionRec> = read(self.sessions.get(token_hash.0).map_err(sled_err)?)?;
        // A disabled user's sessions are swept after the disable commits; until the sweep
        // (or after a crash in the middle of it) they must already be dead.
        if let Some(rec) = &rec {
            if self.is_disabled(rec.user_id)? {
                return Ok(None);
            }
        }
        Ok(rec.map(SessionRec::into_model).transpose()?)
    }

    pub(crate) fn is_disabled(&self, user: Id) -> Result<bool> {
        self.disabled_users.contains_key(user).map_err(sled_err)
    }

    /// Marks the user disabled (or not) in one transaction, then removes their sessions.
    ///
    /// sled has no index of sessions by user, so the removal is a sweep of the sessions
    /// tree after the mark commits (cost: every session). It is still exact:
    /// `create_session` reads the mark in its transaction, so a login either committed
    /// before the mark (and the sweep finds its session) or is refused; and `get_session`
    /// hides a disabled user's sessions, so none works between the mark and the sweep.
    pub(crate) fn set_user_disabled(&self, user: UserId, disabled: bool) -> Result<bool> {
        let id = user.to_bytes();
        let found = settle(
            (&self.users, &self.disabled_users).transaction(|(users, marks)| {
                if users.get(id)?.is_none() {
                    return Ok(false);
                }
                if disabled {
                    marks.insert(&id, &[])?;
                } else {
                    marks.remove(&id)?;
                }
                Ok(true)
            }),
        )?;
        if found && disabled {
            let mut doomed = Vec::new();
            for item in self.sessions.iter() {
                let (token, value) = item.map_err(sled_err)?;
                let rec: SessionRec = crate::records::decode(&value)?;
                if rec.user_id == id {
                    doomed.push(token);
                }
            }
            for token in doomed {
                let token: [u8; 32] = token
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("session key"))?;
                settle(
                    self.session_trees()
                        .transaction(|trees| Self::remove_session_if(trees, &token, |_| true)),
                )?;
            }
        }
        Ok(found)
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
}
