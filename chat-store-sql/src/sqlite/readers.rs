//! The SQLite store's reads: SQLite itself (through rusqlite) on a few connections of their
//! own, each read running whole on one blocking thread.
//!
//! sqlx-sqlite runs every connection on a thread of its own and talks to it through
//! channels: a statement is sent over, its rows come back one by one, and the pool's
//! acquire and release are further wake-ups. A page request makes three reads (session,
//! conversation, page), so under load the server spent its time switching threads rather
//! than in SQLite: the same page through SQLite itself took a quarter to an eighth of the
//! time (`docs/BENCHMARKS.md`). Here a read is one hand-off to tokio's blocking pool, where
//! it takes an idle connection, steps its prepared statement to the end and maps the rows,
//! and one hand-off back.
//!
//! Writes stay on sqlx's single writer connection (`appends.rs`, `store.rs`): WAL mode lets
//! these connections read beside it, each read seeing the last commit before it began.
//! Both drivers link the same SQLite library.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chat_core::{Error, Limit, Result, Unavailable};
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, Row};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::BACKEND;
use crate::faults::sqlite_native as sqlite;
use crate::rows::Columns;
use crate::scan::KeyPart;
use crate::values::{from_micros, limit, to_u64};

/// How many distinct statements each connection keeps prepared: every read statement of
/// the store, with room to spare.
const STATEMENT_CACHE: usize = 64;

/// The read connections of one store.
#[derive(Debug, Clone)]
pub(super) struct Readers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    busy_timeout: Duration,
    acquire_timeout: Duration,
    /// One permit per connection that may exist: a read holds one while it runs.
    permits: Arc<Semaphore>,
    /// Connections not in use. Opened when first needed, kept until the store closes.
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

/// Why a read could not start.
#[derive(Debug, thiserror::Error)]
enum NoConnection {
    #[error("the store is closed")]
    Closed,
    #[error("no read connection was free within {0:?}")]
    TimedOut(Duration),
    #[error("the read's thread ended before it answered")]
    Lost,
}

impl Readers {
    /// Read connections to the database at `path` (which must exist and be in WAL mode),
    /// at most `max` at once.
    pub(super) fn new(
        path: PathBuf,
        max: u32,
        busy_timeout: Duration,
        acquire_timeout: Duration,
    ) -> Self {
        let max = usize::try_from(max.max(1)).unwrap_or(1);
        Self {
            inner: Arc::new(Inner {
                path,
                busy_timeout,
                acquire_timeout,
                permits: Arc::new(Semaphore::new(max)),
                idle: Mutex::new(Vec::with_capacity(max)),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Runs `read` on a connection of its own, on a blocking thread.
    ///
    /// A caller that stops waiting does not stop the read: it runs to its end and its
    /// connection goes back to the idle ones.
    pub(super) async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(unreachable(NoConnection::Closed));
        }
        let permit =
            tokio::time::timeout(inner.acquire_timeout, inner.permits.clone().acquire_owned())
                .await
                .map_err(|_| unreachable(NoConnection::TimedOut(inner.acquire_timeout)))?
                .map_err(|_| unreachable(NoConnection::Closed))?;
        let inner = Arc::clone(inner);
        tokio::task::spawn_blocking(move || {
            let connection = inner.take()?;
            let answer = read(&connection);
            inner.give_back(connection);
            drop(permit);
            answer
        })
        .await
        .map_err(|_| unreachable(NoConnection::Lost))?
    }

    /// Closes every idle connection and refuses later reads; reads running end first and
    /// close theirs as they finish.
    pub(super) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.permits.close();
        self.inner.idle().clear();
    }
}

impl Inner {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> Result<Connection> {
        match self.idle().pop() {
            Some(connection) => Ok(connection),
            None => self.open().map_err(sqlite),
        }
    }

    fn give_back(&self, connection: Connection) {
        if !self.closed.load(Ordering::Acquire) {
            self.idle().push(connection);
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // Opened for writing only because a WAL reader must be able to write the shared
        // memory index; `query_only` makes SQLite itself refuse any change through it.
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        connection.busy_timeout(self.busy_timeout)?;
        connection.pragma_update(None, "query_only", true)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(connection)
    }
}

fn unreachable(why: NoConnection) -> Error {
    Error::unavailable(BACKEND, Unavailable::Unreachable, why)
}

/// The first row `sql` answers with `params`, mapped, if there is one.
pub(super) fn query_one<T>(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut statement = connection.prepare_cached(sql).map_err(sqlite)?;
    let mut rows = statement.query(params).map_err(sqlite)?;
    match rows.next().map_err(sqlite)? {
        Some(row) => map(row).map(Some),
        None => Ok(None),
    }
}

/// Every row `sql` answers with `params`, mapped, in order.
pub(super) fn query_all<T>(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = connection.prepare_cached(sql).map_err(sqlite)?;
    let mut rows = statement.query(params).map_err(sqlite)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite)? {
        found.push(map(row)?);
    }
    Ok(found)
}

/// The parameters of a keyset-paged list: `first` as `?1`, the page size as `?2`, and the
/// key to page from as `?3` when there is one (`queries.rs` numbers them so).
pub(super) fn keyset(first: Value, page: Limit, key: Option<impl Into<Uuid>>) -> Vec<Value> {
    let mut params = vec![first, Value::Integer(limit(page))];
    params.extend(key.map(blob));
    params
}

/// An id as SQLite stores it: 16 bytes.
pub(super) fn blob(id: impl Into<Uuid>) -> Value {
    Value::Blob(id.into().as_bytes().to_vec())
}

/// A part of a scan cursor's key as a parameter.
pub(super) fn key_value(part: KeyPart) -> Value {
    match part {
        KeyPart::Id(id) => blob(id),
        KeyPart::Bytes(bytes) => Value::Blob(bytes),
        KeyPart::Int(n) => Value::Integer(n),
    }
}

/// A column's value, with SQLite's error kept as the source.
fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, column: &str) -> Result<T> {
    row.get(column).map_err(sqlite)
}

impl Columns for Row<'_> {
    const BACKEND: &'static str = BACKEND;

    fn time(&self, column: &str) -> Result<DateTime<Utc>> {
        from_micros(BACKEND, get(self, column)?)
    }

    fn id<T: From<Uuid>>(&self, column: &str) -> Result<T> {
        get::<Uuid>(self, column).map(T::from)
    }

    fn opt_id<T: From<Uuid>>(&self, column: &str) -> Result<Option<T>> {
        get::<Option<Uuid>>(self, column).map(|id| id.map(T::from))
    }

    fn text(&self, column: &str) -> Result<String> {
        get(self, column)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        get(self, column)
    }

    fn bytes(&self, column: &str) -> Result<Vec<u8>> {
        get(self, column)
    }

    fn count(&self, column: &str) -> Result<u64> {
        to_u64(BACKEND, get(self, column)?, column)
    }

    fn flag(&self, column: &str) -> Result<bool> {
        get(self, column)
    }
}

#[cfg(test)]
mod tests {
    use crate::sqlite::SqliteStore;

    /// The read connections cannot change the database, whatever a read runs.
    #[tokio::test]
    async fn read_connections_refuse_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("chat.sqlite3"))
            .await
            .unwrap();
        let wrote = store
            .readers
            .read(|c| {
                c.execute("CREATE TABLE intruder (x INTEGER)", [])
                    .map_err(super::sqlite)
            })
            .await;
        assert!(wrote.is_err(), "a read connection wrote: {wrote:?}");
        let tables: i64 = store
            .readers
            .read(|c| {
                c.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'intruder'",
                    [],
                    |row| row.get(0),
                )
                .map_err(super::sqlite)
            })
            .await
            .unwrap();
        assert_eq!(tables, 0);
    }
}
