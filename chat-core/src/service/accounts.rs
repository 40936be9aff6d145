//! Registration, login, logout and token verification.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Caller, ChatService};
use crate::accounts::{self, BearerToken, HashMemory};
use crate::error::{Entity, Error, Forbidden, Result};
use crate::ids::{SessionId, UserId};
use crate::input::NewUser;
use crate::model::{Session, User};
use crate::time;
use crate::validation::Username;

/// What a successful login hands the client.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The bearer token; shown once, stored only as a hash.
    pub token: BearerToken,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Whose token it is.
    pub user_id: UserId,
}

impl ChatService {
    /// Registers a user. [`Error::Conflict`] if the name is taken ignoring case;
    /// [`Forbidden::RegistrationClosed`] if the operator closed registration.
    pub async fn register(&self, new: NewUser) -> Result<User> {
        if !self.inner.config.registration_open {
            return Err(Error::Forbidden(Forbidden::RegistrationClosed));
        }
        self.add_user(new).await
    }

    /// Adds a user on the operator's behalf, whether or not registration is open.
    /// [`Error::Conflict`] if the name is taken ignoring case.
    pub async fn add_user(&self, new: NewUser) -> Result<User> {
        let cost = self.inner.config.password_cost;
        let password = new.password.clone();
        let password_hash = self
            .hashing(move |memory| {
                accounts::hash_password_in(password.expose_secret(), cost, memory)
            })
            .await?;
        let user = User {
            id: UserId::new(),
            username: new.username.as_str().to_owned(),
            email: new.email.map(|email| email.into_string()),
            password_hash,
            created_at: time::now(),
        };
        self.inner.store.create_user(&user).await?;
        Ok(user)
    }

    /// Checks a user name (matched ignoring case) and password and opens a session.
    ///
    /// A disabled user with the right password is [`Forbidden::UserDisabled`] (403), so
    /// they learn why; with a wrong one it is [`Error::Unauthorized`] like anyone's, so the
    /// answer tells nothing to someone without the password.
    ///
    /// Every wrong credential is the same [`Error::Unauthorized`], and an unknown user costs
    /// the same hashing work as a wrong password, so neither the answer nor its timing tells
    /// whether a user exists. A name that could not have been registered (any that
    /// [`Username::parse`] refuses, U+0000 included) is an unknown user: the store is not
    /// asked, since no store holds such a name and some cannot even take it as a query.
    pub async fn login(&self, username: &str, password: &str) -> Result<IssuedToken> {
        let user = match Username::parse(username) {
            Ok(name) => self.inner.store.get_user_by_username(name.as_str()).await?,
            Err(_) => None,
        };
        let stored = user.as_ref().map(|user| user.password_hash.clone());
        let password = zeroize::Zeroizing::new(password.to_owned());
        let dummy = Arc::clone(&self.inner.dummy_hash);
        let cost = self.inner.config.password_cost;
        let matches = self
            .hashing(move |memory| match &stored {
                Some(hash) => accounts::verify_password_in(&password, hash, memory),
                None => {
                    let dummy = dummy
                        .get_or_init(|| accounts::hash_password_in("not a password", cost, memory));
                    let _ = accounts::verify_password_in(&password, dummy, memory);
                    false
                }
            })
            .await?;
        let user = user.filter(|_| matches).ok_or(Error::Unauthorized)?;

        let token = BearerToken::generate();
        let now = time::now();
        let session = Session {
            id: SessionId::new(),
            user_id: user.id,
            token_hash: token.hash(),
            created_at: now,
            expires_at: now + self.inner.config.token_ttl,
        };
        self.inner.store.create_session(&session).await?;
        Ok(IssuedToken {
            token,
            expires_at: session.expires_at,
            user_id: user.id,
        })
    }

    /// The caller a bearer token stands for. [`Error::Unauthorized`] for a token that is
    /// malformed, unknown, expired or revoked. One store read.
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        if !accounts::looks_like_token(token) {
            return Err(Error::Unauthorized);
        }
        let hash = accounts::token_hash(token);
        let session = self
            .inner
            .store
            .get_session(&hash)
            .await?
            .ok_or(Error::Unauthorized)?;
        if session.expires_at <= time::now() {
            // Tidy up on the way out; the answer is the same whether or not this succeeds.
            let _ = self.inner.store.delete_session(&hash).await;
            return Err(Error::Unauthorized);
        }
        Ok(Caller::trusted(session.user_id))
    }

    /// Revokes a token at once. [`Error::Unauthorized`] if it was not a live token.
    pub async fn logout(&self, token: &str) -> Result<()> {
        if !accounts::looks_like_token(token) {
            return Err(Error::Unauthorized);
        }
        if self
            .inner
            .store
            .delete_session(&accounts::token_hash(token))
            .await?
        {
            Ok(())
        } else {
            Err(Error::Unauthorized)
        }
    }

    /// The caller's own user record.
    pub async fn me(&self, caller: &Caller) -> Result<User> {
        self.inner
            .store
            .get_user(caller.user_id())
            .await?
            .ok_or(Error::NotFound(Entity::User))
    }

    /// Removes expired sessions from the store; answers how many. Run it now and then.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        self.inner.store.delete_expired_sessions(time::now()).await
    }

    /// Runs Argon2 work on the service's hashing threads, a bounded number at a time, so it
    /// neither stalls the async workers nor takes unbounded memory. A caller that gives up
    /// (a client that went away) leaves a started job to finish on its thread, still counted.
    async fn hashing<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T> {
        self.inner
            .hashing
            .run(work)
            .await
            .map_err(|e| Error::backend("hashing", e))
    }
}
