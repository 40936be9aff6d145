//! Choosing the store from a URL: `sled:PATH`, `sqlite:PATH`, `postgres://…`,
//! `postgresql://…` or `memory:`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use chat_core::{MemoryStore, Store};

/// The schemes [`StoreUrl`] knows, for error messages.
pub const KNOWN_SCHEMES: &str = "sled:, sqlite:, postgres://, postgresql://, memory:";

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// In this process only; gone when it exits.
    Memory,
    /// An embedded sled database in this directory.
    Sled(PathBuf),
    /// An SQLite database in this file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (the whole URL, credentials included).
    Postgres(String),
}

/// Why a store URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreUrlError {
    /// No `scheme:` prefix.
    #[error("a store URL starts with a scheme; known schemes: {KNOWN_SCHEMES}")]
    MissingScheme,
    /// A scheme this server does not know.
    #[error("unknown store scheme {scheme:?}; known schemes: {KNOWN_SCHEMES}")]
    UnknownScheme {
        /// The scheme given.
        scheme: String,
    },
    /// A file-backed scheme without a path.
    #[error("the {scheme}: store needs a path, e.g. {scheme}:./chat-data")]
    MissingPath {
        /// The scheme given.
        scheme: &'static str,
    },
}

impl FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s.split_once(':').ok_or(StoreUrlError::MissingScheme)?;
        let path = |scheme: &'static str| {
            // `sled://data` and `sled:data` mean the same; a third slash keeps a path absolute.
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            if rest.is_empty() {
                Err(StoreUrlError::MissingPath { scheme })
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        match scheme.to_ascii_lowercase().as_str() {
            "memory" => Ok(StoreUrl::Memory),
            "sled" => path("sled").map(StoreUrl::Sled),
            "sqlite" => path("sqlite").map(StoreUrl::Sqlite),
            "postgres" | "postgresql" => Ok(StoreUrl::Postgres(s.to_owned())),
            "" => Err(StoreUrlError::MissingScheme),
            other => Err(StoreUrlError::UnknownScheme {
                scheme: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for StoreUrl {
    /// The URL with any PostgreSQL password masked, fit for a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Memory => f.write_str("memory:"),
            StoreUrl::Sled(path) => write!(f, "sled:{}", path.display()),
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("***"));
                    }
                    write!(f, "{parsed}")
                }
                Err(_) => f.write_str("postgres://(unparsable URL)"),
            },
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// Settings that apply to some kinds of store; `None` keeps the store's own default.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StoreOptions {
    /// For the embedded stores: below this many free bytes on their disk, writes are
    /// refused (503) and resume by themselves when space returns.
    pub min_free_space: Option<u64>,
    /// For sled: the most memory its page cache may hold; sled's own default (1 GiB)
    /// without it.
    pub sled_cache: Option<u64>,
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("could not open the store {url}")]
pub struct OpenStoreError {
    url: String,
    #[source]
    source: chat_core::BoxError,
}

impl StoreUrl {
    /// Whether the data lives on this machine's disk beside where a key file can go.
    #[must_use]
    pub fn is_embedded(&self) -> bool {
        matches!(self, StoreUrl::Sled(_) | StoreUrl::Sqlite(_))
    }

    /// Where the master key file of an embedded store lives by default: `master.key` in a
    /// sled directory, `<file>.key` beside an SQLite file.
    #[must_use]
    pub fn default_key_file(&self) -> Option<PathBuf> {
        match self {
            StoreUrl::Sled(dir) => Some(dir.join("master.key")),
            StoreUrl::Sqlite(file) => {
                let mut name = file.file_name()?.to_os_string();
                name.push(".key");
                Some(file.with_file_name(name))
            }
            StoreUrl::Memory | StoreUrl::Postgres(_) => None,
        }
    }

    /// Opens the store with the default [`StoreOptions`], creating and migrating it as
    /// needed.
    ///
    /// # Errors
    ///
    /// [`OpenStoreError`] with the backend's own error as its source.
    pub async fn open(&self) -> Result<Arc<dyn Store>, OpenStoreError> {
        self.open_with(&StoreOptions::default()).await
    }

    /// Opens the store with `options`, creating and migrating it as needed.
    ///
    /// # Errors
    ///
    /// [`OpenStoreError`] with the backend's own error as its source.
    pub async fn open_with(
        &self,
        options: &StoreOptions,
    ) -> Result<Arc<dyn Store>, OpenStoreError> {
        let fail = |source: chat_core::BoxError| OpenStoreError {
            url: self.to_string(),
            source,
        };
        Ok(match self {
            StoreUrl::Memory => Arc::new(MemoryStore::new()),
            StoreUrl::Sled(dir) => {
                let mut config = chat_store_sled::SledConfig::new(dir);
                if let Some(bytes) = options.min_free_space {
                    config = config.min_free_space(bytes);
                }
                if let Some(bytes) = options.sled_cache {
                    config = config.cache_capacity(bytes);
                }
                let store = tokio::task::spawn_blocking(move || config.open())
                    .await
                    .map_err(|e| fail(Box::new(e)))?
                    .map_err(|e| fail(Box::new(e)))?;
                Arc::new(store)
            }
            StoreUrl::Sqlite(file) => {
                ensure_parent(file).map_err(|e| fail(Box::new(e)))?;
                let mut sqlite = chat_store_sql::SqliteOptions::default();
                if let Some(bytes) = options.min_free_space {
                    sqlite.min_free_space = bytes;
                }
                Arc::new(
                    chat_store_sql::SqliteStore::open_with(file, sqlite)
                        .await
                        .map_err(|e| fail(Box::new(e)))?,
                )
            }
            StoreUrl::Postgres(url) => Arc::new(
                chat_store_sql::PostgresStore::connect(url)
                    .await
                    .map_err(|e| fail(Box::new(e)))?,
            ),
        })
    }
}

/// A store's schema after [`StoreUrl::migrate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaVersion {
    /// The memory store has no schema.
    None,
    /// sled's key layout and record format version.
    SledFormat(u32),
    /// The newest migration applied to an SQL database.
    Migration(i64),
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaVersion::None => f.write_str("no schema (nothing is stored on disk)"),
            SchemaVersion::SledFormat(v) => write!(f, "schema version {v} (sled format)"),
            SchemaVersion::Migration(v) => write!(f, "schema version {v}"),
        }
    }
}

impl StoreUrl {
    /// Creates the store if it does not exist and brings its schema up to date; answers
    /// the version it is at. Refused through a pooler in transaction mode
    /// (`pgbouncer=true`): migrations hold a session-level lock.
    ///
    /// # Errors
    ///
    /// [`OpenStoreError`] with the backend's own error as its source: unreachable, a
    /// schema newer than this program's, a failed migration, or a pooler URL.
    pub async fn migrate(&self) -> Result<SchemaVersion, OpenStoreError> {
        let fail = |source: chat_core::BoxError| OpenStoreError {
            url: self.to_string(),
            source,
        };
        match self {
            StoreUrl::Memory => Ok(SchemaVersion::None),
            StoreUrl::Sled(_) => {
                // Opening creates a new database, and refuses another format version.
                self.open().await?;
                Ok(SchemaVersion::SledFormat(chat_store_sled::FORMAT_VERSION))
            }
            // Migrations run on open.
            StoreUrl::Sqlite(_) => {
                self.open().await?;
                Ok(SchemaVersion::Migration(
                    chat_store_sql::SqliteStore::schema_version(),
                ))
            }
            StoreUrl::Postgres(url) => {
                let store = chat_store_sql::PostgresStore::connect(url)
                    .await
                    .map_err(|e| fail(Box::new(e)))?;
                // Through a pooler, connecting did not migrate; this refuses, saying why.
                let migrated = store.migrate().await;
                store.close().await;
                migrated.map_err(|e| fail(Box::new(e)))?;
                Ok(SchemaVersion::Migration(
                    chat_store_sql::PostgresStore::schema_version(),
                ))
            }
        }
    }
}

fn ensure_parent(file: &Path) -> std::io::Result<()> {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!("memory:".parse(), Ok(StoreUrl::Memory));
        assert_eq!(
            "sled:./chat-data".parse(),
            Ok(StoreUrl::Sled("./chat-data".into()))
        );
        assert_eq!(
            "sqlite:data/chat.db".parse(),
            Ok(StoreUrl::Sqlite("data/chat.db".into()))
        );
        assert!(matches!(
            "postgresql://u:p@h/db".parse(),
            Ok(StoreUrl::Postgres(_))
        ));
        assert_eq!(
            "sled:".parse::<StoreUrl>(),
            Err(StoreUrlError::MissingPath { scheme: "sled" })
        );
    }

    #[test]
    fn unknown_scheme_lists_the_known_ones() {
        let e = "mysql://x".parse::<StoreUrl>().unwrap_err();
        assert!(e.to_string().contains("sqlite:"), "{e}");
        assert!(e.to_string().contains("\"mysql\""), "{e}");
        assert_eq!(
            "nothing".parse::<StoreUrl>(),
            Err(StoreUrlError::MissingScheme)
        );
    }

    #[test]
    fn display_hides_the_password() {
        let url: StoreUrl = "postgres://me:secret@db.example/chat".parse().unwrap();
        assert!(!url.to_string().contains("secret"));
    }

    #[test]
    fn key_files_sit_beside_the_data() {
        let sled: StoreUrl = "sled:data".parse().unwrap();
        assert_eq!(
            sled.default_key_file(),
            Some(PathBuf::from("data/master.key"))
        );
        let sqlite: StoreUrl = "sqlite:data/chat.db".parse().unwrap();
        assert_eq!(
            sqlite.default_key_file(),
            Some(PathBuf::from("data/chat.db.key"))
        );
    }
}
