//! Store level: the stores' own calls in-process, beside the raw engine doing the same
//! work at the same durability.

mod sled;
pub use sled::fill as sled_fill;
mod sql;
pub use sql::sqlite_fill_conversation as sqlite_fill;

use std::sync::Arc;
use std::time::Instant;

use chat_core::{
    Conversation, ConversationId, Limit, MessageDraft, MessageId, MessageOrder, PasswordHash, Role,
    User, UserId, time,
};

use crate::report::Report;
use crate::{Scale, StoreKind};

/// Messages in the small conversation.
pub const SMALL: u64 = 1_000;
/// Messages per page.
pub const PAGE: u64 = 50;

/// Runs the store-level comparisons of `stores`.
pub async fn run(report: &mut Report, scale: &Scale, stores: &[StoreKind], postgres: Option<&str>) {
    for kind in stores {
        match kind {
            StoreKind::Sled => sled::run(report, scale).await,
            StoreKind::Sqlite => sql::sqlite(report, scale).await,
            StoreKind::Postgres => {
                if let Some(url) = postgres {
                    sql::postgres(report, scale, url).await;
                }
            }
        }
    }
}

/// A user with a unique name and a placeholder hash (nobody logs in as it).
pub fn user() -> User {
    User {
        id: UserId::new(),
        username: format!("bench{}", uuid::Uuid::now_v7().simple()),
        email: None,
        password_hash: PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at: time::now(),
    }
}

/// A new, empty conversation of `user`.
pub fn conversation(user: UserId) -> Conversation {
    let now = time::now();
    Conversation {
        id: ConversationId::new(),
        user_id: user,
        title: "bench".into(),
        created_at: now,
        updated_at: now,
        message_count: 0,
    }
}

/// The message the benchmark appends: a sentence of ordinary length.
pub fn draft(conversation: ConversationId, user: UserId, i: usize) -> MessageDraft {
    MessageDraft {
        id: MessageId::new(),
        conversation_id: conversation,
        user_id: user,
        role: Role::User,
        content: format!("benchmark message number {i}, a sentence of ordinary length"),
        metadata: None,
        created_at: time::now(),
    }
}

/// The two page reads measured: the newest page, and an `after` page from the middle.
pub fn page_orders(size: u64) -> [(&'static str, MessageOrder); 2] {
    [
        ("newest page", MessageOrder::Descending { before: None }),
        (
            "after page",
            MessageOrder::Ascending {
                after: Some(size / 2),
            },
        ),
    ]
}

/// The page size as a [`Limit`].
pub fn page_limit() -> Limit {
    Limit::new(PAGE).expect("a valid page size")
}

/// Runs `job(task, i)` for `per_task` values of `i` in each of `tasks` tasks at once;
/// answers operations per second.
pub async fn throughput<F, Fut>(tasks: usize, per_task: usize, job: F) -> f64
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let job = Arc::new(job);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let job = Arc::clone(&job);
        set.spawn(async move {
            for i in 0..per_task {
                job(t, i).await;
            }
        });
    }
    set.join_all().await;
    (tasks * per_task) as f64 / started.elapsed().as_secs_f64()
}

/// Mean microseconds of one call of `read`, over `reads` calls.
pub async fn micros(reads: usize, read: impl AsyncFn()) -> f64 {
    let started = Instant::now();
    for _ in 0..reads {
        read().await;
    }
    started.elapsed().as_secs_f64() * 1e6 / reads as f64
}
