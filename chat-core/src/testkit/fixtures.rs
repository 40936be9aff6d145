//! Records for the cases: complete, valid, and easy to vary.

use std::fmt::Debug;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use tokio::task::JoinError;

use crate::error::{Entity, Error, Result};
use crate::ids::{
    AttachmentId, ConfigId, ConversationId, MessageId, ProviderId, SessionId, UserId,
};
use crate::model::{
    Attachment, Conversation, LlmProvider, Message, MessageDraft, PasswordHash, Role, Session,
    TokenHash, User, UserLlmConfig,
};
use crate::secrets::SealedKey;
use crate::store::Store;
use crate::time;

/// A fixed instant with a full six digits of microseconds, plus `secs` seconds.
pub(crate) fn at(secs: i64) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2026, 11, 26, 12, 34, 56)
        .single()
        .expect("a valid date")
        + chrono::Duration::microseconds(123_456);
    base + chrono::Duration::seconds(secs)
}

pub(crate) fn password_hash() -> PasswordHash {
    PasswordHash(
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4"
            .to_owned(),
    )
}

pub(crate) fn user(name: &str) -> User {
    User {
        id: UserId::new(),
        username: name.to_owned(),
        email: Some(format!("{name}@example.com")),
        password_hash: password_hash(),
        created_at: time::now(),
    }
}

/// A user, stored.
pub(crate) async fn new_user(store: &dyn Store, name: &str) -> User {
    let u = user(name);
    ok(store.create_user(&u).await, "create_user");
    u
}

pub(crate) fn token() -> TokenHash {
    TokenHash(rand::random())
}

pub(crate) fn session(user: UserId, expires_at: DateTime<Utc>) -> Session {
    Session {
        id: SessionId::new(),
        user_id: user,
        token_hash: token(),
        created_at: at(0),
        expires_at,
    }
}

pub(crate) fn conversation(user: UserId, title: &str) -> Conversation {
    let now = time::now();
    Conversation {
        id: ConversationId::new(),
        user_id: user,
        title: title.to_owned(),
        created_at: now,
        updated_at: now,
        message_count: 0,
    }
}

pub(crate) fn draft(conversation: &Conversation, content: &str) -> MessageDraft {
    MessageDraft {
        id: MessageId::new(),
        conversation_id: conversation.id,
        user_id: conversation.user_id,
        role: Role::User,
        content: content.to_owned(),
        metadata: None,
        created_at: time::now(),
    }
}

pub(crate) fn attachment(message: &Message) -> Attachment {
    Attachment {
        id: AttachmentId::new(),
        message_id: message.id,
        conversation_id: message.conversation_id,
        user_id: message.user_id,
        file_type: "image/png".to_owned(),
        file_path: "uploads/photo.png".to_owned(),
        created_at: time::now(),
    }
}

pub(crate) fn provider(owner: Option<UserId>, name: &str) -> LlmProvider {
    LlmProvider {
        id: ProviderId::new(),
        owner_id: owner,
        name: name.to_owned(),
        api_endpoint: "https://llm.example.com/v1".to_owned(),
        created_at: time::now(),
    }
}

pub(crate) fn config(user: UserId, provider: ProviderId) -> UserLlmConfig {
    let now = time::now();
    UserLlmConfig {
        id: ConfigId::new(),
        user_id: user,
        provider_id: provider,
        sealed_key: SealedKey(vec![1, 0xde, 0xad, 0xbe, 0xef, 0, 255, 7]),
        api_key_hint: Some("…cdef".to_owned()),
        created_at: now,
        updated_at: now,
    }
}

/// The value of a joined task, or its panic, passed on as it was so that its message
/// reaches the test's output.
pub(crate) fn joined<T>(result: std::result::Result<T, JoinError>) -> T {
    match result {
        Ok(value) => value,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => panic!("a task of the case did not finish: {err}"),
    }
}

/// Unwraps `result`, naming the operation when it failed.
#[track_caller]
pub(crate) fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what}: expected Ok, got the error {err:?} ({err})"),
    }
}

/// Asserts that `result` is `Error::NotFound(entity)`.
#[track_caller]
pub(crate) fn expect_not_found<T: Debug>(result: Result<T>, entity: Entity, what: &str) {
    match result {
        Err(Error::NotFound(e)) if e == entity => {}
        other => panic!("{what}: expected Err(NotFound({entity:?})), got {other:?}"),
    }
}

/// Asserts that `result` is `Error::Conflict` on `entity` and `field`.
#[track_caller]
pub(crate) fn expect_conflict<T: Debug>(
    result: Result<T>,
    entity: Entity,
    field: &str,
    what: &str,
) {
    match result {
        Err(Error::Conflict {
            entity: e,
            field: f,
        }) if e == entity && f == field => {}
        other => panic!(
            "{what}: expected Err(Conflict {{ entity: {entity:?}, field: {field:?} }}), got {other:?}"
        ),
    }
}

/// Asserts that `result` is some `Error::Conflict` on `entity`, whichever field.
#[track_caller]
pub(crate) fn expect_any_conflict<T: Debug>(result: Result<T>, entity: Entity, what: &str) {
    match result {
        Err(Error::Conflict { entity: e, .. }) if e == entity => {}
        other => {
            panic!("{what}: expected Err(Conflict {{ entity: {entity:?}, .. }}), got {other:?}")
        }
    }
}

/// Every message of `conversation`, oldest first, read a page of [`Limit::MAX`] at a time.
pub(crate) async fn all_messages(store: &dyn Store, conversation: ConversationId) -> Vec<Message> {
    let mut all: Vec<Message> = Vec::new();
    loop {
        let after = all.last().map(|m| m.seq);
        let page = ok(
            store
                .list_messages(
                    conversation,
                    crate::store::MessageOrder::Ascending { after },
                    crate::validation::Limit::MAX,
                )
                .await,
            "list_messages",
        );
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Appends `n` messages to `conversation` from `tasks` concurrent tasks, and answers them
/// in `seq` order. Concurrent writers are how a big case stays quick on a store that
/// commits each write durably: their commits can share a flush.
pub(crate) async fn append_many(
    store: &Arc<dyn Store>,
    conversation: &Conversation,
    n: usize,
    tasks: usize,
) -> Vec<Message> {
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let store = Arc::clone(store);
        let c = conversation.clone();
        let share = n / tasks + usize::from(t < n % tasks);
        set.spawn(async move {
            let mut appended = Vec::with_capacity(share);
            for i in 0..share {
                let d = draft(&c, &format!("bulk {t}.{i}"));
                appended.push(ok(store.append_message(d).await, "append_message"));
            }
            appended
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(done) = set.join_next().await {
        all.extend(joined(done));
    }
    all.sort_by_key(|m| m.seq);
    all
}

/// Runs `write` for every item of `items` from `tasks` concurrent tasks; see [`append_many`].
pub(crate) async fn write_many<T, F, Fut>(
    store: &Arc<dyn Store>,
    items: Vec<T>,
    tasks: usize,
    write: F,
) where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let write = Arc::new(write);
    let mut shares: Vec<Vec<T>> = (0..tasks).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        shares[i % tasks].push(item);
    }
    let mut set = tokio::task::JoinSet::new();
    for share in shares {
        let store = Arc::clone(store);
        let write = Arc::clone(&write);
        set.spawn(async move {
            for item in share {
                write(Arc::clone(&store), item).await;
            }
        });
    }
    while let Some(done) = set.join_next().await {
        joined(done);
    }
}
