//! Running statements so that they work directly against PostgreSQL and through a pooler in
//! transaction mode (PgBouncer, the pooled endpoints of hosted PostgreSQL), where a server
//! connection belongs to a client for one transaction only.
//!
//! What sqlx-postgres 0.8 does (its `connection/executor.rs`): a query with arguments is
//! prepared in one round trip (Parse, Describe, Sync) and bound and executed in a second
//! (Bind, Execute, Sync).
//!
//! - A *persistent* query (sqlx's default) is prepared under a name, `sqlx_s_N`, numbered
//!   per client connection, and cached. Through a pooler, that name stays on a server
//!   connection which other clients then get, and their own `sqlx_s_1` fails with
//!   "prepared statement already exists" (or a cached name is used on a server connection
//!   that never saw it). A statement cache capacity of 0 does not help: the query is still
//!   prepared under a new name, and that name is then neither reused nor closed.
//! - `persistent(false)` prepares the *unnamed* statement instead, which the next Parse
//!   replaces, so nothing outlives the statement. But outside a transaction the pooler may
//!   give the Bind to another server connection than the Parse (it reassigns at each
//!   `ReadyForQuery` while the client is idle), where the unnamed statement does not exist.
//!
//! So through a pooler every statement is unnamed and runs inside a transaction: a lone
//! statement in one of its own (`BEGIN`, the statement, `COMMIT`: two more round trips), and
//! the statements of a store transaction in that transaction. Directly, statements are
//! persistent and cached as sqlx does by default. `scripts/pgbouncer-test.sh` and
//! `chat-server/tests/pgbouncer.rs` prove it against a real PgBouncer.

use std::fmt;

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt, stream};
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgQueryResult, PgRow, PgStatement};
use sqlx::{Describe, Either, Error, Execute, Executor, Postgres, Transaction};

/// The store's way to the database: its pool, and whether a transaction-mode pooler sits
/// between them. `&PgExec` is an sqlx [`Executor`] for lone statements; [`PgExec::begin`]
/// starts a transaction.
#[derive(Clone)]
pub(crate) struct PgExec {
    pool: PgPool,
    pooler: bool,
}

impl fmt::Debug for PgExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgExec")
            .field("pooler", &self.pooler)
            .finish_non_exhaustive()
    }
}

impl PgExec {
    pub(crate) fn new(pool: PgPool, pooler: bool) -> Self {
        Self { pool, pooler }
    }

    /// Starts a transaction; run its statements through [`PgTx::conn`].
    pub(crate) async fn begin(&self) -> Result<PgTx, Error> {
        Ok(PgTx {
            tx: self.pool.begin().await?,
            persistent: !self.pooler,
        })
    }

    /// Closes every connection, waiting for operations in flight.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// A transaction whose statements are unnamed when the store sits behind a pooler.
pub(crate) struct PgTx {
    tx: Transaction<'static, Postgres>,
    persistent: bool,
}

impl PgTx {
    /// The executor for the transaction's statements.
    pub(crate) fn conn(&mut self) -> TxExec<'_> {
        TxExec {
            conn: &mut self.tx,
            persistent: self.persistent,
        }
    }

    pub(crate) async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), Error> {
        self.tx.rollback().await
    }
}

/// A statement with sqlx's `persistent` flag forced off where a pooler needs it.
struct Statement<E> {
    inner: E,
    persistent: bool,
}

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for Statement<E> {
    fn sql(&self) -> &'q str {
        self.inner.sql()
    }

    fn statement(&self) -> Option<&PgStatement<'q>> {
        // A prepared statement object names a server-side statement: not through a pooler.
        self.inner.statement().filter(|_| self.persistent)
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, sqlx::error::BoxDynError> {
        self.inner.take_arguments()
    }

    fn persistent(&self) -> bool {
        self.persistent && self.inner.persistent()
    }
}

type Step = Either<PgQueryResult, PgRow>;

impl<'p> Executor<'p> for &'_ PgExec {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.pooler {
            return self.pool.fetch_many(query);
        }
        let pool = self.pool.clone();
        // One statement's answers, gathered inside its transaction: the callers read a
        // bounded page at a time, and the transaction must end before they are handed on.
        let steps = async move {
            let mut tx = pool.begin().await?;
            let steps: Vec<Step> = (&mut *tx)
                .fetch_many(Statement {
                    inner: query,
                    persistent: false,
                })
                .try_collect()
                .await?;
            tx.commit().await?;
            Ok::<_, Error>(steps)
        };
        stream::once(steps)
            .map_ok(|steps| stream::iter(steps.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.pooler {
            return self.pool.fetch_optional(query);
        }
        let pool = self.pool.clone();
        Box::pin(async move {
            let mut tx = pool.begin().await?;
            let row = (&mut *tx)
                .fetch_optional(Statement {
                    inner: query,
                    persistent: false,
                })
                .await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [sqlx::postgres::PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, Error>>
    where
        'p: 'e,
    {
        // Only sqlx's compile-time macros prepare ahead; the store does not use them.
        self.pool.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Postgres>, Error>>
    where
        'p: 'e,
    {
        self.pool.describe(sql)
    }
}

/// The executor of a [`PgTx`]'s statements.
pub(crate) struct TxExec<'c> {
    conn: &'c mut PgConnection,
    persistent: bool,
}

impl fmt::Debug for TxExec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxExec")
            .field("persistent", &self.persistent)
            .finish_non_exhaustive()
    }
}

impl<'c> Executor<'c> for TxExec<'c> {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        self.conn.fetch_many(Statement {
            inner: query,
            persistent: self.persistent,
        })
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        self.conn.fetch_optional(Statement {
            inner: query,
            persistent: self.persistent,
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [sqlx::postgres::PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, Error>>
    where
        'c: 'e,
    {
        self.conn.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Postgres>, Error>>
    where
        'c: 'e,
    {
        self.conn.describe(sql)
    }
}
