//! Work a store does in batches, tried beyond one batch: a store that deletes a bounded
//! number of rows per transaction and stops after the first passes every smaller case.
//!
//! The sizes exceed the largest batch of any store in this workspace (1,000 in the sled
//! store's session expiry and purge) more than twice. The records are written by
//! concurrent tasks so that a store that commits each write durably stays quick.
#![deny(dead_code)]

use std::sync::Arc;

use crate::error::{Entity, Error};
use crate::model::{Attachment, Message, Session};
use crate::store::{MessageOrder, Store};
use crate::testkit::fixtures::{
    all_messages, append_many, at, attachment, conversation, draft, new_user, ok, session,
    write_many,
};
use crate::validation::Limit;

/// How many expired sessions [`expired_sessions_beyond_one_batch`] sweeps.
pub const EXPIRED_SESSIONS: usize = 2_500;
/// How many messages the conversation of [`deleted_conversation_beyond_one_purge_batch`]
/// holds.
pub const PURGED_MESSAGES: usize = 2_500;
/// How many of those messages have an attachment.
pub const PURGED_ATTACHMENTS: usize = 2_100;
/// How many tasks write the records of a big case.
const WRITERS: usize = 16;

/// `delete_expired_sessions` removes [`EXPIRED_SESSIONS`] expired sessions in one call and
/// counts them all, while the live sessions among them stay.
pub async fn expired_sessions_beyond_one_batch(store: Arc<dyn Store>) {
    let u = new_user(&*store, "many_sessions").await;
    let now = at(0);
    let expired: Vec<Session> = (0..EXPIRED_SESSIONS)
        .map(|i| session(u.id, at(-(i as i64) % 86_400)))
        .collect();
    let live: Vec<Session> = (1..=100).map(|i| session(u.id, at(i))).collect();
    let all: Vec<Session> = expired.iter().chain(&live).cloned().collect();
    write_many(&store, all, WRITERS, |store, s| async move {
        ok(store.create_session(&s).await, "create_session");
    })
    .await;
    assert_eq!(
        ok(
            store.delete_expired_sessions(now).await,
            "delete_expired_sessions"
        ),
        EXPIRED_SESSIONS as u64,
        "delete_expired_sessions must remove and count all {EXPIRED_SESSIONS} expired \
         sessions in one call, not one batch of them"
    );
    // Counted rather than asserted one by one, so that the message says how many stayed.
    let mut left = Vec::new();
    for s in &expired {
        if ok(store.get_session(&s.token_hash).await, "get_session").is_some() {
            left.push(s.expires_at);
        }
    }
    assert!(
        left.is_empty(),
        "one sweep at {now} left {} of {EXPIRED_SESSIONS} expired sessions (the first expired \
         at {:?}): it must remove them all, however many there are",
        left.len(),
        left.first()
    );
    let mut gone = 0;
    for s in &live {
        let found = ok(store.get_session(&s.token_hash).await, "get_session");
        gone += usize::from(found.as_ref() != Some(s));
    }
    assert_eq!(
        gone,
        0,
        "{gone} of {} live sessions did not survive the sweep of {EXPIRED_SESSIONS} at {now}",
        live.len()
    );
    assert_eq!(
        ok(
            store.delete_expired_sessions(now).await,
            "delete_expired_sessions"
        ),
        0,
        "a second sweep at the same time finds nothing"
    );
}

/// A conversation of [`PURGED_MESSAGES`] messages, [`PURGED_ATTACHMENTS`] of them with an
/// attachment, is deleted: nothing of it answers through any read path, not even once a
/// conversation of the same id exists again, while a conversation beside it keeps all.
pub async fn deleted_conversation_beyond_one_purge_batch(store: Arc<dyn Store>) {
    let u = new_user(&*store, "big_purge").await;
    let doomed = conversation(u.id, "doomed");
    let kept = conversation(u.id, "kept");
    for c in [&doomed, &kept] {
        ok(store.create_conversation(c).await, "create_conversation");
    }
    let messages = append_many(&store, &doomed, PURGED_MESSAGES, WRITERS).await;
    let attachments: Vec<Attachment> = messages
        .iter()
        .take(PURGED_ATTACHMENTS)
        .map(attachment)
        .collect();
    write_many(
        &store,
        attachments.clone(),
        WRITERS,
        |store, a| async move {
            ok(store.create_attachment(&a).await, "create_attachment");
        },
    )
    .await;
    let kept_messages = append_many(&store, &kept, 3, 1).await;
    let kept_attachment = attachment(&kept_messages[0]);
    ok(
        store.create_attachment(&kept_attachment).await,
        "create_attachment",
    );

    assert!(
        ok(
            store.delete_conversation(doomed.id).await,
            "delete_conversation"
        ),
        "deleting an existing conversation must answer true"
    );
    assert_gone(
        &*store,
        &doomed,
        &messages,
        &attachments,
        "after the delete",
    )
    .await;

    // A conversation of the same id again: whatever a purge left under that id shows now.
    ok(
        store.create_conversation(&doomed).await,
        "create_conversation with the id of a deleted conversation",
    );
    assert_gone(
        &*store,
        &doomed,
        &messages,
        &attachments,
        "once a conversation of the same id exists again",
    )
    .await;
    for m in messages.iter().step_by(97) {
        let mut d = draft(&kept, "id used again");
        d.id = m.id;
        ok(
            store.append_message(d).await,
            "append_message with the id of a purged message",
        );
    }
    assert_eq!(
        ok(store.get_conversation(kept.id).await, "get_conversation").map(|c| c.message_count),
        Some((3 + PURGED_MESSAGES.div_ceil(97)) as u64),
        "the conversation beside the deleted one must count its own messages only"
    );
    assert_eq!(
        ok(
            store.get_attachment(kept_attachment.id).await,
            "get_attachment"
        ),
        Some(kept_attachment),
        "deleting a conversation must leave the attachments of others"
    );
}

/// Asserts that nothing of `doomed`'s `messages` and `attachments` answers, through every
/// read that could reach them.
async fn assert_gone(
    store: &dyn Store,
    doomed: &crate::model::Conversation,
    messages: &[Message],
    attachments: &[Attachment],
    when: &str,
) {
    let listed = all_messages(store, doomed.id).await;
    assert!(
        listed.is_empty(),
        "{when}: list_messages answered {} messages of a deleted conversation of {} (the \
         first seq {:?})",
        listed.len(),
        messages.len(),
        listed.first().map(|m| m.seq)
    );
    let newest = ok(
        store
            .list_messages(
                doomed.id,
                MessageOrder::Descending { before: None },
                Limit::MAX,
            )
            .await,
        "list_messages",
    );
    assert!(
        newest.is_empty(),
        "{when}: list_messages, newest first, answered {} messages of a deleted conversation",
        newest.len()
    );
    if let Some(c) = ok(store.get_conversation(doomed.id).await, "get_conversation") {
        assert_eq!(
            c.message_count, 0,
            "{when}: a conversation of a deleted one's id must count none of its messages"
        );
    }
    let mut answered = 0usize;
    let mut first = None;
    for m in messages {
        if ok(store.get_message(m.id).await, "get_message").is_some() {
            answered += 1;
            first.get_or_insert(m.seq);
        }
    }
    assert_eq!(
        answered,
        0,
        "{when}: get_message still answered {answered} of the {} messages of a deleted \
         conversation (the first at seq {first:?})",
        messages.len()
    );
    let mut answered = 0usize;
    for a in attachments {
        if ok(store.get_attachment(a.id).await, "get_attachment").is_some()
            || !ok(
                store.list_attachments(a.message_id, None, Limit::MAX).await,
                "list_attachments",
            )
            .is_empty()
        {
            answered += 1;
        }
    }
    assert_eq!(
        answered,
        0,
        "{when}: get_attachment or list_attachments still answered for {answered} of the {} \
         attachments of a deleted conversation",
        attachments.len()
    );
    if ok(store.get_conversation(doomed.id).await, "get_conversation").is_none() {
        match store.append_message(draft(doomed, "too late")).await {
            Err(Error::NotFound(Entity::Conversation)) => {}
            other => panic!(
                "{when}: append_message to a deleted conversation must be \
                 NotFound(Conversation), got {other:?}"
            ),
        }
    }
}
