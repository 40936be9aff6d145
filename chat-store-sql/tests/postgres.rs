//! The shared suite against PostgreSQL, one schema per case, plus two pools appending to one
//! conversation, a schema from a newer program, and what a failed login says.
//!
//! The database comes from `CHAT_TEST_POSTGRES_URL` (see `scripts/postgres-test-db.sh`),
//! read when the tests run. Without it the tests are skipped, unless `CI` is set, where a
//! missing URL fails them.

#![cfg(feature = "postgres")]

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chat_core::Store;
use chat_core::testkit::faults::CommitFaultFactory;
use chat_core::testkit::{ReopenableStoreFactory, StoreFactory, several_stores};
use chat_store_sql::{OpenError, PostgresOptions, PostgresStore};
use sqlx::Connection;

const URL_VAR: &str = "CHAT_TEST_POSTGRES_URL";

/// The test database's URL. Without one, outside CI, the whole test binary reports that it
/// skipped and exits successfully: libtest has no way to skip a test at run time.
fn url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") => {
            panic!(
                "{URL_VAR} is not set but CI is: the PostgreSQL tests must run in CI. \
                 Run scripts/postgres-test-db.sh and export the variable it prints."
            )
        }
        _ => {
            // Straight to the stream: libtest captures print! output of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "\nPostgreSQL tests skipped: {URL_VAR} is not set \
                 (see chat-store-sql/README.md)."
            );
            std::process::exit(0);
        }
    }
}

/// A schema of its own for one case, dropped when the case is over.
struct Schema {
    url: String,
    name: String,
}

static NEXT_SCHEMA: AtomicUsize = AtomicUsize::new(0);

impl Schema {
    fn new() -> Self {
        let n = NEXT_SCHEMA.fetch_add(1, Ordering::Relaxed);
        // The cases test the contract, not the server's disk: not waiting for the WAL
        // flush on every commit makes a throwaway schema and its writes several times
        // faster. Nothing here kills the server, so every acknowledged write is still
        // there for the reopening case.
        let mut url = url::Url::parse(&url()).expect("the test URL parses");
        url.query_pairs_mut()
            .append_pair("options[synchronous_commit]", "off");
        Self {
            url: url.into(),
            name: format!("chat_test_{}_{n}", std::process::id()),
        }
    }

    fn options(&self) -> PostgresOptions {
        let mut options = PostgresOptions::default();
        options.schema = Some(self.name.clone());
        options.max_connections = 8;
        options
    }

    async fn open(&self) -> PostgresStore {
        PostgresStore::connect_with(&self.url, self.options())
            .await
            .expect("connecting to the test database")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // The store is gone by now and its idle connections hold no locks, so the drop
        // does not wait on them.
        common::execute_detached(
            &self.url,
            vec![
                "SET lock_timeout = '10s'".to_owned(),
                format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name),
            ],
            &format!("test schema {}", self.name),
        );
    }
}

struct Fresh;

impl StoreFactory for Fresh {
    type Store = PostgresStore;
    type Guard = Schema;

    async fn create(&self) -> (PostgresStore, Schema) {
        let schema = Schema::new();
        (schema.open().await, schema)
    }
}

impl ReopenableStoreFactory for Fresh {
    async fn reopen(&self, schema: &Schema) -> PostgresStore {
        schema.open().await
    }
}

chat_core::store_tests!(suite, Fresh, durable);

/// The tables every write touches, for the commit-fault triggers.
const TABLES: [&str; 7] = [
    "users",
    "sessions",
    "conversations",
    "messages",
    "attachments",
    "providers",
    "configs",
];

/// Fresh stores whose commits the test can make fail: a deferred constraint trigger on
/// every table raises `disk_full` at commit while `fault_switch.armed` is set, after every
/// statement of the write succeeded.
struct CommitFaults;

impl StoreFactory for CommitFaults {
    type Store = PostgresStore;
    type Guard = Schema;

    async fn create(&self) -> (PostgresStore, Schema) {
        let (store, schema) = Fresh.create().await;
        let s = &schema.name;
        let mut sql = format!(
            "CREATE TABLE \"{s}\".fault_switch (armed boolean NOT NULL);
             INSERT INTO \"{s}\".fault_switch VALUES (false);
             CREATE FUNCTION \"{s}\".fault_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF (SELECT armed FROM \"{s}\".fault_switch) THEN
                     RAISE EXCEPTION 'the test refuses this commit' USING ERRCODE = 'disk_full';
                 END IF;
                 RETURN NULL;
             END $$;"
        );
        for table in TABLES {
            sql.push_str(&format!(
                "CREATE CONSTRAINT TRIGGER fault_refuse AFTER INSERT OR UPDATE OR DELETE
                 ON \"{s}\".{table} DEFERRABLE INITIALLY DEFERRED
                 FOR EACH ROW EXECUTE FUNCTION \"{s}\".fault_refuse();"
            ));
        }
        let mut conn = sqlx::PgConnection::connect(&schema.url).await.unwrap();
        sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        (store, schema)
    }

    async fn destroy(&self, store: PostgresStore, schema: Schema) {
        store.close().await;
        drop(schema);
    }
}

impl CommitFaultFactory for CommitFaults {
    async fn fail_commits(&self, schema: &Schema, fail: bool) {
        let mut conn = sqlx::PgConnection::connect(&schema.url).await.unwrap();
        sqlx::query(&format!(
            "UPDATE \"{}\".fault_switch SET armed = $1",
            schema.name
        ))
        .bind(fail)
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
}

chat_core::store_fault_tests!(faults, CommitFaults);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

#[test]
fn two_pools_append_gaplessly() {
    runtime().block_on(async {
        let schema = Schema::new();
        // Two stores are two pools: as far as the database can tell, two servers.
        let stores: Vec<Arc<dyn Store>> =
            vec![Arc::new(schema.open().await), Arc::new(schema.open().await)];
        several_stores::appends_are_gapless(&stores, 32, 10).await;
    });
}

#[test]
fn a_schema_from_a_newer_program_is_refused() {
    runtime().block_on(async {
        let schema = Schema::new();
        let store = schema.open().await;
        store.close().await;

        let mut conn = sqlx::PgConnection::connect(&schema.url).await.unwrap();
        sqlx::query(&format!(
            "INSERT INTO \"{}\"._sqlx_migrations
                 (version, description, success, checksum, execution_time)
             VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
            schema.name
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();

        let error = PostgresStore::connect_with(&schema.url, schema.options())
            .await
            .unwrap_err();
        match &error {
            OpenError::SchemaTooNew { found, known, .. } => {
                assert_eq!(*found, 9999);
                assert!(*known < 9999);
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
        assert!(error.to_string().contains("newer"), "{error}");
    });
}

#[test]
fn without_migrate_on_open_an_old_schema_waits_for_migrate() {
    runtime().block_on(async {
        let schema = Schema::new();
        let mut options = schema.options();
        options.migrate_on_open = false;
        // The schema does not even exist yet: nothing is applied.
        assert!(matches!(
            PostgresStore::connect_with(&schema.url, options.clone()).await,
            Err(OpenError::SchemaTooOld { found: 0, .. })
        ));
        let store = schema.open().await;
        store.migrate().await.expect("migrating again is a no-op");
        store.close().await;
        let store = PostgresStore::connect_with(&schema.url, options)
            .await
            .unwrap();
        store.ping().await.unwrap();
    });
}

/// Every message of `error` and its sources, in Display and Debug form.
fn everything_said(error: &OpenError) -> String {
    let mut said = format!("{error}\n{error:?}\n");
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        said.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    said
}

#[test]
fn a_refused_login_names_the_host_and_not_the_password() {
    runtime().block_on(async {
        let good = url::Url::parse(&url()).expect("the test URL parses");
        let mut bad = good.clone();
        let secret = "Wr0ng-S3cret-xyzzy";
        bad.set_password(Some(secret)).unwrap();
        let error = PostgresStore::connect(bad.as_str()).await.unwrap_err();
        assert!(matches!(error, OpenError::Connect { .. }), "{error:?}");
        let said = everything_said(&error);
        let host = good.host_str().unwrap();
        assert!(error.to_string().contains(host), "{error}");
        assert!(!said.contains(secret), "the password leaked:\n{said}");
    });
}
