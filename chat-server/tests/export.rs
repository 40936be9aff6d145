//! `GET /chat/export` and `chat-server export --user NAME`: every line parses, the lines hold
//! exactly the caller's data in the documented order, each as its `GET` shows it, and
//! nothing of another user's, nor any key, hash or token.

#[macro_use]
mod common;

use common::{Backing, Kind, Server, User};
use serde_json::{Value, json};

/// The export, parsed line by line.
async fn export(user: &User) -> Vec<(String, Value)> {
    let r = user.client.get("/chat/export").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    parse(&r.text())
}

fn parse(text: &str) -> Vec<(String, Value)> {
    assert!(text.ends_with('\n'), "the last line is ended");
    text.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line is not JSON ({e}): {line}"));
            let object = value.as_object().expect("each line is an object");
            assert_eq!(object.len(), 2, "{line}");
            (
                object["type"].as_str().unwrap().to_owned(),
                object["data"].clone(),
            )
        })
        .collect()
}

async fn created(user: &User, path: &str, body: Value) -> Value {
    let r = user.client.post(path, body).await;
    assert_eq!(r.status, 201, "{path}: {}", r.text());
    r.json()
}

async fn fetched(user: &User, path: &str) -> Value {
    let r = user.client.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

/// Ada's data as the API shows it, in export order; Bob's alongside, which must not appear.
async fn fill(server: &Server, ada: &User, bob: &User) -> Vec<(String, Value)> {
    let shared_used = server
        .app
        .service()
        .create_shared_provider(
            chat_core::NewProvider::parse("Shared", "https://shared.example").unwrap(),
        )
        .await
        .unwrap();
    server
        .app
        .service()
        .create_shared_provider(
            chat_core::NewProvider::parse("Unused", "https://unused.example").unwrap(),
        )
        .await
        .unwrap();

    let mut expected = vec![("user".to_owned(), fetched(ada, "/users/me").await)];
    let older = created(ada, "/chat/conversations", json!({"title": "older"})).await;
    let newer = created(ada, "/chat/conversations", json!({"title": "newer"})).await;
    let mut conversations = Vec::new();
    // 120 messages cross a page of the store (100).
    for (conversation, messages) in [(&older, 120), (&newer, 2)] {
        let id = conversation["id"].as_str().unwrap();
        let mut lines = Vec::new();
        for n in 0..messages {
            let message = created(
                ada,
                "/chat/messages",
                json!({"conversation_id": id, "role": "user", "content": format!("ada says {n}")}),
            )
            .await;
            lines.push(("message".to_owned(), message.clone()));
            if n % 50 == 1 {
                for file in ["a.png", "b.txt"] {
                    let attachment = created(
                        ada,
                        "/chat/attachments",
                        json!({"message_id": message["id"], "file_type": "image/png", "file_path": file}),
                    )
                    .await;
                    lines.push(("attachment".to_owned(), attachment));
                }
            }
        }
        let conversation = fetched(ada, &format!("/chat/conversations/{id}")).await;
        conversations.push((conversation, lines));
    }
    // Newest first.
    for (conversation, lines) in conversations.into_iter().rev() {
        expected.push(("conversation".to_owned(), conversation));
        expected.extend(lines);
    }

    let own_used = created(
        ada,
        "/chat/llm-providers",
        json!({"name": "Mine", "api_endpoint": "https://mine.example"}),
    )
    .await;
    let own_unused = created(
        ada,
        "/chat/llm-providers",
        json!({"name": "Spare", "api_endpoint": "https://spare.example"}),
    )
    .await;
    let mut providers: Vec<Value> = vec![
        fetched(ada, &format!("/chat/llm-providers/{}", shared_used.id)).await,
        own_used.clone(),
        own_unused,
    ];
    providers.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let mut configs = Vec::new();
    for provider in [
        &own_used,
        &fetched(ada, &format!("/chat/llm-providers/{}", shared_used.id)).await,
    ] {
        created(
            ada,
            "/chat/user-llm-configs",
            json!({"provider_id": provider["id"], "api_key": "sk-ada-secret-key-0123456789"}),
        )
        .await;
        let config = fetched(
            ada,
            &format!(
                "/chat/user-llm-configs/{}/{}",
                ada.id,
                provider["id"].as_str().unwrap()
            ),
        )
        .await;
        configs.push((provider["id"].as_str().unwrap().to_owned(), config));
    }
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    expected.extend(providers.into_iter().map(|p| ("provider".to_owned(), p)));
    expected.extend(configs.into_iter().map(|(_, c)| ("config".to_owned(), c)));

    // Bob's, with words that must not show up in Ada's export.
    let theirs = created(bob, "/chat/conversations", json!({"title": "bob-title"})).await;
    created(
        bob,
        "/chat/messages",
        json!({"conversation_id": theirs["id"], "role": "user", "content": "bob-content"}),
    )
    .await;
    let bobs = created(
        bob,
        "/chat/llm-providers",
        json!({"name": "bob-provider", "api_endpoint": "https://bob.example"}),
    )
    .await;
    created(
        bob,
        "/chat/user-llm-configs",
        json!({"provider_id": bobs["id"], "api_key": "sk-bob-secret-key-0123456789"}),
    )
    .await;
    expected
}

mod cases {
    use super::*;

    pub async fn export_holds_exactly_the_callers_data_in_order(server: &Server) {
        let ada = server.user("ada").await;
        let bob = server.user("bob").await;
        let expected = fill(server, &ada, &bob).await;
        let lines = export(&ada).await;
        assert_eq!(lines.len(), expected.len());
        for (n, (got, want)) in lines.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "line {n}");
        }

        let r = ada.client.get("/chat/export").await;
        let text = r.text();
        for secret in [
            "bob",
            bob.id.as_str(),
            "sk-ada-secret",
            "sk-bob-secret",
            ada.token.as_str(),
            "password",
            "hash",
            "sealed",
            "Unused",
        ] {
            assert!(!text.contains(secret), "{secret} in the export");
        }

        // Bob's export is his alone.
        let lines = export(&bob).await;
        let kinds: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            ["user", "conversation", "message", "provider", "config"]
        );
        let text = bob.client.get("/chat/export").await.text();
        assert!(
            !text.contains(&ada.id) && !text.contains("ada says"),
            "{text}"
        );
    }

    pub async fn export_needs_a_token(server: &Server) {
        let r = server.client().get("/chat/export").await;
        r.assert_error(401, "unauthorized", None);
        let r = server
            .client()
            .with_token("nonsense")
            .get("/chat/export")
            .await;
        r.assert_error(401, "unauthorized", None);
    }

    pub async fn a_new_user_exports_only_themself(server: &Server) {
        let ada = server.user("ada").await;
        let lines = export(&ada).await;
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, "user");
        assert_eq!(lines[0].1["id"], ada.id.as_str());
    }
}

store_tests!(
    export_holds_exactly_the_callers_data_in_order,
    export_needs_a_token,
    a_new_user_exports_only_themself,
);

/// `chat-server export --user NAME` prints the lines the API streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_prints_what_the_api_streams() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("chat.db").display());
    let server = common::binary::Binary::start(&store, &["--min-free-space", "0"]);
    let ada = server.user("ada").await;
    server.user("bob").await;
    let r = ada.post("/chat/conversations", json!({"title": "t"})).await;
    let conversation = r.json()["id"].as_str().unwrap().to_owned();
    ada.post(
        "/chat/messages",
        json!({"conversation_id": conversation, "role": "user", "content": "hello"}),
    )
    .await;
    let streamed = ada.get("/chat/export").await.text();

    // SQLite allows a second process beside the server.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["export", "--user", "ada", "--store", &store])
            .env_remove("CHAT_STORE")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(parse(&printed), parse(&streamed));
    assert_eq!(parse(&printed).len(), 3);

    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["export", "--user", "nobody"])
        .env(
            "CHAT_STORE",
            format!("sqlite:{}", dir.path().join("chat.db").display()),
        )
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    // The reason goes to standard error; standard output holds only export lines.
    assert!(
        unknown.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&unknown.stdout)
    );
    let reason = String::from_utf8_lossy(&unknown.stderr);
    assert!(reason.contains("not found"), "{reason}");
    server.terminate();
}

/// Two users, one with four times the other's data: exporting the larger after the smaller
/// raises the server's peak memory by far less than the difference in size, so what an
/// export holds does not grow with the amount exported (a page's worth and the buffers are
/// paid once, by the first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_export_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("chat.db").display());
    let server = common::binary::Binary::start(&store, &["--min-free-space", "0"]);
    // 64 KiB messages: 300 of them (19 MiB) for one user, 1,200 (75 MiB) for the other.
    let content = "x".repeat(64 * 1024);
    let small = fill_one(&server, "small", &content, 300).await;
    let large = fill_one(&server, "large", &content, 1_200).await;

    let before = peak_rss_kib(server.pid());
    let small_size = export_size(&small).await;
    let after_small = peak_rss_kib(server.pid());
    let large_size = export_size(&large).await;
    let after_large = peak_rss_kib(server.pid());
    assert!(large_size > 75 * 1024 * 1024, "{large_size}");
    let first = (after_small - before) * 1024;
    let more = (after_large - after_small) * 1024;
    eprintln!(
        "exports of {} MiB then {} MiB: the server's peak memory grew by {} MiB, then {} MiB",
        small_size >> 20,
        large_size >> 20,
        first >> 20,
        more >> 20
    );
    assert!(
        more < (large_size - small_size) / 4,
        "the server's peak memory grew by {more} bytes more for an export {} bytes larger",
        large_size - small_size
    );
    server.terminate();
}

/// Registers `name` and gives them one conversation of `count` messages of `content`.
async fn fill_one(
    server: &common::binary::Binary,
    name: &str,
    content: &str,
    count: usize,
) -> common::Client {
    let user = server.user(name).await;
    let r = user
        .post("/chat/conversations", json!({"title": "big"}))
        .await;
    let conversation = r.json()["id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let user = user.clone();
        let body = json!({"conversation_id": conversation, "role": "user", "content": content});
        tasks.push(tokio::spawn(async move {
            for _ in 0..count / 4 {
                let r = user.post("/chat/messages", body.clone()).await;
                assert_eq!(r.status, 201, "{}", r.text());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    user
}

/// The size of `user`'s whole export.
async fn export_size(user: &common::Client) -> u64 {
    let r = user.get("/chat/export").await;
    assert_eq!(r.status, 200);
    r.body.len() as u64
}

/// The peak resident memory of a process, from Linux's `/proc/PID/status` (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
