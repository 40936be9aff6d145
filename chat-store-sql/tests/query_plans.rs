#![cfg(all(feature = "sqlite", feature = "postgres"))]

//! Every list query and every cascade lookup finds its rows through an index on the
//! filtered columns, as the database plans it: the contract says a list costs in
//! proportion to the page, and a delete's cascade in proportion to what it removes, and a
//! missing index breaks both without changing a single answer.
//!
//! The list statements are the ones the stores run (`chat_store_sql::queries`); the cascade
//! lookups are made from the schema's own foreign keys (`SELECT 1 FROM child WHERE fk = ?`,
//! which is what the database runs for `ON DELETE CASCADE`). SQLite is asked with
//! `EXPLAIN QUERY PLAN`: no full `SCAN` of a table or index, and a `SEARCH` of an index on
//! the filtered column. PostgreSQL is asked with `EXPLAIN` of a generic plan, sequential
//! scans switched off so that the planner takes an index wherever one can serve, and the
//! providers table filled and analysed (on an empty one the planner guesses shared
//! providers are common and walks the primary key): every table scan must have an index
//! condition on the filtered column, or use a partial index whose predicate is on it.
//! Each database also shows that the check fails when an index is dropped.

use chat_store_sql::queries::{Database, ListQuery, lists};

/// A statement to check: its name, its text, and the column it filters on.
struct Lookup {
    name: String,
    sql: String,
    filtered: String,
}

impl From<ListQuery> for Lookup {
    fn from(q: ListQuery) -> Self {
        Lookup {
            name: q.name,
            sql: q.sql,
            filtered: q.filtered.to_owned(),
        }
    }
}

/// The cascade lookup for the foreign key `table.column`.
fn cascade(table: &str, column: &str, param: &str) -> Lookup {
    Lookup {
        name: format!("cascade to {table}.{column}"),
        sql: format!("SELECT 1 FROM {table} WHERE {column} = {param}"),
        filtered: column.to_owned(),
    }
}

/// The statements of `database`, then its cascade lookups.
fn statements(database: Database, foreign_keys: Vec<(String, String)>) -> Vec<Lookup> {
    let param = match database {
        Database::Sqlite => "?1",
        Database::Postgres => "$1",
    };
    assert!(
        foreign_keys.len() >= 3,
        "the schema has a foreign key for each cascade (messages, attachments, configs): \
         found {foreign_keys:?}"
    );
    lists(database)
        .into_iter()
        .map(Lookup::from)
        .chain(foreign_keys.iter().map(|(t, c)| cascade(t, c, param)))
        .collect()
}

/// Every statement planned through an index.
fn assert_no_problems(found: &[String]) {
    assert!(
        found.is_empty(),
        "statements whose plan reads more than their page:\n{}",
        found.join("\n")
    );
}

/// With `attachments_message_id` dropped, exactly the attachments' lookups are reported.
fn assert_reports_dropped_index(found: &[String]) {
    for name in [
        "list_attachments(false)",
        "list_attachments(true)",
        "cascade to attachments.message_id",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(&format!("{name}:"))),
            "without attachments_message_id, the plan check must report {name}: {found:?}"
        );
    }
    assert_eq!(
        found.len(),
        3,
        "only the attachments' lookups lose their index: {found:?}"
    );
}

mod sqlite {
    use sqlx::{Connection, Row, SqliteConnection};

    use super::{Database, Lookup, statements};

    /// A migrated SQLite database in a temporary directory, and a connection to it.
    async fn database() -> (tempfile::TempDir, SqliteConnection) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("plans.sqlite3");
        let store = chat_store_sql::SqliteStore::open(&path)
            .await
            .expect("a fresh SQLite store");
        store.close().await;
        let conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("a connection to the store's file");
        (dir, conn)
    }

    async fn foreign_keys(conn: &mut SqliteConnection) -> Vec<(String, String)> {
        sqlx::query(
            "SELECT m.name, f.\"from\" FROM sqlite_master m, pragma_foreign_key_list(m.name) f
             WHERE m.type = 'table' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
        )
        .fetch_all(conn)
        .await
        .expect("the foreign keys")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }

    /// What is wrong with the plan of `lookup`, if anything: a table read by a scan (all of
    /// it, or all of an index), or no search of an index on the filtered column.
    async fn problem(conn: &mut SqliteConnection, lookup: &Lookup) -> Option<String> {
        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {}", lookup.sql))
            .fetch_all(conn)
            .await
            .unwrap_or_else(|e| panic!("EXPLAIN QUERY PLAN of {}: {e}", lookup.name))
            .iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect();
        // `SCAN (subquery-1)` and the like read a result already bounded; `SCAN table`
        // (with or without `USING INDEX`) reads a whole table or index.
        let scans = plan
            .iter()
            .any(|d| d.starts_with("SCAN ") && !d.starts_with("SCAN (") && !d.contains("CONSTANT"));
        let searched = plan.iter().any(|d| {
            d.starts_with("SEARCH ")
                && d.contains("INDEX")
                && (d.contains(&format!("({}=", lookup.filtered))
                    || d.contains(&format!("({}>", lookup.filtered))
                    || d.contains(&format!("({}<", lookup.filtered)))
        });
        (scans || !searched).then(|| format!("{}: {plan:?}", lookup.name))
    }

    /// Every problem of every statement.
    async fn problems(conn: &mut SqliteConnection) -> Vec<String> {
        let keys = foreign_keys(conn).await;
        let mut found = Vec::new();
        for lookup in statements(Database::Sqlite, keys) {
            found.extend(problem(conn, &lookup).await);
        }
        found
    }

    #[tokio::test]
    async fn every_list_and_cascade_uses_an_index() {
        let (_dir, mut conn) = database().await;
        let found = problems(&mut conn).await;
        super::assert_no_problems(&found);
    }

    #[tokio::test]
    async fn a_dropped_index_is_reported() {
        let (_dir, mut conn) = database().await;
        sqlx::query("DROP INDEX attachments_message_id")
            .execute(&mut conn)
            .await
            .expect("dropping the index");
        let found = problems(&mut conn).await;
        super::assert_reports_dropped_index(&found);
    }
}

mod postgres {
    use std::collections::HashMap;
    use std::io::Write;

    use serde_json::Value;
    use sqlx::{Connection, PgConnection, Row};

    use super::{Database, Lookup, statements};

    /// A migrated schema of its own, and a connection that plans in it; `None` (said on
    /// standard error) without a test database, outside CI.
    async fn schema(name: &str) -> Option<(String, PgConnection)> {
        let url = match std::env::var("CHAT_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") => {
                panic!("CHAT_TEST_POSTGRES_URL is not set but CI is")
            }
            _ => {
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: CHAT_TEST_POSTGRES_URL is not set"
                );
                return None;
            }
        };
        let schema = format!("chat_plans_{}_{name}", std::process::id());
        let mut options = chat_store_sql::PostgresOptions::default();
        options.schema = Some(schema.clone());
        let store = chat_store_sql::PostgresStore::connect_with(&url, options)
            .await
            .expect("a fresh schema");
        store.close().await;
        let mut conn = PgConnection::connect(&url).await.expect("a connection");
        // Planned on an empty table, `owner_id IS NULL ORDER BY id` walks the primary key
        // and filters, guessing shared providers are common. Statistics of a realistic
        // table, many users' own providers and few shared ones, make it use the index.
        sqlx::raw_sql(&format!(
            "INSERT INTO \"{schema}\".providers
                 (id, owner_id, name, name_key, api_endpoint, created_at)
             SELECT gen_random_uuid(), gen_random_uuid(), 'p' || i, 'p' || i, 'x', now()
             FROM generate_series(1, 5000) AS i;
             ANALYZE \"{schema}\".providers;"
        ))
        .execute(&mut conn)
        .await
        .expect("filling the providers");
        // A sequential scan of a table is the planner's last resort: taken only where no
        // index can serve. A generic plan is one made without the parameters' values.
        for setting in [
            format!("SET search_path = \"{schema}\""),
            "SET enable_seqscan = off".to_owned(),
            "SET plan_cache_mode = force_generic_plan".to_owned(),
        ] {
            sqlx::raw_sql(&setting)
                .execute(&mut conn)
                .await
                .expect("a setting");
        }
        Some((schema, conn))
    }

    async fn drop_schema(schema: &str, conn: &mut PgConnection) {
        sqlx::raw_sql(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(conn)
            .await
            .expect("dropping the schema");
    }

    async fn foreign_keys(conn: &mut PgConnection) -> Vec<(String, String)> {
        sqlx::query(
            "SELECT c.conrelid::regclass::text, a.attname::text
             FROM pg_constraint c
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
             WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace",
        )
        .fetch_all(conn)
        .await
        .expect("the foreign keys")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }

    /// The predicates of the schema's partial indexes, by index name.
    async fn partial_indexes(conn: &mut PgConnection) -> HashMap<String, String> {
        sqlx::query(
            "SELECT c.relname::text, pg_get_expr(i.indpred, i.indrelid)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indpred IS NOT NULL AND c.relnamespace = current_schema()::regnamespace",
        )
        .fetch_all(conn)
        .await
        .expect("the partial indexes")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }

    /// Whether every scan of a table under `node` finds its rows through an index on
    /// `column`: an index condition on it, or a partial index whose predicate is on it
    /// (an index of exactly the rows wanted). Counts the table scans.
    fn check(
        node: &Value,
        column: &str,
        partial: &HashMap<String, String>,
        scans: &mut usize,
        bad: &mut Vec<String>,
    ) {
        let kind = node["Node Type"].as_str().unwrap_or_default();
        if let Some(table) = node["Relation Name"].as_str() {
            *scans += 1;
            // A bitmap heap scan reads what the bitmap index scan under it found.
            let index_node = match kind {
                "Index Scan" | "Index Only Scan" => Some(node),
                "Bitmap Heap Scan" => Some(&node["Plans"][0]),
                _ => None,
            };
            let cond = index_node.and_then(|n| n["Index Cond"].as_str());
            let index = index_node.and_then(|n| n["Index Name"].as_str());
            let by_cond = cond.is_some_and(|c| c.contains(column));
            let by_predicate = index
                .and_then(|i| partial.get(i))
                .is_some_and(|p| p.contains(column));
            if !(by_cond || by_predicate) {
                bad.push(format!(
                    "{kind} on {table} (index {index:?}, condition {cond:?})"
                ));
            }
        }
        for child in node["Plans"].as_array().into_iter().flatten() {
            check(child, column, partial, scans, bad);
        }
    }

    async fn problem(
        conn: &mut PgConnection,
        partial: &HashMap<String, String>,
        n: usize,
        lookup: &Lookup,
    ) -> Option<String> {
        let params = (1..=3)
            .filter(|i| lookup.sql.contains(&format!("${i}")))
            .count();
        sqlx::raw_sql(&format!("PREPARE plan_{n} AS {}", lookup.sql))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("PREPARE of {}: {e}", lookup.name));
        let nulls = vec!["NULL"; params].join(", ");
        let row = sqlx::query(&format!("EXPLAIN (FORMAT JSON) EXECUTE plan_{n}({nulls})"))
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("EXPLAIN of {}: {e}", lookup.name));
        let plan: Value = row.get(0);
        let root = &plan[0]["Plan"];
        let (mut scans, mut bad) = (0, Vec::new());
        check(root, &lookup.filtered, partial, &mut scans, &mut bad);
        (scans == 0 || !bad.is_empty()).then(|| format!("{}: {bad:?}", lookup.name))
    }

    async fn problems(conn: &mut PgConnection) -> Vec<String> {
        let keys = foreign_keys(conn).await;
        let partial = partial_indexes(conn).await;
        let mut found = Vec::new();
        for (n, lookup) in statements(Database::Postgres, keys).iter().enumerate() {
            found.extend(problem(conn, &partial, n, lookup).await);
        }
        found
    }

    #[tokio::test]
    async fn every_list_and_cascade_uses_an_index() {
        let Some((schema, mut conn)) = schema("all").await else {
            return;
        };
        let found = problems(&mut conn).await;
        drop_schema(&schema, &mut conn).await;
        super::assert_no_problems(&found);
    }

    #[tokio::test]
    async fn a_dropped_index_is_reported() {
        let Some((schema, mut conn)) = schema("dropped").await else {
            return;
        };
        sqlx::raw_sql("DROP INDEX attachments_message_id")
            .execute(&mut conn)
            .await
            .expect("dropping the index");
        let found = problems(&mut conn).await;
        drop_schema(&schema, &mut conn).await;
        super::assert_reports_dropped_index(&found);
    }
}
