//! Connecting a [`PostgresStore`]: its options, its pool, its schema and its migrations.
//! The SQL of each `Store` operation is in `store.rs`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chat_core::Result;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::OpenError;
use crate::faults::POSTGRES as BACKEND;
use crate::schema::{check_versions, migrate_error};

mod redact;
mod store;

use redact::{Redacted, redact, url_password};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// How [`PostgresStore::connect_with`] connects and sizes its pool.
///
/// *Requires the `postgres` feature.*
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// Connections the pool keeps open even when idle.
    pub min_connections: u32,
    /// How long an operation waits for a connection before it fails with
    /// [`Unavailable::Unreachable`](chat_core::Unavailable::Unreachable): all of them busy,
    /// or the server not answering. Default 5 s, so that a request answers 503 within that
    /// when the database is down rather than hang.
    pub acquire_timeout: Duration,
    /// How long opening the store waits for the server to answer.
    pub connect_timeout: Duration,
    /// Idle connections above `min_connections` are closed after this long.
    pub idle_timeout: Option<Duration>,
    /// Ping an idle connection before handing it out, so one the server has dropped (a
    /// restart, a network cut) is replaced instead of failing a request, and a server that
    /// comes back is served again without a restart. Costs a round trip per operation;
    /// sqlx's default.
    pub test_before_acquire: bool,
    /// The schema to keep the tables in (created if missing when migrating), instead of
    /// the connection's default `search_path`.
    pub schema: Option<String>,
    /// Apply pending migrations when connecting. When `false`, connecting to a database
    /// whose schema is behind fails with [`OpenError::SchemaTooOld`] until an operator runs
    /// [`PostgresStore::migrate`].
    pub migrate_on_open: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            test_before_acquire: true,
            schema: None,
            migrate_on_open: true,
        }
    }
}

/// A [`Store`](chat_core::Store) over a PostgreSQL database, through a connection pool.
///
/// Every write is one statement or one short transaction. Appends bump a counter on the
/// conversation row with `UPDATE … RETURNING` in the same statement that inserts the
/// message; the row lock that the update takes orders appenders on every server sharing
/// the database, so `seq` has no gaps and no repeats.
///
/// A write answers `Ok` only after its commit. A server that cannot be reached answers
/// [`Unavailable::Unreachable`](chat_core::Unavailable::Unreachable) within
/// [`acquire_timeout`](PostgresOptions::acquire_timeout), and one whose disk is full
/// [`Unavailable::OutOfSpace`](chat_core::Unavailable::OutOfSpace); the pool reconnects by
/// itself when the server is back.
///
/// *Requires the `postgres` feature.*
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    connect: PgConnectOptions,
    location: String,
}

impl fmt::Debug for PostgresStore {
    // The connect options hold the password; show only where the store points.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

fn location_of(options: &PgConnectOptions) -> String {
    let database = options.get_database().unwrap_or(options.get_username());
    match options.get_socket() {
        Some(socket) => format!("{}/{database}", socket.display()),
        None => format!("{}:{}/{database}", options.get_host(), options.get_port()),
    }
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`)
    /// with default options and applies pending migrations.
    ///
    /// # Errors
    ///
    /// [`OpenError`] if the URL is malformed, the server cannot be reached or refuses the
    /// login, its schema is newer than this program's, or a migration fails. Errors name
    /// the host, port and database, never the password.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects to the database at `url` with `options`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); with `migrate_on_open` off, also
    /// [`OpenError::SchemaTooOld`] for a database that needs migrating.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, OpenError> {
        let password = url_password(url);
        let mut connect = PgConnectOptions::from_str(url).map_err(|e| OpenError::Config {
            backend: BACKEND,
            reason: redact(e, password.as_deref()).to_string(),
        })?;
        connect = connect.application_name("chat-store");
        if let Some(schema) = &options.schema {
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let location = location_of(&connect);

        // One connection of its own first: a pool retries a refused connection until its
        // timeout and then reports only the timeout, while this reports the cause.
        let mut conn = tokio::time::timeout(
            options.connect_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        .map_err(|_| OpenError::Connect {
            backend: BACKEND,
            location: location.clone(),
            source: Box::new(Redacted(format!(
                "no answer within {:?}",
                options.connect_timeout
            ))),
        })?
        .map_err(|e| OpenError::Connect {
            backend: BACKEND,
            location: location.clone(),
            source: redact(e, password.as_deref()),
        })?;

        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            .idle_timeout(options.idle_timeout)
            .test_before_acquire(options.test_before_acquire);
        let store = Self {
            pool: pool.connect_lazy_with(connect.clone()),
            connect,
            location,
        };
        let result = store
            .check_and_migrate(
                &mut conn,
                options.migrate_on_open,
                options.schema.as_deref(),
            )
            .await;
        // The pool has its own connections; this one was only for setting up.
        let _ = conn.close().await;
        result?;
        Ok(store)
    }

    /// Applies the migrations this program carries that the database lacks.
    ///
    /// Safe to run from several servers at once: the migrator holds an advisory lock.
    ///
    /// # Errors
    ///
    /// [`OpenError::SchemaTooNew`] if the database was migrated by a newer program;
    /// [`OpenError::Migrate`] if a migration fails.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        let mut conn = PgConnection::connect_with(&self.connect)
            .await
            .map_err(|e| OpenError::Connect {
                backend: BACKEND,
                location: self.location.clone(),
                source: redact(e, None),
            })?;
        let result = self.check_and_migrate(&mut conn, true, None).await;
        let _ = conn.close().await;
        result
    }

    /// Closes every connection, waiting for operations in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn check_and_migrate(
        &self,
        conn: &mut PgConnection,
        migrate: bool,
        schema: Option<&str>,
    ) -> Result<(), OpenError> {
        let error = |e| migrate_error(BACKEND, &self.location, &MIGRATOR, e);
        if let (true, Some(schema)) = (migrate, schema) {
            sqlx::query(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_identifier(schema)
            ))
            .execute(&mut *conn)
            .await
            .map_err(|e| error(e.into()))?;
        }
        let applied = applied_versions(conn).await.map_err(|e| error(e.into()))?;
        check_versions(BACKEND, &self.location, &MIGRATOR, &applied, migrate)?;
        if migrate {
            MIGRATOR.run(&mut *conn).await.map_err(error)?;
        }
        Ok(())
    }
}

async fn applied_versions(conn: &mut PgConnection) -> Result<Vec<i64>, sqlx::Error> {
    // to_regclass follows search_path, as the migrator's own queries do.
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(&mut *conn)
        .await?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut *conn)
        .await
}
