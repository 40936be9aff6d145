//! The case for stores whose commits can be made to fail: an answer follows the commit.
//!
//! A store that hands back a row as soon as its statement produced one, and commits after,
//! acknowledges writes that a failed commit then threw away; on a full disk that is every
//! write. A [`CommitFaultFactory`] can make a store's commits fail *after* the statements of
//! a write succeeded (a deferred constraint, a commit hook), which is where such a store is
//! caught. [`store_fault_tests!`](crate::store_fault_tests) runs the case.

use std::future::Future;

use chrono::Duration;

use super::StoreFactory;
use super::fixtures::{at, attachment, config, conversation, draft, ok, provider, session, user};
use crate::error::Result;
use crate::model::Message;
use crate::secrets::SealedKey;
use crate::store::{MessageOrder, Store};
use crate::time;
use crate::validation::Limit;

/// A [`StoreFactory`] whose stores' commits can be made to fail.
pub trait CommitFaultFactory: StoreFactory {
    /// From now on, the commit of every write to the store made with `guard` fails
    /// (`fail == true`) after the write's statements succeeded, as a full disk fails it; or
    /// commits succeed again (`fail == false`).
    fn fail_commits(&self, guard: &Self::Guard, fail: bool) -> impl Future<Output = ()>;
}

/// Asserts that `result` is an error: a write whose commit failed must not answer `Ok`.
#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    assert!(
        result.is_err(),
        "{what}: its commit failed, yet it answered {result:?}"
    );
}

/// Makes one of everything, makes commits fail, tries every kind of write (each must be an
/// error), lets commits succeed again, and checks that nothing of the refused writes is
/// visible and that `seq` goes on from the last acknowledged append.
///
/// # Panics
///
/// When a write whose commit failed answers `Ok`, or leaves anything behind.
pub async fn writes_whose_commit_fails_are_refused<F: CommitFaultFactory>(factory: &F) {
    let (store, guard) = factory.create().await;
    let s: &dyn Store = &store;

    let alice = user("alice");
    ok(s.create_user(&alice).await, "create_user");
    let live = session(alice.id, time::now() + Duration::days(1));
    ok(s.create_session(&live).await, "create_session");
    let conv = conversation(alice.id, "kept");
    ok(s.create_conversation(&conv).await, "create_conversation");
    let first: Message = ok(s.append_message(draft(&conv, "first")).await, "append");
    let att = attachment(&first);
    ok(s.create_attachment(&att).await, "create_attachment");
    let own = provider(Some(alice.id), "Own");
    ok(s.create_provider(&own).await, "create_provider");
    let cfg = config(alice.id, own.id);
    ok(s.create_config(&cfg).await, "create_config");
    let before = ok(s.get_conversation(conv.id).await, "get_conversation").expect("stored");

    factory.fail_commits(&guard, true).await;

    let bob = user("bob");
    refused(s.create_user(&bob).await, "create_user");
    let other_session = session(alice.id, time::now() + Duration::days(1));
    refused(s.create_session(&other_session).await, "create_session");
    refused(s.delete_session(&live.token_hash).await, "delete_session");
    let other_conv = conversation(alice.id, "refused");
    refused(
        s.create_conversation(&other_conv).await,
        "create_conversation",
    );
    refused(
        s.rename_conversation(conv.id, "renamed", at(100)).await,
        "rename_conversation",
    );
    let lost = draft(&conv, "lost");
    refused(s.append_message(lost.clone()).await, "append_message");
    let mut other_att = attachment(&first);
    other_att.file_path = "refused.txt".into();
    refused(s.create_attachment(&other_att).await, "create_attachment");
    refused(s.delete_attachment(att.id).await, "delete_attachment");
    refused(s.delete_message(first.id, at(101)).await, "delete_message");
    let other_provider = provider(Some(alice.id), "Refused");
    refused(s.create_provider(&other_provider).await, "create_provider");
    let shared = provider(None, "Shared");
    refused(s.create_provider(&shared).await, "create_provider (shared)");
    refused(
        s.update_config(
            alice.id,
            own.id,
            SealedKey(vec![9, 9, 9]),
            Some("…9999".into()),
            at(102),
        )
        .await,
        "update_config",
    );
    refused(s.delete_config(alice.id, own.id).await, "delete_config");
    refused(s.delete_provider(own.id).await, "delete_provider");
    refused(s.delete_conversation(conv.id).await, "delete_conversation");

    factory.fail_commits(&guard, false).await;

    // Nothing refused is visible.
    assert_eq!(
        ok(s.get_user(bob.id).await, "get_user"),
        None,
        "refused user"
    );
    assert_eq!(
        ok(s.get_user_by_username("bob").await, "get_user_by_username"),
        None,
        "refused user, by name"
    );
    assert_eq!(
        ok(
            s.get_session(&other_session.token_hash).await,
            "get_session"
        ),
        None,
        "refused session"
    );
    assert_eq!(
        ok(s.get_session(&live.token_hash).await, "get_session"),
        Some(live.clone()),
        "a session whose delete was refused"
    );
    assert_eq!(
        ok(s.get_conversation(other_conv.id).await, "get_conversation"),
        None,
        "refused conversation"
    );
    assert_eq!(
        ok(s.get_conversation(conv.id).await, "get_conversation"),
        Some(before.clone()),
        "a conversation whose rename, append, message delete and delete were refused"
    );
    assert_eq!(
        ok(s.get_message(lost.id).await, "get_message"),
        None,
        "refused append"
    );
    let messages = ok(
        s.list_messages(conv.id, MessageOrder::default(), Limit::MAX)
            .await,
        "list_messages",
    );
    assert_eq!(messages, vec![first.clone()], "messages after refusals");
    assert_eq!(
        ok(s.list_attachments(first.id, None, Limit::MAX).await, "list"),
        vec![att.clone()],
        "attachments after refusals"
    );
    assert_eq!(
        ok(s.get_provider(other_provider.id).await, "get_provider"),
        None,
        "refused provider"
    );
    assert_eq!(
        ok(s.get_provider(shared.id).await, "get_provider"),
        None,
        "refused shared provider"
    );
    assert_eq!(
        ok(s.get_provider(own.id).await, "get_provider"),
        Some(own.clone()),
        "a provider whose delete was refused"
    );
    assert_eq!(
        ok(s.get_config(alice.id, own.id).await, "get_config"),
        Some(cfg.clone()),
        "a config whose update and delete were refused"
    );

    // Writes work again, and seq goes on from the last acknowledged append.
    let next = ok(s.append_message(draft(&conv, "next")).await, "append");
    assert_eq!(next.seq, first.seq + 1, "a refused append took a seq");
    ok(s.create_user(&bob).await, "create_user after the fault");

    factory.destroy(store, guard).await;
}
