//! The service layer: the one API that applications and the server call.
//!
//! [`ChatService`] takes an authenticated [`Caller`] on every call, validates what it is
//! given, enforces the rules of access, and only then asks the [`Store`]:
//!
//! - a user sees and changes only what is theirs; another user's conversation, message,
//!   attachment, private provider or config is reported as [`Error::NotFound`], exactly as if
//!   it did not exist, so ids cannot be probed;
//! - a `user_id` in an input that is not the caller's is [`Forbidden::OtherUser`];
//! - shared providers are visible to everyone and changed by no one through this API;
//!   private ones are visible to their owner only.

mod accounts;
mod admin;
mod chat;
mod completions;
mod providers;

use std::sync::{Arc, OnceLock};

use chrono::Duration;

use crate::accounts::{HashingPool, PasswordCost};
use crate::error::{Entity, Error, Forbidden, Result};
use crate::ids::UserId;
use crate::secrets::Sealer;
use crate::store::Store;
use crate::validation::{Content, Limit};

pub use accounts::IssuedToken;
pub use admin::Pruned;

/// An authenticated user on whose behalf the service acts.
///
/// The server gets one from [`ChatService::authenticate`]. An application that
/// authenticates its users by other means builds one with [`Caller::trusted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caller {
    user_id: UserId,
}

impl Caller {
    /// A caller whose identity the application has already established.
    #[must_use]
    pub const fn trusted(user_id: UserId) -> Self {
        Self { user_id }
    }

    /// Who is calling.
    #[must_use]
    pub const fn user_id(&self) -> UserId {
        self.user_id
    }

    /// `Ok` for `None` or the caller's own id; [`Forbidden::OtherUser`] for anyone else.
    fn check_user_id(&self, user_id: Option<UserId>) -> Result<UserId> {
        match user_id {
            None => Ok(self.user_id),
            Some(id) if id == self.user_id => Ok(id),
            Some(_) => Err(Error::Forbidden(Forbidden::OtherUser)),
        }
    }

    /// `item` if it exists and `owner(item)` is the caller; [`Error::NotFound`] otherwise.
    fn own<T>(&self, item: Option<T>, entity: Entity, owner: impl Fn(&T) -> UserId) -> Result<T> {
        item.filter(|item| owner(item) == self.user_id)
            .ok_or(Error::NotFound(entity))
    }
}

/// Settings an operator may change.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How long a login token lives. Default: 7 days.
    pub token_ttl: Duration,
    /// The largest message content, in bytes. Default: 256 KiB. The one place the limit
    /// lives: [`ChatService::append_message`] holds every message to it.
    pub max_content_bytes: usize,
    /// Whether anyone may register. Default: open.
    pub registration_open: bool,
    /// The cost of password hashing. Default: Argon2id at OWASP's parameters.
    pub password_cost: PasswordCost,
    /// How many password hashes may run or wait in memory at once, each on a thread of its
    /// own holding `password_cost.memory_kib` of memory, reused. Default: the number of CPUs
    /// (hashing is CPU-bound, so more threads would add memory, not speed).
    pub max_concurrent_hashes: usize,
    /// How many of a conversation's newest messages a completion sends to the provider,
    /// oldest first. Default: 200.
    pub completion_history: Limit,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            token_ttl: Duration::days(7),
            max_content_bytes: Content::DEFAULT_MAX_BYTES,
            registration_open: true,
            password_cost: PasswordCost::default(),
            max_concurrent_hashes: std::thread::available_parallelism().map_or(2, |n| n.get()),
            completion_history: Limit::new(200).expect("200 is a valid page size"),
        }
    }
}

/// The chat-store API for applications: accounts, conversations, messages, attachments,
/// LLM providers and users' API keys, with validation and access rules applied.
///
/// Cheap to clone: clones share the store and the key.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use chat_core::{ChatService, MasterKey, MemoryStore, NewConversation, NewUser, Sealer, ServiceConfig};
///
/// let service = ChatService::new(Arc::new(MemoryStore::new()), Sealer::new(1, MasterKey::generate()), ServiceConfig::default());
/// let user = service.register(NewUser::parse("ada", "correct horse", None)?).await?;
/// let login = service.login("ADA", "correct horse").await?;
/// let caller = service.authenticate(login.token.expose_secret()).await?;
/// assert_eq!(caller.user_id(), user.id);
///
/// let chat = service.create_conversation(&caller, NewConversation::parse(None, "Lisbon")?).await?;
/// assert_eq!(chat.message_count, 0);
/// # Ok::<(), chat_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct ChatService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    sealer: Sealer,
    config: ServiceConfig,
    /// A hash to verify against when the user does not exist, so that answer costs as much
    /// as a wrong password. Made on first use.
    dummy_hash: Arc<OnceLock<crate::model::PasswordHash>>,
    /// Does the Argon2 work on a fixed set of threads: each hash holds `memory_kib` of memory,
    /// and a flood of logins, abandoned or not, must not take the machine's memory with it.
    hashing: HashingPool,
}

impl std::fmt::Debug for ChatService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatService")
            .field("store", &self.inner.store.backend())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ChatService {
    /// A service over `store`, sealing API keys with `sealer`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, sealer: Sealer, config: ServiceConfig) -> Self {
        let hashing = HashingPool::new(config.max_concurrent_hashes, config.password_cost);
        Self {
            inner: Arc::new(Inner {
                store,
                sealer,
                config,
                dummy_hash: Arc::new(OnceLock::new()),
                hashing,
            }),
        }
    }

    /// The store underneath.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// `Ok` when the store answers; for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        self.inner.store.ping().await
    }
}
