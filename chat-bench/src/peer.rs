//! The peer: LangChain's `SQLChatMessageHistory` (from PyPI, in a virtual environment the
//! benchmark creates) appending and reading messages on the same SQLite settings and the
//! same PostgreSQL, beside our stores doing the same in-process: appends one at a time,
//! then reading each history whole (ours in pages of the largest limit), at 1 client and
//! at `scale.tasks` threads or tasks, each on a history of its own.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chat_core::{Limit, MessageOrder, Store};
use chat_store_sql::{PostgresOptions, PostgresStore, SqliteStore};

use crate::report::{Better, Report};
use crate::{Scale, StoreKind};

const SCRIPT: &str = include_str!("peer.py");
const PACKAGES: [&str; 3] = [
    "langchain-community",
    "sqlalchemy[asyncio]",
    "psycopg2-binary",
];

/// A schema of the benchmark's own in the database at `url`, and a URL whose connections
/// use it.
pub async fn schema_url(url: &str, tag: &str) -> (String, String) {
    let schema = format!("chat_bench_{tag}_{}", std::process::id());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connecting to PostgreSQL");
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(&mut conn)
        .await
        .expect("creating the benchmark's schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    (schema, url)
}

/// Drops a schema [`schema_url`] made.
pub async fn drop_schema(url: &str, schema: &str) {
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(url).await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&mut conn)
            .await;
    }
}

/// Creates the virtual environment unless it is there; answers its python.
fn venv_python(venv: &Path) -> Result<std::path::PathBuf, String> {
    let python = venv.join("bin/python");
    let marker = venv.join(".chat-bench-installed");
    // The marker names what was installed: a changed list installs again.
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == PACKAGES.join("\n")) {
        return Ok(python);
    }
    let run = |cmd: &mut std::process::Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    };
    println!(
        "  creating the peer's virtual environment in {}",
        venv.display()
    );
    run(std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv))?;
    run(std::process::Command::new(&python)
        .args(["-m", "pip", "install", "-q"])
        .args(PACKAGES))?;
    std::fs::write(&marker, PACKAGES.join("\n")).map_err(|e| e.to_string())?;
    Ok(python)
}

/// Runs the peer on the database at `url` (SQLAlchemy's form); answers its rates.
fn langchain(python: &Path, url: &str, scale: &Scale) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let script = dir.path().join("peer.py");
    std::fs::write(&script, SCRIPT).map_err(|e| e.to_string())?;
    let out = std::process::Command::new(python)
        .arg(&script)
        .args(["--url", url])
        .args(["--messages", &scale.peer_messages.to_string()])
        .args(["--threads", &scale.tasks.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// Our store doing the peer's work: rates of append and read at `tasks` tasks.
async fn ours(store: Arc<dyn Store>, messages: usize, tasks: usize) -> (f64, f64) {
    let owner = crate::store::user();
    store.create_user(&owner).await.unwrap();
    let mut convs = Vec::new();
    for _ in 0..tasks {
        let c = crate::store::conversation(owner.id);
        store.create_conversation(&c).await.unwrap();
        convs.push(c.id);
    }
    let per = messages / tasks;
    let convs = Arc::new(convs);
    let append = {
        let store = Arc::clone(&store);
        let convs = Arc::clone(&convs);
        crate::store::throughput(tasks, per, move |t, i| {
            let store = Arc::clone(&store);
            let d = crate::store::draft(convs[t], owner.id, i);
            async move {
                store.append_message(d).await.unwrap();
            }
        })
        .await
    };
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (store, convs) = (Arc::clone(&store), Arc::clone(&convs));
        set.spawn(async move {
            let (mut after, mut read) = (None, 0);
            loop {
                let order = MessageOrder::Ascending { after };
                let page = store
                    .list_messages(convs[t], order, Limit::MAX)
                    .await
                    .unwrap();
                read += page.len();
                match page.last() {
                    Some(m) if page.len() == Limit::MAX.get() => after = Some(m.seq),
                    _ => break,
                }
            }
            assert_eq!(read, per);
        });
    }
    set.join_all().await;
    let read = (per * tasks) as f64 / started.elapsed().as_secs_f64();
    (append, read)
}

/// Compares each of `stores` with LangChain on the matching database.
pub async fn run(
    report: &mut Report,
    scale: &Scale,
    stores: &[StoreKind],
    postgres: Option<&str>,
    venv: &Path,
) {
    report.section("peer (LangChain SQLChatMessageHistory, in-process)");
    let python = match venv_python(venv) {
        Ok(p) => p,
        Err(e) => {
            report.note(format!("peer skipped: {e}"));
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let lc_sqlite = format!(
        "sqlite:///{}",
        dir.path().join("langchain.sqlite3").display()
    );
    let mut peers: Vec<(&str, serde_json::Value)> = Vec::new();
    match langchain(&python, &lc_sqlite, scale) {
        Ok(v) => peers.push(("sqlite", v)),
        Err(e) => report.note(format!("LangChain on SQLite failed: {e}")),
    }
    let pg = match postgres {
        Some(url) if stores.contains(&StoreKind::Postgres) => {
            let (schema, with_schema) = schema_url(url, "peer").await;
            let lc_url = url
                .replacen("postgres://", "postgresql+psycopg2://", 1)
                .replacen("postgresql://", "postgresql+psycopg2://", 1);
            let sep = if lc_url.contains('?') { '&' } else { '?' };
            let lc_url = format!("{lc_url}{sep}options=-csearch_path%3D{schema}");
            match langchain(&python, &lc_url, scale) {
                Ok(v) => peers.push(("postgres", v)),
                Err(e) => report.note(format!("LangChain on PostgreSQL failed: {e}")),
            }
            Some((url.to_owned(), schema, with_schema))
        }
        _ => None,
    };
    report.note(format!(
        "{} messages; LangChain appends with add_message one at a time and reads with \
         .messages; ours appends with append_message and reads in pages of {}",
        scale.peer_messages,
        Limit::MAX.get()
    ));
    for kind in stores {
        let (name, db, store): (&str, &str, Arc<dyn Store>) = match kind {
            StoreKind::Sled => {
                let s = chat_store_sled::SledStore::open(dir.path().join("sled")).unwrap();
                ("sled", "sqlite", Arc::new(s))
            }
            StoreKind::Sqlite => {
                let s = SqliteStore::open(dir.path().join("ours.sqlite3"))
                    .await
                    .unwrap();
                ("sqlite", "sqlite", Arc::new(s))
            }
            StoreKind::Postgres => {
                let Some((url, schema, _)) = &pg else {
                    continue;
                };
                let mut options = PostgresOptions::default();
                options.schema = Some(schema.clone());
                options.max_connections = 16;
                let s = PostgresStore::connect_with(url, options).await.unwrap();
                ("postgres", "postgres", Arc::new(s))
            }
        };
        let Some((_, peer)) = peers.iter().find(|(d, _)| *d == db) else {
            continue;
        };
        for tasks in [1, scale.tasks] {
            let (append, read) = ours(Arc::clone(&store), scale.peer_messages, tasks).await;
            for (what, ours) in [("append", append), ("read", read)] {
                let theirs = peer[format!("{what}_{tasks}")].as_f64().unwrap_or(f64::NAN);
                report.add(
                    format!("{name}: {what} messages/s, {tasks} client(s)"),
                    ours,
                    "msg/s",
                    Better::Higher,
                    format!("LangChain on {db}"),
                    theirs,
                    "target: ×5",
                );
            }
        }
    }
    if let Some((url, schema, _)) = pg {
        drop_schema(&url, &schema).await;
    }
}
