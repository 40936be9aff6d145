//! This crate's errors: [`OpenError`] for opening, and a private [`StoreError`] that reaches
//! callers as the source of [`chat_core::Error::Backend`].

use std::path::PathBuf;

/// Why [`SledStore::open`](crate::SledStore::open) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The path could not be read or created, or the database files could not be opened:
    /// missing permissions, a file where a directory should be, a full disk.
    #[error("cannot open the sled store at {path}")]
    Io {
        /// The database directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// Another process (or another handle in this one) has the database open.
    #[error("the sled store at {path} is in use by another process")]
    Locked {
        /// The database directory.
        path: PathBuf,
    },

    /// The path holds something other than a chat-store sled database: a non-empty
    /// directory without sled's files, a regular file, or files sled cannot read.
    #[error("{path} is not a chat-store sled database")]
    NotADatabase {
        /// The path given.
        path: PathBuf,
        /// What gave it away, when a library reported it.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The database was written by a newer (or unknown) version of this crate.
    #[error(
        "the sled store at {path} has format version {found}; this build reads only version {supported}"
    )]
    UnsupportedVersion {
        /// The database directory.
        path: PathBuf,
        /// The version the database names.
        found: u32,
        /// The version this build writes and reads.
        supported: u32,
    },

    /// sled failed while opening or checking the database.
    #[error("the sled store at {path} failed to open")]
    Sled {
        /// The database directory.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
}

impl From<OpenError> for chat_core::Error {
    fn from(e: OpenError) -> Self {
        chat_core::Error::backend("sled", e)
    }
}

/// A failure inside the store, kept as the source of [`chat_core::Error::Backend`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error(transparent)]
    Sled(#[from] sled::Error),
    #[error("a stored record could not be decoded")]
    Decode(#[source] postcard::Error),
    #[error("stored message metadata is not a JSON object")]
    Json(#[source] serde_json::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(&'static str),
    #[error("a blocking task of the sled store failed")]
    Task(#[source] tokio::task::JoinError),
    #[error("the sled store's committer stopped before answering an append")]
    Unanswered,
    #[error("flushing the sled store to disk failed")]
    Flush(#[source] std::sync::Arc<FlushError>),
}

/// Why a group flush failed; shared by every writer that waited on it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlushError {
    #[error(transparent)]
    Sled(#[from] sled::Error),
    #[error("fdatasync of the database file failed")]
    Sync(#[from] std::io::Error),
    #[error("the flusher stopped")]
    Stopped,
}

impl From<StoreError> for chat_core::Error {
    fn from(e: StoreError) -> Self {
        chat_core::Error::backend("sled", e)
    }
}
