//! The bodies of the [`concurrency`](super) cases, reachable only through the re-exports of
//! the one list of cases, so that a race left off the list fails the build (see
//! `cases/contract.rs`).
#![deny(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::task::JoinSet;

use super::{APPEND_TASKS, APPENDS_PER_TASK};
use crate::error::{Entity, Error};
use crate::store::{MessageOrder, Store};
use crate::testkit::fixtures::{
    attachment, config, conversation, draft, joined, new_user, ok, provider, user,
};
use crate::validation::Limit;

/// [`APPEND_TASKS`] tasks append [`APPENDS_PER_TASK`] messages each to one conversation:
/// every append succeeds, the `seq`s are exactly `1..=N`, every message can be read back and
/// listed, and `message_count` is `N`.
pub async fn concurrent_appends_are_gapless(store: Arc<dyn Store>) {
    crate::testkit::several_stores::appends_are_gapless(&[store], APPEND_TASKS, APPENDS_PER_TASK)
        .await;
}

/// Sixteen tasks register one name in different ASCII cases: exactly one wins and the rest
/// get `Conflict { User, "username" }`.
pub async fn concurrent_registrations_have_one_winner(store: Arc<dyn Store>) {
    let spellings = [
        "racer", "RACER", "Racer", "rAcEr", "RaCeR", "racER", "RACer", "rACER",
    ];
    let mut tasks = JoinSet::new();
    for i in 0..16 {
        let store = Arc::clone(&store);
        let u = user(spellings[i % spellings.len()]);
        tasks.spawn(async move {
            let result = store.create_user(&u).await;
            (u, result)
        });
    }
    let mut winners = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (u, result) = joined(done);
        match result {
            Ok(()) => winners.push(u),
            Err(Error::Conflict {
                entity: Entity::User,
                field: "username",
            }) => {}
            Err(other) => panic!(
                "a losing concurrent registration must be Conflict {{ User, \"username\" }}, got {other:?}"
            ),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 16 concurrent registrations of one name must win, {} did: {:?}",
        winners.len(),
        winners.iter().map(|u| &u.username).collect::<Vec<_>>()
    );
    let winner = winners.pop().expect("one winner");
    assert_eq!(
        ok(
            store.get_user_by_username("racer").await,
            "get_user_by_username"
        ),
        Some(winner),
        "the winner must be the user found by name"
    );
}

/// A conversation is deleted while tasks append to it and attach files to their messages:
/// afterwards nothing acknowledged survives as an orphan.
pub async fn delete_racing_appends_leaves_no_orphans(store: Arc<dyn Store>) {
    let u = new_user(&*store, "deleter").await;
    for round in 0..4 {
        let c = conversation(u.id, &format!("doomed {round}"));
        ok(store.create_conversation(&c).await, "create_conversation");
        let appended = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..8 {
            let store = Arc::clone(&store);
            let c = c.clone();
            let appended = Arc::clone(&appended);
            tasks.spawn(async move {
                let mut messages = Vec::new();
                let mut attachments = Vec::new();
                for _ in 0..200 {
                    match store.append_message(draft(&c, "racing")).await {
                        Ok(m) => {
                            appended.fetch_add(1, Ordering::SeqCst);
                            messages.push(m.id);
                            let a = attachment(&m);
                            match store.create_attachment(&a).await {
                                Ok(()) => attachments.push(a.id),
                                Err(Error::NotFound(Entity::Message)) => {}
                                Err(other) => panic!(
                                    "create_attachment racing a delete must succeed or be NotFound(Message), got {other:?}"
                                ),
                            }
                        }
                        Err(Error::NotFound(Entity::Conversation)) => break,
                        Err(other) => panic!(
                            "append_message racing a delete must succeed or be NotFound(Conversation), got {other:?}"
                        ),
                    }
                    tokio::task::yield_now().await;
                }
                (messages, attachments)
            });
        }
        // Let the appenders get going, then delete under their feet. (Give up waiting
        // after a while: if the appenders fail, joining them below says why.)
        let start = std::time::Instant::now();
        while appended.load(Ordering::SeqCst) < 4 + 4 * round
            && start.elapsed() < std::time::Duration::from_secs(10)
        {
            tokio::time::sleep(std::time::Duration::from_micros(200)).await;
        }
        assert!(
            ok(store.delete_conversation(c.id).await, "delete_conversation"),
            "deleting the conversation must answer true"
        );
        let mut messages = Vec::new();
        let mut attachments = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (m, a) = joined(done);
            messages.extend(m);
            attachments.extend(a);
        }
        assert_eq!(
            ok(store.get_conversation(c.id).await, "get_conversation"),
            None,
            "the deleted conversation must stay deleted"
        );
        for id in &messages {
            assert_eq!(
                ok(store.get_message(*id).await, "get_message"),
                None,
                "a message appended while its conversation was deleted survived the delete"
            );
            assert!(
                ok(
                    store.list_attachments(*id, None, Limit::MAX).await,
                    "list_attachments"
                )
                .is_empty(),
                "an attachment created while its conversation was deleted survived the delete"
            );
        }
        for id in &attachments {
            assert_eq!(
                ok(store.get_attachment(*id).await, "get_attachment"),
                None,
                "an attachment created while its conversation was deleted survived the delete"
            );
        }
        for order in [
            MessageOrder::Ascending { after: None },
            MessageOrder::Descending { before: None },
        ] {
            assert!(
                ok(
                    store.list_messages(c.id, order, Limit::MAX).await,
                    "list_messages"
                )
                .is_empty(),
                "a deleted conversation must list no messages"
            );
        }
    }
}

/// Sixteen tasks create a config for one (user, provider), each with its own id: exactly
/// one wins and the rest get `Conflict { Config, "provider_id" }`.
pub async fn concurrent_config_creations_have_one_winner(store: Arc<dyn Store>) {
    let u = new_user(&*store, "configurer").await;
    let p = provider(None, "contested");
    ok(store.create_provider(&p).await, "create_provider");
    let mut tasks = JoinSet::new();
    for i in 0..16u8 {
        let store = Arc::clone(&store);
        let mut c = config(u.id, p.id);
        c.sealed_key.0.push(i);
        tasks.spawn(async move {
            let result = store.create_config(&c).await;
            (c, result)
        });
    }
    let mut winners = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (c, result) = joined(done);
        match result {
            Ok(()) => winners.push(c),
            Err(Error::Conflict {
                entity: Entity::Config,
                field: "provider_id",
            }) => {}
            Err(other) => panic!(
                "a losing concurrent create_config must be Conflict {{ Config, \"provider_id\" }}, got {other:?}"
            ),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 16 concurrent create_config for one user and provider must win, {} did",
        winners.len()
    );
    let winner = winners.pop().expect("one winner");
    assert_eq!(
        ok(store.get_config(u.id, p.id).await, "get_config"),
        Some(winner),
        "the winner must be the stored config"
    );
}

/// Logins (`create_session`) race `set_user_disabled`: each login either ends before the
/// disable and its session is removed with the others, or is refused with
/// `Forbidden(UserDisabled)`. Afterwards the user has no session at all, by token or in a
/// scan.
pub async fn disable_racing_logins_leaves_no_session(store: Arc<dyn Store>) {
    use crate::error::Forbidden;
    use crate::records::{Record, RecordKind};
    use crate::testkit::cases::scan_all;
    use crate::testkit::fixtures::{at, session};

    for round in 0..8 {
        let u = new_user(&*store, &format!("disable_race_{round}")).await;
        let mut tasks = JoinSet::new();
        for i in 0..24 {
            let store = Arc::clone(&store);
            let s = session(u.id, at(3600));
            tasks.spawn(async move {
                if i == 12 {
                    let disabled = store.set_user_disabled(s.user_id, true).await;
                    assert!(
                        matches!(disabled, Ok(true)),
                        "set_user_disabled: expected Ok(true), got {disabled:?}"
                    );
                    return None;
                }
                let result = store.create_session(&s).await;
                match result {
                    Ok(()) => Some(s),
                    Err(Error::Forbidden(Forbidden::UserDisabled)) => None,
                    Err(other) => panic!(
                        "a login racing a disable must succeed or be Forbidden(UserDisabled), got {other:?}"
                    ),
                }
            });
        }
        let mut created = Vec::new();
        while let Some(done) = tasks.join_next().await {
            created.extend(joined(done));
        }
        for s in &created {
            let found = ok(store.get_session(&s.token_hash).await, "get_session");
            assert_eq!(
                found, None,
                "a session created by a login racing the disable survived it"
            );
        }
        let left: Vec<Record> = scan_all(&*store, RecordKind::Session, 1000)
            .await
            .into_iter()
            .filter(|r| matches!(r, Record::Session(s) if s.user_id == u.id))
            .collect();
        assert!(
            left.is_empty(),
            "sessions of a disabled user remain: {left:?}"
        );
    }
}
