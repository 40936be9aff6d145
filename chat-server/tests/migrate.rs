//! `chat-server migrate` on each kind of store, run as an operator would: the real binary,
//! its exit status and what it prints.

use std::process::{Command, Output};

fn migrate(store: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["migrate", "--store", store])
        .env_remove("CHAT_STORE")
        .env("CHAT_LOG", "info")
        .output()
        .unwrap()
}

fn said(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[test]
fn migrate_creates_and_reports_each_store_and_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("chat.db").display());
    let version = chat_store_sql::SqliteStore::schema_version();
    for _ in 0..2 {
        let output = migrate(&sqlite);
        assert!(output.status.success(), "{}", said(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("schema version {version}")),
            "{stdout}"
        );
    }
    assert!(dir.path().join("chat.db").exists());

    let sled = format!("sled:{}", dir.path().join("data").display());
    let output = migrate(&sled);
    assert!(output.status.success(), "{}", said(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&format!(
            "schema version {} (sled format)",
            chat_store_sled::FORMAT_VERSION
        )),
        "{}",
        said(&output)
    );

    let output = migrate("memory:");
    assert!(output.status.success(), "{}", said(&output));
}

#[test]
fn migrate_fails_clearly_on_a_bad_store() {
    let output = migrate("mysql://db/chat");
    assert!(!output.status.success());
    assert!(said(&output).contains("known schemes"), "{}", said(&output));

    // Nothing listens on port 1: refused at once, the password never shown.
    let output = migrate("postgres://chat:hunter2-secret@127.0.0.1:1/chat");
    assert!(!output.status.success());
    let text = said(&output);
    assert!(text.contains("127.0.0.1:1/chat"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}
