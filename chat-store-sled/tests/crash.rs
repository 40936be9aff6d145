//! A process killed with SIGKILL in the middle of appending loses nothing it acknowledged.
//!
//! The test re-runs its own binary as the child, filtered to `crash_child`, which appends
//! from several tasks and prints `ACK <seq> <id>` after each `Ok`. The parent kills it
//! mid-stream, reopens the database, and demands every acknowledged message, with `seq`
//! exactly `1..=n`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use chat_core::{
    Conversation, ConversationId, Limit, MessageDraft, MessageId, MessageOrder, PasswordHash, Role,
    Store, User, UserId, time,
};
use chat_store_sled::SledStore;

const CHILD_PATH: &str = "CHAT_STORE_SLED_CRASH_PATH";
const CHILD_USER: &str = "CHAT_STORE_SLED_CRASH_USER";
const CHILD_CONVERSATION: &str = "CHAT_STORE_SLED_CRASH_CONVERSATION";
const APPENDERS: usize = 4;
const ROUNDS: usize = 3;
/// How many acknowledgements the parent waits for before it kills the child.
const ACKS_BEFORE_KILL: usize = 150;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The child: does nothing unless the parent started it.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_PATH) else {
        return;
    };
    let user: UserId = std::env::var(CHILD_USER).unwrap().parse().unwrap();
    let conversation: ConversationId = std::env::var(CHILD_CONVERSATION).unwrap().parse().unwrap();
    runtime().block_on(async move {
        let store = SledStore::open(&path).expect("the child opens the store");
        let mut tasks = Vec::new();
        for task in 0..APPENDERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let draft = MessageDraft {
                        id: MessageId::new(),
                        conversation_id: conversation,
                        user_id: user,
                        role: Role::User,
                        content: format!("task {task} message {i}"),
                        metadata: None,
                        created_at: time::now(),
                    };
                    let m = store.append_message(draft).await.expect("append");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {} {}", m.seq, m.id).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn killed_mid_append_keeps_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let user = User {
        id: UserId::new(),
        username: "crasher".into(),
        email: None,
        password_hash: PasswordHash("x".into()),
        created_at: time::now(),
    };
    let conversation = Conversation {
        id: ConversationId::new(),
        user_id: user.id,
        title: "crash".into(),
        created_at: time::now(),
        updated_at: time::now(),
        message_count: 0,
    };
    runtime().block_on(async {
        let store = SledStore::open(&path).unwrap();
        store.create_user(&user).await.unwrap();
        store.create_conversation(&conversation).await.unwrap();
    });

    let mut acked: HashMap<MessageId, u64> = HashMap::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_PATH, &path)
            .env(CHILD_USER, user.id.to_string())
            .env(CHILD_CONVERSATION, conversation.id.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the child starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut words = line.split_whitespace();
                if words.next() != Some("ACK") {
                    continue;
                }
                let seq: u64 = words.next().unwrap().parse().unwrap();
                let id: MessageId = words.next().unwrap().parse().unwrap();
                if tx.send((id, seq)).is_err() {
                    break;
                }
            }
        });
        let mut this_round = 0;
        while this_round < ACKS_BEFORE_KILL {
            let (id, seq) = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("round {round}: the child stopped acknowledging"));
            acked.insert(id, seq);
            this_round += 1;
        }
        // Child::kill sends SIGKILL: no destructor, no flush, no goodbye.
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        // What was printed before the kill is still in the pipe: acknowledged too.
        acked.extend(rx.try_iter());
    }

    runtime().block_on(async {
        let store = SledStore::open(&path).expect("the store opens after the kills");
        let mut found = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_messages(
                    conversation.id,
                    MessageOrder::Ascending { after },
                    Limit::MAX,
                )
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            found.extend(page);
        }
        let n = found.len() as u64;
        assert!(n >= acked.len() as u64, "{n} found, {} acked", acked.len());
        let seqs: Vec<u64> = found.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "seq must be gapless");
        let by_id: HashMap<MessageId, u64> = found.iter().map(|m| (m.id, m.seq)).collect();
        for (id, seq) in &acked {
            assert_eq!(
                by_id.get(id),
                Some(seq),
                "acknowledged message {id} (seq {seq}) is missing after the kill"
            );
        }
        let c = store
            .get_conversation(conversation.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            c.message_count, n,
            "message_count must match what is stored"
        );
        let next = store
            .append_message(MessageDraft {
                id: MessageId::new(),
                conversation_id: conversation.id,
                user_id: user.id,
                role: Role::User,
                content: "after".into(),
                metadata: None,
                created_at: time::now(),
            })
            .await
            .unwrap();
        assert_eq!(next.seq, n + 1, "seq continues after recovery");
    });
}
