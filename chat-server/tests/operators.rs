//! The operators' commands, run as the real binary over real stores: `copy` between sled,
//! SQLite and PostgreSQL (every object compared, the copy served and read back through the
//! API, its sealed keys opened with the same master key), `user` (a disable cuts a live
//! session), `prune` and `serve --retain` (only what is old goes), and bad input (a clear
//! message on standard error, an exit code scripts can tell apart, never a panic).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{
    Conversation, ConversationId, Limit, MasterKey, MessageDraft, MessageId, Record, RecordKind,
    Role, ScanCursor, Store, UserId, time,
};
use chat_server::store_url::StoreUrl;
use common::binary::Binary;
use common::{Backing, Client, Kind};
use serde_json::{Value, json};

/// Runs the binary with `args` and `stdin`, without the environment's store or key.
fn run(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(args)
        .env_remove("CHAT_STORE")
        .env_remove("CHAT_MASTER_KEY")
        .env_remove("CHAT_MASTER_KEY_FILE")
        .env("CHAT_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "chat-server {args:?} panicked: {stderr}"
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the binary and expects success.
#[track_caller]
fn ok(args: &[&str], stdin: &str) -> Output {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "chat-server {args:?} failed ({}): {}{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    out
}

/// Runs the binary and expects exit code `code` with `needle` on standard error.
#[track_caller]
fn fails(args: &[&str], stdin: &str, code: i32, needle: &str) -> Output {
    let out = run(args, stdin);
    assert_eq!(
        out.status.code(),
        Some(code),
        "chat-server {args:?}: expected exit {code}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(needle),
        "chat-server {args:?}: expected {needle:?} on stderr: {}",
        stderr(&out)
    );
    out
}

/// Registers and logs in `name` with password `password-of-<name>`.
async fn login(client: &Client, name: &str, register: bool) -> Client {
    let password = format!("password-of-{name}");
    if register {
        let r = client
            .post("/users", json!({"username": name, "password": password}))
            .await;
        assert_eq!(r.status, 201, "register {name}: {}", r.text());
    }
    let r = client
        .post(
            "/users/login",
            json!({"username": name, "password": password}),
        )
        .await;
    assert_eq!(r.status, 200, "login {name}: {}", r.text());
    client.with_token(r.json()["token"].as_str().unwrap())
}

async fn created(client: &Client, path: &str, body: Value) -> Value {
    let r = client.post(path, body).await;
    assert_eq!(r.status, 201, "POST {path}: {}", r.text());
    r.json()
}

/// Gives `user` some of everything through the API: conversations with messages (one
/// deleted, so `seq` has a gap), attachments, metadata, a private provider, configs for it
/// and for the shared `shared` provider, and a conversation deleted with what it held.
async fn populate(user: &Client, shared: &str, tag: &str) {
    let own = created(
        user,
        "/chat/llm-providers",
        json!({"name": format!("own {tag}"), "api_endpoint": "https://llm.example.com/v1"}),
    )
    .await;
    for provider in [shared, own["id"].as_str().unwrap()] {
        created(
            user,
            "/chat/user-llm-configs",
            json!({"provider_id": provider, "api_key": format!("sk-{tag}-0123456789abcdef")}),
        )
        .await;
    }
    for title in ["first", "second", "doomed"] {
        let c = created(
            user,
            "/chat/conversations",
            json!({"title": format!("{title} of {tag}")}),
        )
        .await;
        let mut ids = Vec::new();
        for i in 0..4 {
            let m = created(
                user,
                "/chat/messages",
                json!({"conversation_id": c["id"], "role": "user",
                       "content": format!("message {i}"), "metadata": {"z": 1, "a": [1E2]}}),
            )
            .await;
            created(
                user,
                "/chat/attachments",
                json!({"message_id": m["id"], "file_type": "image/png",
                       "file_path": format!("uploads/{tag}/{i}.png")}),
            )
            .await;
            ids.push(m["id"].as_str().unwrap().to_owned());
        }
        let r = user.delete(&format!("/chat/messages/{}", ids[1])).await;
        assert_eq!(r.status, 204);
        if title == "doomed" {
            let id = c["id"].as_str().unwrap();
            let r = user.delete(&format!("/chat/conversations/{id}")).await;
            assert_eq!(r.status, 204);
        }
    }
}

/// Everything `user` can read through the API, in a fixed order.
async fn snapshot(user: &Client) -> Value {
    let get = |path: String| async move {
        let r = user.get(&path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    };
    let me = get("/users/me".into()).await;
    let providers = get("/chat/llm-providers?limit=1000".into()).await;
    let mut configs = Vec::new();
    for p in providers.as_array().unwrap() {
        let r = user
            .get(&format!(
                "/chat/user-llm-configs/{}/{}",
                me["id"].as_str().unwrap(),
                p["id"].as_str().unwrap()
            ))
            .await;
        if r.status == 200 {
            configs.push(r.json());
        }
    }
    let conversations = get("/chat/conversations?limit=1000".into()).await;
    let mut threads = Vec::new();
    for c in conversations.as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let messages = get(format!("/chat/conversations/{id}/messages?limit=1000")).await;
        let mut attachments = Vec::new();
        for m in messages.as_array().unwrap() {
            let mid = m["id"].as_str().unwrap();
            attachments.push(get(format!("/chat/messages/{mid}/attachments")).await);
        }
        threads.push(json!({"messages": messages, "attachments": attachments}));
    }
    json!({"me": me, "providers": providers, "configs": configs,
           "conversations": conversations, "threads": threads})
}

/// Every record of every kind in `store`, in scan order.
async fn everything(store: &dyn Store) -> Vec<Record> {
    let mut all = Vec::new();
    for kind in RecordKind::ALL {
        let mut cursor = ScanCursor::start(kind);
        loop {
            let page = store.scan(cursor, Limit::new(1000).unwrap()).await.unwrap();
            let Some(last) = page.last() else { break };
            cursor = last.cursor();
            all.extend(page);
        }
    }
    all
}

async fn open(url: &str) -> Arc<dyn Store> {
    url.parse::<StoreUrl>().unwrap().open().await.unwrap()
}

/// A URL of the PostgreSQL database whose tables live in the backing's own schema,
/// created here (the binary is given a URL, and only creates tables).
async fn pg_url(backing: &Backing) -> String {
    let (base, schema) = backing.pg.clone().unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
        .await
        .unwrap();
    sqlx::Executor::execute(&mut conn, format!("CREATE SCHEMA \"{schema}\"").as_str())
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// A sled store with two users' data made through the API by the real server, then
/// stopped; answers ada's snapshot, taken before bob is disabled (by the command line).
async fn sled_source(dir: &Path) -> (String, Value) {
    let sled = format!("sled:{}", dir.join("sled").display());
    ok(
        &[
            "provider",
            "add",
            "--name",
            "Shared",
            "--endpoint",
            "https://shared.example.com/v1",
            "--store",
            &sled,
        ],
        "",
    );
    let server = Binary::start(&sled, &[]);
    let client = server.client();
    let providers = login(&client, "ada", true)
        .await
        .get("/chat/llm-providers")
        .await
        .json();
    let shared = providers[0]["id"].as_str().unwrap().to_owned();
    let ada = login(&client, "ada", false).await;
    let bob = login(&client, "bob", true).await;
    populate(&ada, &shared, "ada").await;
    populate(&bob, &shared, "bob").await;
    let before = snapshot(&ada).await;
    server.terminate();
    ok(&["user", "disable", "bob", "--store", &sled], "");
    (sled, before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_sled_to_sqlite_to_postgres_keeps_everything() {
    let Some(backing) = Backing::new(Kind::Postgres) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sled, before) = sled_source(dir.path()).await;
    let key_file = dir.path().join("sled").join("master.key");
    let key_file = key_file.to_str().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("copy.db").display());
    let pg = pg_url(&backing).await;

    let out = ok(&["copy", "--from", &sled, "--to", &sqlite], "");
    assert!(stdout(&out).contains("verified"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("master.key"),
        "copy must name the key file the embedded source keeps: {}",
        stderr(&out)
    );
    let out = ok(
        &[
            "copy",
            "--from",
            &sqlite,
            "--to",
            &pg,
            "--master-key-file",
            key_file,
        ],
        "",
    );
    assert!(
        stderr(&out).contains("checked: the master key"),
        "{}",
        stderr(&out)
    );

    let from_sled = everything(&*open(&sled).await).await;
    let from_sqlite = everything(&*open(&sqlite).await).await;
    let from_pg = everything(&*open(&pg).await).await;
    let kinds: Vec<RecordKind> = from_sled.iter().map(Record::kind).collect();
    for kind in RecordKind::ALL {
        assert!(kinds.contains(&kind), "the source must hold {kind:?}");
    }
    assert!(
        from_sled
            .iter()
            .any(|r| matches!(r, Record::User(a) if a.disabled)),
        "bob is disabled in the source"
    );
    assert_eq!(
        from_sqlite, from_sled,
        "sled → SQLite must copy every record as it is"
    );
    assert_eq!(
        from_pg, from_sled,
        "SQLite → PostgreSQL must copy every record as it is"
    );

    // Served with the source's key, the copy answers what the source did.
    let server = Binary::start(&pg, &["--master-key-file", key_file]);
    let client = server.client();
    let ada = login(&client, "ada", false).await;
    assert_eq!(
        snapshot(&ada).await,
        before,
        "the API reads the copy as it read the source"
    );
    let r = client
        .post(
            "/users/login",
            json!({"username": "bob", "password": "password-of-bob"}),
        )
        .await;
    r.assert_error(403, "forbidden", None);
    // The copy's sealed keys open with that key: copy's own check on the PostgreSQL copy.
    drop(server);
    let again = format!("sqlite:{}", dir.path().join("again.db").display());
    let out = ok(
        &[
            "copy",
            "--from",
            &pg,
            "--to",
            &again,
            "--master-key-file",
            key_file,
        ],
        "",
    );
    assert!(stderr(&out).contains("checked: the master key"));
    // And another key does not: refused before anything is written.
    let wrong = dir.path().join("wrong.key");
    std::fs::write(&wrong, &*MasterKey::generate().to_hex()).unwrap();
    let never = dir.path().join("never.db");
    fails(
        &[
            "copy",
            "--from",
            &pg,
            "--to",
            &format!("sqlite:{}", never.display()),
            "--master-key-file",
            wrong.to_str().unwrap(),
        ],
        "",
        1,
        "does not open the source's sealed API keys",
    );
    assert!(!never.exists(), "a refused copy must not create its target");
    backing.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_refuses_a_target_with_data_and_force_finishes_a_partial_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (sled, _) = sled_source(dir.path()).await;
    let target = format!("sqlite:{}", dir.path().join("target.db").display());
    ok(&["copy", "--from", &sled, "--to", &target], "");
    let source = everything(&*open(&sled).await).await;

    // Take away part of the target, as an interrupted copy would have left it: a
    // conversation with its messages, and the last records of the later kinds.
    {
        let store = open(&target).await;
        let conversation = source
            .iter()
            .find_map(|r| match r {
                Record::Conversation { conversation, .. } => Some(conversation.id),
                _ => None,
            })
            .unwrap();
        assert!(store.delete_conversation(conversation).await.unwrap());
        assert_ne!(everything(&*store).await, source);
    }
    fails(
        &["copy", "--from", &sled, "--to", &target],
        "",
        3,
        "already holds data",
    );
    let out = ok(&["copy", "--from", &sled, "--to", &target, "--force"], "");
    assert!(
        stdout(&out).contains("already there and kept"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        everything(&*open(&target).await).await,
        source,
        "--force finishes the copy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_added_listed_and_a_disable_cuts_a_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("chat.db").display());
    ok(
        &[
            "user",
            "add",
            "carol",
            "--email",
            "carol@example.com",
            "--store",
            &store,
        ],
        "password-of-carol\n",
    );
    fails(
        &["user", "add", "CAROL", "--store", &store],
        "password-of-carol\n",
        3,
        "already exists",
    );
    fails(
        &["user", "add", "dave", "--store", &store],
        "",
        2,
        "no password",
    );
    // SQLite serves several processes: the server and the operator's commands.
    let server = Binary::start(&store, &["--registration", "closed"]);
    let client = server.client();
    let carol = login(&client, "carol", false).await;
    assert_eq!(carol.get("/users/me").await.status, 200);

    ok(&["user", "disable", "Carol", "--store", &store], "");
    carol
        .get("/users/me")
        .await
        .assert_error(401, "unauthorized", None);
    client
        .post(
            "/users/login",
            json!({"username": "carol", "password": "password-of-carol"}),
        )
        .await
        .assert_error(403, "forbidden", None);
    let list = stdout(&ok(&["user", "list", "--store", &store], ""));
    assert!(
        list.lines()
            .any(|l| l.contains("\tcarol\tcarol@example.com\t") && l.ends_with("\tdisabled")),
        "{list}"
    );
    ok(&["user", "enable", "carol", "--store", &store], "");
    let carol = login(&client, "carol", false).await;
    assert_eq!(carol.get("/users/me").await.status, 200);
    fails(
        &["user", "disable", "nobody", "--store", &store],
        "",
        3,
        "not found",
    );

    // Providers: add, list, remove (with the configs that use it).
    ok(
        &[
            "provider",
            "add",
            "--name",
            "Gone Soon",
            "--endpoint",
            "https://gone.example.com",
            "--store",
            &store,
        ],
        "",
    );
    let providers = carol.get("/chat/llm-providers").await.json();
    let id = providers[0]["id"].as_str().unwrap().to_owned();
    created(
        &carol,
        "/chat/user-llm-configs",
        json!({"provider_id": id, "api_key": "sk-0123456789abcdef"}),
    )
    .await;
    let list = stdout(&ok(&["provider", "list", "--store", &store], ""));
    assert!(
        list.contains(&format!(
            "{id}\tGone Soon\thttps://gone.example.com\tshared"
        )),
        "{list}"
    );
    ok(&["provider", "remove", "gone soon", "--store", &store], "");
    assert_eq!(carol.get("/chat/llm-providers").await.json(), json!([]));
    fails(
        &["provider", "remove", "gone soon", "--store", &store],
        "",
        3,
        "not found",
    );
    drop(server);
}

/// A conversation of `user` last updated `age` ago, with `messages` messages.
async fn conversation_aged(
    store: &dyn Store,
    user: UserId,
    age: chrono::Duration,
    messages: u64,
) -> Conversation {
    let when = time::now() - age;
    let c = Conversation {
        id: ConversationId::new(),
        user_id: user,
        title: "aged".into(),
        created_at: when,
        updated_at: when,
        message_count: 0,
    };
    store.create_conversation(&c).await.unwrap();
    for i in 0..messages {
        store
            .append_message(MessageDraft {
                id: MessageId::new(),
                conversation_id: c.id,
                user_id: user,
                role: Role::User,
                content: format!("m{i}"),
                metadata: None,
                created_at: when,
            })
            .await
            .unwrap();
    }
    c
}

async fn conversation_ids(store: &dyn Store) -> Vec<ConversationId> {
    everything(store)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Record::Conversation { conversation, .. } => Some(conversation.id),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_and_retain_remove_only_what_is_old() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("chat.db").display());
    let store = open(&url).await;
    let user = UserId::new();
    let days = chrono::Duration::days;
    for age in [days(400), days(40)] {
        conversation_aged(&*store, user, age, 3).await;
    }
    let young = conversation_aged(&*store, user, days(5), 2).await;
    let mid = conversation_aged(&*store, user, days(20), 1).await;
    let before = everything(&*store).await;

    let out = ok(
        &["prune", "--older-than", "30d", "--dry-run", "--store", &url],
        "",
    );
    assert!(
        stdout(&out).contains("would delete 2 conversations (6 messages)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        everything(&*store).await,
        before,
        "a dry run deletes nothing"
    );
    let out = ok(&["prune", "--older-than", "30d", "--store", &url], "");
    assert!(stdout(&out).contains("deleted 2 conversations (6 messages)"));
    let mut left = conversation_ids(&*store).await;
    left.sort();
    let mut want = vec![young.id, mid.id];
    want.sort();
    assert_eq!(left, want, "only conversations older than 30 days go");
    let messages = everything(&*store)
        .await
        .into_iter()
        .filter(|r| r.kind() == RecordKind::Message)
        .count();
    assert_eq!(messages, 3, "their messages go with them, the others' stay");

    // The server does the same on its own with --retain.
    let server = Binary::start(&url, &["--retain", "10d", "--purge-interval", "1s"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while conversation_ids(&*store).await != vec![young.id] {
        assert!(
            Instant::now() < deadline,
            "serve --retain 10d did not delete the 20-day-old conversation: {}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_message_and_an_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("a.db").display());
    fails(
        &["copy", "--from", "mysql://x", "--to", &sqlite],
        "",
        2,
        "unknown store scheme",
    );
    let out = fails(
        &[
            "copy",
            "--from",
            "postgres://someone:hunter2@127.0.0.1:1/chat",
            "--to",
            &sqlite,
        ],
        "",
        1,
        "could not connect",
    );
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    fails(
        &["copy", "--from", &sqlite, "--to", &sqlite],
        "",
        2,
        "the same store",
    );
    fails(
        &["prune", "--older-than", "soon", "--store", &sqlite],
        "",
        2,
        "not a duration",
    );
    let out = fails(
        &["user", "list", "--store", "postgres://u:pw@127.0.0.1:1/db"],
        "",
        1,
        "could not open the store",
    );
    assert_eq!(
        stderr(&out).trim().lines().count(),
        1,
        "one line: {}",
        stderr(&out)
    );
}
