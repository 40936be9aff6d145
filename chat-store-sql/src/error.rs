//! Errors of opening a store and of running its migrations.

use chat_core::BoxError;

/// Why a store could not be opened or migrated.
///
/// Operations on an open store answer [`chat_core::Error`]; this type is only for
/// [`SqliteStore::open`](crate::SqliteStore::open),
/// [`PostgresStore::connect`](crate::PostgresStore::connect) and `migrate`. It converts into
/// [`chat_core::Error::Backend`] for callers that want one error type.
///
/// Nothing here carries a password: a location is a file name or `host:port/database`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The connection settings could not be understood (a malformed URL, say).
    #[error("invalid {backend} connection settings: {reason}")]
    Config {
        /// `"sqlite"` or `"postgres"`.
        backend: &'static str,
        /// What is wrong, without the settings themselves.
        reason: String,
    },

    /// The database could not be reached, or refused the connection.
    #[error("could not connect to the {backend} database at {location}")]
    Connect {
        /// `"sqlite"` or `"postgres"`.
        backend: &'static str,
        /// The file, or `host:port/database`.
        location: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },

    /// The database has migrations applied that this program does not know: it was
    /// upgraded by a newer version. Running an older program on it could corrupt it.
    #[error(
        "the {backend} database at {location} has schema version {found}, newer than the \
         newest this program knows ({known}); run a newer version of the program"
    )]
    SchemaTooNew {
        /// `"sqlite"` or `"postgres"`.
        backend: &'static str,
        /// The file, or `host:port/database`.
        location: String,
        /// The newest migration version applied to the database.
        found: i64,
        /// The newest migration version this program carries.
        known: i64,
    },

    /// The schema is older than this program and migrations were not run on open.
    #[error(
        "the {backend} database at {location} has schema version {found} but this program \
         needs {known}; run the migrations"
    )]
    SchemaTooOld {
        /// `"sqlite"` or `"postgres"`.
        backend: &'static str,
        /// The file, or `host:port/database`.
        location: String,
        /// The newest migration version applied to the database (0 for none).
        found: i64,
        /// The newest migration version this program carries.
        known: i64,
    },

    /// The schema is older than this program, and the store reaches the database through a
    /// pooler in transaction mode, through which migrations cannot run (they hold a
    /// session-level lock).
    #[error(
        "the {backend} database at {location} has schema version {found} but this program \
         needs {known}, and migrations do not run through a pooler: run them on the direct \
         URL first (`chat-server migrate --store` with the URL without pgbouncer=true)"
    )]
    SchemaBehindPooler {
        /// `"postgres"`.
        backend: &'static str,
        /// `host:port/database` of the pooler.
        location: String,
        /// The newest migration version applied to the database (0 for none).
        found: i64,
        /// The newest migration version this program carries.
        known: i64,
    },

    /// Applying or checking the migrations failed.
    #[error("migrating the {backend} database at {location} failed")]
    Migrate {
        /// `"sqlite"` or `"postgres"`.
        backend: &'static str,
        /// The file, or `host:port/database`.
        location: String,
        /// The migrator's error.
        #[source]
        source: BoxError,
    },
}

impl OpenError {
    /// `"sqlite"` or `"postgres"`.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        match self {
            OpenError::Config { backend, .. }
            | OpenError::Connect { backend, .. }
            | OpenError::SchemaTooNew { backend, .. }
            | OpenError::SchemaTooOld { backend, .. }
            | OpenError::SchemaBehindPooler { backend, .. }
            | OpenError::Migrate { backend, .. } => backend,
        }
    }
}

impl From<OpenError> for chat_core::Error {
    fn from(error: OpenError) -> Self {
        chat_core::Error::backend(error.backend(), error)
    }
}
