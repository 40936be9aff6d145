//! Opening a [`SqliteStore`]: its options, its two pools and its migrations. The SQL of
//! each `Store` operation is in `store.rs`.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chat_core::Result;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};

use crate::OpenError;
use crate::faults::{self, SQLITE as BACKEND};
use crate::schema::{check_versions, migrate_error};

mod appends;
mod readers;
mod space;
mod store;

use appends::Appender;
use readers::Readers;

use space::{DEFAULT_MIN_FREE_SPACE, Space};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// What an acknowledged write survives; SQLite's `synchronous` setting in WAL mode.
///
/// *Requires the `sqlite` feature.*
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SqliteSynchronous {
    /// `synchronous = NORMAL`: a commit is written to the WAL file before it is
    /// acknowledged, and the WAL is synced at checkpoints. The change survives the process
    /// being killed; a power cut or OS crash may lose the last commits (never corrupting
    /// the file). What the `Store` contract asks for, at a fraction of FULL's cost.
    #[default]
    Normal,
    /// `synchronous = FULL`: the WAL is synced on every commit, so an acknowledged change
    /// also survives a power cut or OS crash. Each commit waits for the disk.
    Full,
}

/// How [`SqliteStore::open_with`] sets up the database.
///
/// *Requires the `sqlite` feature.*
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// How many connections serve reads at once (writes have one connection of their own).
    pub max_readers: u32,
    /// How long a write waits for another process's write lock before failing.
    pub busy_timeout: Duration,
    /// How long an operation waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// What an acknowledged write survives.
    pub synchronous: SqliteSynchronous,
    /// Create the file if it does not exist.
    pub create_if_missing: bool,
    /// Apply pending migrations when opening. When `false`, opening a database whose
    /// schema is behind fails with [`OpenError::SchemaTooOld`] until an operator runs
    /// [`SqliteStore::migrate`].
    pub migrate_on_open: bool,
    /// Below this many free bytes on the database's file system, writes are refused with
    /// [`Unavailable::OutOfSpace`](chat_core::Unavailable::OutOfSpace) before they start,
    /// changing nothing, and `ping` says so; reads go on, and writes resume by themselves
    /// once space is freed. 0 turns the check off (SQLite still refuses, with the same
    /// error, a commit it cannot write). Default 64 MiB.
    pub min_free_space: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            max_readers: 4,
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(30),
            synchronous: SqliteSynchronous::Normal,
            create_if_missing: true,
            migrate_on_open: true,
            min_free_space: DEFAULT_MIN_FREE_SPACE,
        }
    }
}

/// A [`Store`](chat_core::Store) over one SQLite database file.
///
/// The database runs in WAL mode with foreign keys on. Writes go through one connection and
/// take SQLite's write lock when they begin (`BEGIN IMMEDIATE`), so writers in this process
/// queue without spinning and writers in other processes wait up to
/// [`busy_timeout`](SqliteOptions::busy_timeout) rather than fail part-way through. Reads use
/// connections of their own, through SQLite's own API rather than sqlx, and run beside
/// writes.
///
/// A write answers `Ok` only after its commit succeeded. A full disk answers
/// [`Unavailable::OutOfSpace`](chat_core::Unavailable::OutOfSpace), before the write starts
/// when less than [`min_free_space`](SqliteOptions::min_free_space) is free, or when SQLite
/// cannot write the commit; either way nothing of the write is kept, and writes work again
/// once there is room, without reopening.
///
/// *Requires the `sqlite` feature.*
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: Readers,
    appends: Appender,
    location: String,
    space: Arc<Space>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `path` with default options and
    /// applies pending migrations.
    ///
    /// # Errors
    ///
    /// [`OpenError`] if the file cannot be opened, its schema is newer than this program's,
    /// or a migration fails.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the database at `path` with `options`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); with `migrate_on_open` off, also
    /// [`OpenError::SchemaTooOld`] for a database that needs migrating.
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let location = path.display().to_string();
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(options.create_if_missing)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.synchronous {
                SqliteSynchronous::Normal => sqlx::sqlite::SqliteSynchronous::Normal,
                SqliteSynchronous::Full => sqlx::sqlite::SqliteSynchronous::Full,
            })
            // sqlx sets these on every new connection; SQLite forgets them per connection.
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let connect_error = |error: sqlx::Error| OpenError::Connect {
            backend: BACKEND,
            location: location.clone(),
            source: Box::new(error),
        };
        // One writer connection: SQLite allows one writer at a time anyway, and queueing
        // in the pool is cheaper than SQLite's sleep-and-retry busy handler.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            // A connection to a local file cannot be dropped by a peer, so pinging it
            // before every use would only add a round trip to its thread.
            .test_before_acquire(false)
            .after_release(still_usable)
            .connect_with(connect)
            .await
            .map_err(connect_error)?;
        let store = Self {
            // Opened once the writer has created the file and put it in WAL mode.
            readers: Readers::new(
                path.to_path_buf(),
                options.max_readers,
                options.busy_timeout,
                options.acquire_timeout,
            ),
            appends: Appender::start(
                writer.clone(),
                path,
                options.synchronous,
                options.busy_timeout,
            ),
            writer,
            space: Arc::new(Space::new(path.to_path_buf(), options.min_free_space)),
            location,
        };
        store.check_and_migrate(options.migrate_on_open).await?;
        Ok(store)
    }

    /// Applies the migrations this program carries that the database lacks.
    ///
    /// # Errors
    ///
    /// [`OpenError::SchemaTooNew`] if the database was migrated by a newer program;
    /// [`OpenError::Migrate`] if a migration fails.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        self.check_and_migrate(true).await
    }

    /// The schema version this program brings a database to: what
    /// [`migrate`](Self::migrate) leaves behind, and what it refuses to go past.
    #[must_use]
    pub fn schema_version() -> i64 {
        crate::schema::known_version(&MIGRATOR)
    }

    /// Changes the free-space reserve of [`SqliteOptions::min_free_space`] while the store is
    /// open.
    pub fn set_min_free_space(&self, bytes: u64) {
        self.space.set_reserve(bytes);
    }

    /// Sets SQLite's `max_page_count` on the writer connections and answers the limit SQLite
    /// settled on (never below the database's size), so that tests can fill a database
    /// without filling a disk. The limit lasts as long as those connections.
    #[doc(hidden)]
    pub async fn set_max_page_count(&self, pages: u64) -> Result<u64> {
        let pages = i64::try_from(pages).unwrap_or(i64::MAX);
        let pragma = format!("PRAGMA max_page_count = {pages}");
        let limit: i64 = sqlx::query_scalar(&pragma)
            .fetch_one(&self.writer)
            .await
            .map_err(faults::sqlite)?;
        // Appends commit on a connection of their own (`appends.rs`).
        self.appends
            .with_connection(move |c| c.query_row(&pragma, [], |_| Ok(())))
            .await?;
        Ok(u64::try_from(limit).unwrap_or(0))
    }

    /// Closes every connection, waiting for operations in flight.
    pub async fn close(&self) {
        self.readers.close();
        self.writer.close().await;
    }

    async fn check_and_migrate(&self, migrate: bool) -> Result<(), OpenError> {
        let error = |e| migrate_error(BACKEND, &self.location, &MIGRATOR, e);
        let applied = self.applied_versions().await.map_err(|e| error(e.into()))?;
        check_versions(BACKEND, &self.location, &MIGRATOR, &applied, migrate)?;
        if migrate {
            MIGRATOR.run(&self.writer).await.map_err(error)?;
        }
        Ok(())
    }

    async fn applied_versions(&self) -> Result<Vec<i64>, sqlx::Error> {
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.writer)
        .await?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&self.writer)
            .await
    }
}

/// Whether the writer connection may go back to the pool: not if it is still inside a
/// transaction that sqlx could not end.
///
/// When a commit fails (a full disk), SQLite has already rolled the transaction back, so
/// the `ROLLBACK` that sqlx sends when the transaction is dropped fails too, and sqlx still
/// counts the transaction as open: every later `BEGIN` on that connection would be refused.
/// Such a connection is closed instead, and the pool opens a fresh one.
fn still_usable(
    conn: &mut SqliteConnection,
    _: PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if !conn.is_in_transaction() {
            return Ok(true);
        }
        // The rollback of a dropped transaction is queued to the connection's thread;
        // a ping comes back after it has run.
        conn.ping().await?;
        Ok(!conn.is_in_transaction())
    })
}
