//! The one error type of chat-core, shared by stores and the service layer.

use std::fmt;

use crate::completion::UpstreamError;
use crate::validation::ValidationError;

/// The kinds of stored object, for errors that name what was missing or clashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// A [`User`](crate::User).
    User,
    /// A [`Session`](crate::Session).
    Session,
    /// A [`Conversation`](crate::Conversation).
    Conversation,
    /// A [`Message`](crate::Message).
    Message,
    /// An [`Attachment`](crate::Attachment).
    Attachment,
    /// An [`LlmProvider`](crate::LlmProvider).
    Provider,
    /// A [`UserLlmConfig`](crate::UserLlmConfig).
    Config,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::User => "user",
            Entity::Session => "session",
            Entity::Conversation => "conversation",
            Entity::Message => "message",
            Entity::Attachment => "attachment",
            Entity::Provider => "LLM provider",
            Entity::Config => "LLM config",
        })
    }
}

/// Why an operation refused to act on the caller's behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Forbidden {
    /// A body named a `user_id` other than the caller's.
    OtherUser,
    /// Shared providers belong to the operator and cannot be deleted through the API.
    SharedProvider,
    /// The operator has closed registration.
    RegistrationClosed,
    /// The operator has disabled this account.
    UserDisabled,
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forbidden::OtherUser => "user_id must be the caller's own id",
            Forbidden::SharedProvider => "shared LLM providers cannot be deleted through the API",
            Forbidden::RegistrationClosed => "registration is closed",
            Forbidden::UserDisabled => "this account is disabled",
        })
    }
}

/// Why a store cannot serve a request now. The request changed nothing and may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unavailable {
    /// The store's disk (or the database server's) is full: writes are refused until space
    /// returns; reads go on.
    OutOfSpace,
    /// The database cannot be reached, or gave no connection in time.
    Unreachable,
    /// The store met an I/O error it cannot recover from in this process (its engine wedges
    /// after one); it refuses every call rather than serve a state that may not be on disk,
    /// until the process is restarted.
    Failed,
}

impl Unavailable {
    /// How long a client should wait before retrying, in whole seconds.
    #[must_use]
    pub fn retry_after_secs(self) -> u32 {
        match self {
            // Space comes back when an operator acts: no point in hammering.
            Unavailable::OutOfSpace => 30,
            Unavailable::Unreachable => 5,
            Unavailable::Failed => 60,
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unavailable::OutOfSpace => "out of space",
            Unavailable::Unreachable => "unreachable",
            Unavailable::Failed => "broken until it is restarted",
        })
    }
}

/// A boxed error from a storage backend or another library, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in chat-core, a store or the service layer.
///
/// Each variant carries what a caller needs to act on it; a backend's own error is kept as
/// the [`source`](std::error::Error::source), never flattened into a string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input broke a rule; the error names the field and the rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),

    /// The object does not exist, or is not the caller's (the two are not told apart).
    #[error("{0} not found")]
    NotFound(Entity),

    /// An input field names an object that does not exist or is not the caller's; unlike
    /// [`NotFound`](Error::NotFound), which is the object the request is about.
    #[error("{entity} not found")]
    NotFoundField {
        /// What kind of object is missing.
        entity: Entity,
        /// The input field that names it.
        field: &'static str,
    },

    /// The LLM provider of a completion failed, or could not be used: nothing was stored.
    #[error(transparent)]
    Upstream(UpstreamError),

    /// The LLM provider of a completion gave no answer, or no progress, in time: nothing was
    /// stored.
    #[error(transparent)]
    UpstreamTimeout(UpstreamError),

    /// The object clashes with one that exists.
    #[error("{entity} already exists with this {field}")]
    Conflict {
        /// What kind of object clashed.
        entity: Entity,
        /// The input field whose value is taken.
        field: &'static str,
    },

    /// The credentials or the token are missing, wrong, expired or revoked.
    #[error("invalid or missing credentials")]
    Unauthorized,

    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(Forbidden),

    /// A sealed API key could not be opened: the master key is wrong, or the ciphertext was
    /// altered or moved to another row.
    #[error("a sealed secret could not be opened")]
    Unseal,

    /// The store cannot serve now, for a reason that passes without a code change: a full
    /// disk, a database that went away. Nothing was changed; the caller may retry.
    #[error("the {backend} store is {reason}")]
    Unavailable {
        /// Which store, for the log line.
        backend: &'static str,
        /// Why, in terms a client can act on.
        reason: Unavailable,
        /// The store's own error.
        #[source]
        source: BoxError,
    },

    /// The storage backend failed; the cause is the source.
    #[error("the {backend} store failed")]
    Backend {
        /// Which store, for the log line.
        backend: &'static str,
        /// The store's own error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// A backend failure of `backend`, keeping `source`.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            backend,
            source: source.into(),
        }
    }

    /// The store `backend` cannot serve now, for `reason`, keeping `source`.
    pub fn unavailable(
        backend: &'static str,
        reason: Unavailable,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Unavailable {
            backend,
            reason,
            source: source.into(),
        }
    }

    /// Whether this is a client's mistake rather than the system's.
    #[must_use]
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Error::Backend { .. }
                | Error::Unavailable { .. }
                | Error::Unseal
                | Error::Upstream(_)
                | Error::UpstreamTimeout(_)
        )
    }
}

impl From<UpstreamError> for Error {
    fn from(e: UpstreamError) -> Self {
        if e.is_timeout() {
            Error::UpstreamTimeout(e)
        } else {
            Error::Upstream(e)
        }
    }
}

/// `Result` with chat-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
