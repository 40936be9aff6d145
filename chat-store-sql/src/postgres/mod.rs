//! Connecting a [`PostgresStore`]: its options, its pool, its schema and its migrations.
//! The SQL of each `Store` operation is in `store.rs`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chat_core::Result;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

use crate::OpenError;
use crate::faults::POSTGRES as BACKEND;
use crate::schema::{check_versions, known_version, migrate_error};

mod pooler;
mod redact;
mod store;

use pooler::PgExec;
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
    /// The URL leads to a pooler in transaction mode (PgBouncer, or a hosted database's
    /// pooled endpoint), which gives a server connection to a client for one transaction
    /// only. The store then prepares no named statements and runs every statement inside a
    /// transaction, holds no session state, never migrates (`migrate_on_open` is ignored,
    /// and a schema that is behind fails with [`OpenError::SchemaBehindPooler`]) and takes
    /// no `schema`. Also set by `pgbouncer=true` in the URL's query, which is removed
    /// before connecting.
    pub pooler: bool,
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
            pooler: false,
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
    pool: PgExec,
    connect: PgConnectOptions,
    location: String,
    pooler: bool,
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
        let (url, pgbouncer) = pooler_flag(url)?;
        let pooler = options.pooler || pgbouncer;
        let password = url_password(&url);
        let mut connect = PgConnectOptions::from_str(&url).map_err(|e| OpenError::Config {
            backend: BACKEND,
            reason: redact(e, password.as_deref()).to_string(),
        })?;
        connect = connect.application_name("chat-store");
        if let Some(schema) = &options.schema {
            if pooler {
                // A startup `options` parameter is refused or silently dropped by poolers,
                // and a `SET search_path` would last only one transaction.
                return Err(OpenError::Config {
                    backend: BACKEND,
                    reason: "a schema cannot be chosen through a pooler; set the role's \
                             search_path in the database instead"
                        .to_owned(),
                });
            }
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
            pool: PgExec::new(pool.connect_lazy_with(connect.clone()), pooler),
            connect,
            location,
            pooler,
        };
        let result = store
            .check_and_migrate(
                &mut conn,
                options.migrate_on_open && !pooler,
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
    /// Safe to run from several servers at once: the migrator holds an advisory lock, which
    /// is why it needs a direct connection, not one through a pooler.
    ///
    /// # Errors
    ///
    /// [`OpenError::SchemaTooNew`] if the database was migrated by a newer program;
    /// [`OpenError::Migrate`] if a migration fails; [`OpenError::Config`] for a store
    /// connected through a pooler.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        if self.pooler {
            return Err(OpenError::Config {
                backend: BACKEND,
                reason: "migrations take a session-level lock, which a pooler in transaction \
                         mode cannot hold; migrate over a direct connection (the URL without \
                         pgbouncer=true)"
                    .to_owned(),
            });
        }
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

    /// The schema version this program brings a database to: what
    /// [`migrate`](Self::migrate) leaves behind, and what it refuses to go past.
    #[must_use]
    pub fn schema_version() -> i64 {
        known_version(&MIGRATOR)
    }

    /// Whether the store reaches its database through a pooler in transaction mode.
    #[must_use]
    pub fn through_pooler(&self) -> bool {
        self.pooler
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
        let applied = if self.pooler {
            // Unnamed statements, in a transaction so the pooler keeps one server
            // connection from Parse to Bind (see `pooler.rs`).
            let mut tx = conn.begin().await.map_err(|e| error(e.into()))?;
            let applied = applied_versions(&mut tx, false).await;
            tx.commit().await.map_err(|e| error(e.into()))?;
            applied
        } else {
            applied_versions(conn, true).await
        }
        .map_err(|e| error(e.into()))?;
        match check_versions(BACKEND, &self.location, &MIGRATOR, &applied, migrate) {
            Err(OpenError::SchemaTooOld {
                backend,
                location,
                found,
                known,
            }) if self.pooler => {
                return Err(OpenError::SchemaBehindPooler {
                    backend,
                    location,
                    found,
                    known,
                });
            }
            other => other?,
        }
        if migrate {
            MIGRATOR.run(&mut *conn).await.map_err(error)?;
        }
        Ok(())
    }
}

async fn applied_versions(
    conn: &mut PgConnection,
    persistent: bool,
) -> Result<Vec<i64>, sqlx::Error> {
    // to_regclass follows search_path, as the migrator's own queries do.
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .persistent(persistent)
        .fetch_one(&mut *conn)
        .await?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .persistent(persistent)
        .fetch_all(&mut *conn)
        .await
}

/// Takes `pgbouncer=true` (or `false`) out of the URL's query, the convention other tools
/// use for "this is a pooler in transaction mode"; the database must not see it.
fn pooler_flag(url: &str) -> Result<(String, bool), OpenError> {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Not a URL `url` understands: sqlx reports what is wrong with it.
        return Ok((url.to_owned(), false));
    };
    let mut flag = None;
    let mut kept = Vec::new();
    for (key, value) in parsed.query_pairs() {
        if key == "pgbouncer" {
            flag = Some(value.into_owned());
        } else {
            kept.push((key.into_owned(), value.into_owned()));
        }
    }
    let pooler = match flag.as_deref() {
        None => return Ok((url.to_owned(), false)),
        Some("true") => true,
        Some("false") => false,
        Some(_) => {
            return Err(OpenError::Config {
                backend: BACKEND,
                reason: "pgbouncer must be true or false".to_owned(),
            });
        }
    };
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((parsed.into(), pooler))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pooler_flag_is_taken_out_of_the_url() {
        let (url, pooler) =
            pooler_flag("postgres://u:p@h:6432/db?sslmode=disable&pgbouncer=true").unwrap();
        assert!(pooler);
        assert_eq!(url, "postgres://u:p@h:6432/db?sslmode=disable");
        let (url, pooler) = pooler_flag("postgres://u:p@h/db?pgbouncer=false").unwrap();
        assert!(!pooler);
        assert_eq!(url, "postgres://u:p@h/db");
        let plain = "postgres://u:p@h/db?application_name=x";
        assert_eq!(pooler_flag(plain).unwrap(), (plain.to_owned(), false));
        let e = pooler_flag("postgres://u:secret@h/db?pgbouncer=yes").unwrap_err();
        assert!(matches!(e, OpenError::Config { .. }), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
