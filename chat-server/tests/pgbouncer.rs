//! Two real servers over one PostgreSQL through PgBouncer in transaction pooling mode
//! (`scripts/pgbouncer-test.sh` starts one and prints `CHAT_TEST_PGBOUNCER_URL`), where a
//! server connection belongs to a client for one transaction only: what hosted
//! PostgreSQL's pooled endpoints are.
//!
//! Each run makes a database of its own (the pooler passes any database name through),
//! because a schema cannot be chosen through a pooler.

mod common;

use std::process::{Command, Output};

use common::binary::Binary;
use serde_json::json;

/// The PgBouncer URL, or `None` to skip. With `CI` set a missing one fails.
fn pgbouncer_url() -> Option<String> {
    match std::env::var("CHAT_TEST_PGBOUNCER_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but CHAT_TEST_PGBOUNCER_URL is not: run scripts/pgbouncer-test.sh")
        }
        _ => {
            eprintln!("CHAT_TEST_PGBOUNCER_URL is not set: skipping the PgBouncer test");
            None
        }
    }
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.set_path(database);
    url.into()
}

/// A database of this test's own, dropped at the end.
struct Database {
    admin: String,
    name: String,
}

impl Database {
    async fn create(admin: &str) -> Self {
        let name = format!("chat_pgbouncer_{}", uuid::Uuid::now_v7().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin)
            .await
            .unwrap();
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap();
        Self {
            admin: admin.to_owned(),
            name,
        }
    }

    async fn drop(self) {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&self.admin)
            .await
            .unwrap();
        // FORCE: the pooler may still hold server connections to it.
        sqlx::Executor::execute(
            &mut conn,
            format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name).as_str(),
        )
        .await
        .unwrap();
    }
}

/// Runs the binary to its end with `args` and the master key in the environment.
async fn run(args: &[&str], key: &str) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(&args)
            .env("CHAT_MASTER_KEY", key)
            .env("CHAT_LOG", "info")
            .env_remove("CHAT_STORE")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_through_pgbouncer_in_transaction_mode() {
    let (Some(direct), Some(bouncer)) = (common::postgres_url(), pgbouncer_url()) else {
        return;
    };
    let db = Database::create(&direct).await;
    let direct = with_database(&direct, &db.name);
    let pooled = format!("{}?pgbouncer=true", with_database(&bouncer, &db.name));
    let key = chat_core::MasterKey::generate().to_hex().to_string();

    // Through the pooler the server does not migrate: on a new database it refuses to
    // start, saying to migrate on the direct URL.
    let refused = run(
        &["serve", "--listen", "127.0.0.1:0", "--store", &pooled],
        &key,
    )
    .await;
    assert!(!refused.status.success());
    let log = text(&refused.stdout) + &text(&refused.stderr);
    assert!(
        log.contains("run them on the direct URL") && log.contains("chat-server migrate"),
        "{log}"
    );
    assert!(
        !log.contains("chat_test:chat_test"),
        "a password in the log: {log}"
    );
    assert!(!log.contains("panicked"), "{log}");

    // `migrate` through the pooler is refused too (it would take a session-level lock).
    let refused = run(&["migrate", "--store", &pooled], &key).await;
    assert!(!refused.status.success(), "{}", text(&refused.stdout));

    let migrated = run(&["migrate", "--store", &direct], &key).await;
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    let version = chat_store_sql::PostgresStore::schema_version();
    assert!(
        text(&migrated.stdout).contains(&format!("schema version {version}")),
        "{}",
        text(&migrated.stdout)
    );

    let env_key = [("CHAT_MASTER_KEY", key.as_str())];
    let a = Binary::start_with_env(&pooled, &[], &env_key);
    let b = Binary::start_with_env(&pooled, &[], &env_key);

    // Registered on one, logged in on the other.
    let password = "password-of-ada";
    let r = a
        .client()
        .post("/users", json!({"username": "ada", "password": password}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = b
        .client()
        .post(
            "/users/login",
            json!({"username": "ada", "password": password}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let on_a = a.client().with_token(&token);
    let on_b = b.client().with_token(&token);

    let r = on_a
        .post(
            "/chat/conversations",
            json!({"title": "through the pooler"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let conversation = r.json()["id"].as_str().unwrap().to_owned();

    // Concurrent appends through both servers: every seq once, no gaps.
    const PER_SERVER: usize = 30;
    const WRITERS: usize = 4;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        for client in [on_a.clone(), on_b.clone()] {
            let conversation = conversation.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..PER_SERVER / WRITERS + 1 {
                    let r = client
                        .post(
                            "/chat/messages",
                            json!({
                                "conversation_id": conversation,
                                "role": "user",
                                "content": format!("writer {writer} message {i}"),
                            }),
                        )
                        .await;
                    assert_eq!(r.status, 201, "{}", r.text());
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let appended = 2 * WRITERS * (PER_SERVER / WRITERS + 1);
    let r = on_b
        .get(&format!(
            "/chat/conversations/{conversation}/messages?limit=1000"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seqs: Vec<u64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=appended as u64).collect::<Vec<_>>());
    let r = on_a
        .get(&format!("/chat/conversations/{conversation}"))
        .await;
    assert_eq!(r.json()["message_count"], appended);

    // A delete runs as one transaction of several statements through the pooler.
    let r = on_b
        .get(&format!(
            "/chat/conversations/{conversation}/messages?limit=1"
        ))
        .await;
    let message = r.json()[0]["id"].as_str().unwrap().to_owned();
    let r = on_a.delete(&format!("/chat/messages/{message}")).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = on_b.get(&format!("/chat/messages/{message}")).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = on_b
        .get(&format!("/chat/conversations/{conversation}"))
        .await;
    assert_eq!(r.json()["message_count"], appended - 1);

    // Logout on one is honoured at once by the other.
    let r = on_b.get("/users/me").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = on_a.send("POST", "/users/logout", &[], None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    on_b.get("/users/me")
        .await
        .assert_error(401, "unauthorized", None);

    for server in [a, b] {
        let log = server.log_tail();
        assert!(!log.contains("prepared statement"), "{log}");
        server.terminate();
    }
    db.drop().await;
}
