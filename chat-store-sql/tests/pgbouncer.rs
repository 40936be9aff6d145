//! The shared suite against PostgreSQL through PgBouncer in transaction pooling mode
//! (`scripts/pgbouncer-test.sh` starts one and prints `CHAT_TEST_PGBOUNCER_URL`): every case
//! of the contract, the races and the reopening case, with the store in pooler mode.
//!
//! A pooler cannot carry a schema choice, so each case gets a database of its own, made and
//! migrated over the direct URL (`CHAT_TEST_POSTGRES_URL`) and dropped when it is over.
//! Without the PgBouncer URL the cases are skipped, unless `CI` is set, where they fail.

#![cfg(feature = "postgres")]

mod common;

use chat_core::testkit::{ReopenableStoreFactory, StoreFactory};
use chat_store_sql::{PostgresOptions, PostgresStore};
use sqlx::Connection;

const DIRECT_VAR: &str = "CHAT_TEST_POSTGRES_URL";
const POOLER_VAR: &str = "CHAT_TEST_PGBOUNCER_URL";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn with_database(url: &str, database: &str) -> String {
    let mut url = url::Url::parse(url).expect("the test URL parses");
    url.set_path(database);
    url.into()
}

/// A database of its own for one case, dropped when the case is over.
struct Database {
    direct: String,
    name: String,
}

impl Database {
    async fn create() -> Self {
        let direct = var(DIRECT_VAR).expect("checked by skip");
        let name = format!("chat_bouncer_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&direct).await.unwrap();
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        // Migrated over the direct URL, as an operator would before serving through a pooler.
        PostgresStore::connect(&with_database(&direct, &name))
            .await
            .expect("migrating the case's database")
            .close()
            .await;
        Self { direct, name }
    }

    async fn open(&self) -> PostgresStore {
        let pooled = with_database(&var(POOLER_VAR).expect("checked by skip"), &self.name);
        let mut options = PostgresOptions::default();
        options.pooler = true;
        options.max_connections = 8;
        let store = PostgresStore::connect_with(&pooled, options)
            .await
            .expect("connecting through the pooler");
        assert!(store.through_pooler());
        store
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // FORCE: the pooler may still hold server connections to it.
        common::execute_detached(
            &self.direct,
            vec![format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )],
            &format!("test database {}", self.name),
        );
    }
}

struct ThroughPooler;

impl StoreFactory for ThroughPooler {
    type Store = PostgresStore;
    type Guard = Database;

    async fn create(&self) -> (PostgresStore, Database) {
        let database = Database::create().await;
        (database.open().await, database)
    }

    async fn destroy(&self, store: PostgresStore, database: Database) {
        store.close().await;
        drop(database);
    }

    fn skip(&self) -> Option<String> {
        match (var(DIRECT_VAR), var(POOLER_VAR)) {
            (Some(_), Some(_)) => None,
            _ if in_ci() => panic!(
                "CI is set but {DIRECT_VAR} or {POOLER_VAR} is not: run \
                 scripts/postgres-test-db.sh and scripts/pgbouncer-test.sh"
            ),
            _ => Some(format!("{DIRECT_VAR} or {POOLER_VAR} is not set")),
        }
    }
}

impl ReopenableStoreFactory for ThroughPooler {
    async fn reopen(&self, database: &Database) -> PostgresStore {
        database.open().await
    }
}

chat_core::store_tests!(suite, ThroughPooler, durable);
