//! Reads during deletes: the contract says no reader ever sees a half-done delete. These
//! cases poll a store while it deletes, and hold every answer to that.
#![deny(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::task::JoinSet;

use crate::error::{Entity, Error};
use crate::model::{Attachment, Conversation, Message};
use crate::store::{MessageOrder, Store};
use crate::testkit::fixtures::{
    all_messages, append_many, attachment, conversation, joined, new_user, ok, write_many,
};
use crate::time;
use crate::validation::Limit;

/// How many messages the conversation of
/// [`readers_never_see_messages_of_a_gone_conversation`] holds.
pub const DELETED_WHILE_READ: usize = 3_000;
/// How many messages [`message_count_brackets_listing_during_deletes`] deletes one by one.
pub const DELETED_ONE_BY_ONE: usize = 200;
/// How many tasks poll the store in these cases.
const READERS: usize = 3;

/// While a conversation of [`DELETED_WHILE_READ`] messages is deleted, readers poll it:
/// once `get_conversation` has answered `None`, no read that follows (`get_message`,
/// `list_messages` either way, `get_attachment`, `list_attachments`) answers anything of
/// it. A store that hides the conversation first and removes its messages afterwards must
/// hide them too.
pub async fn readers_never_see_messages_of_a_gone_conversation(store: Arc<dyn Store>) {
    let u = new_user(&*store, "watched").await;
    let c = conversation(u.id, "deleted while read");
    ok(store.create_conversation(&c).await, "create_conversation");
    let messages = Arc::new(append_many(&store, &c, DELETED_WHILE_READ, 16).await);
    let attachments: Vec<Attachment> = messages.iter().step_by(10).map(attachment).collect();
    write_many(&store, attachments.clone(), 16, |store, a| async move {
        ok(store.create_attachment(&a).await, "create_attachment");
    })
    .await;
    let attachments = Arc::new(attachments);

    let deleted = Arc::new(AtomicBool::new(false));
    let mut readers = JoinSet::new();
    for r in 0..READERS {
        let store = Arc::clone(&store);
        let messages = Arc::clone(&messages);
        let attachments = Arc::clone(&attachments);
        let deleted = Arc::clone(&deleted);
        let id = c.id;
        readers.spawn(async move {
            let mut polls = 0usize;
            loop {
                // Read before looking, so that the last round runs after the delete.
                let last = deleted.load(Ordering::SeqCst);
                let gone = ok(store.get_conversation(id).await, "get_conversation").is_none();
                let m = &messages[(polls * 7919 + r * 1009) % messages.len()];
                let a = &attachments[(polls * 131 + r) % attachments.len()];
                let message = ok(store.get_message(m.id).await, "get_message");
                let oldest = ok(
                    store
                        .list_messages(id, MessageOrder::Ascending { after: None }, Limit::MAX)
                        .await,
                    "list_messages",
                );
                let newest = ok(
                    store
                        .list_messages(id, MessageOrder::Descending { before: None }, Limit::MAX)
                        .await,
                    "list_messages",
                );
                let found = ok(store.get_attachment(a.id).await, "get_attachment");
                let listed = ok(
                    store.list_attachments(a.message_id, None, Limit::MAX).await,
                    "list_attachments",
                );
                if gone {
                    assert_eq!(
                        message.map(|m| m.seq),
                        None,
                        "get_message answered a message of a conversation that \
                         get_conversation had already answered None for, during a delete"
                    );
                    assert!(
                        oldest.is_empty() && newest.is_empty(),
                        "list_messages answered {} (oldest first) and {} (newest first) \
                         messages of a conversation that get_conversation had already \
                         answered None for, during a delete",
                        oldest.len(),
                        newest.len()
                    );
                    assert!(
                        found.is_none() && listed.is_empty(),
                        "get_attachment or list_attachments answered an attachment of a \
                         conversation that get_conversation had already answered None for, \
                         during a delete"
                    );
                }
                polls += 1;
                if last {
                    return polls;
                }
            }
        });
    }
    // Let the readers see the conversation whole a few times first.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(
        ok(store.delete_conversation(c.id).await, "delete_conversation"),
        "deleting an existing conversation must answer true"
    );
    deleted.store(true, Ordering::SeqCst);
    while let Some(done) = readers.join_next().await {
        assert!(joined(done) > 0, "every reader must have polled");
    }
}

/// While [`DELETED_ONE_BY_ONE`] messages are deleted one at a time, readers read
/// `message_count`, list every message, and read `message_count` again: the count before
/// ≥ the number listed ≥ the count after. A store whose count and rows change in two
/// steps (two statements outside a transaction) shows a count that disagrees with the
/// rows between them.
pub async fn message_count_brackets_listing_during_deletes(store: Arc<dyn Store>) {
    let u = new_user(&*store, "counted").await;
    let c = conversation(u.id, "shrinking");
    ok(store.create_conversation(&c).await, "create_conversation");
    let messages = append_many(&store, &c, DELETED_ONE_BY_ONE, 8).await;

    let done = Arc::new(AtomicBool::new(false));
    let mut readers = JoinSet::new();
    for _ in 0..READERS {
        let store = Arc::clone(&store);
        let done = Arc::clone(&done);
        let id = c.id;
        readers.spawn(async move {
            let mut polls = 0usize;
            loop {
                let last = done.load(Ordering::SeqCst);
                let before = count(&*store, id).await;
                let listed = all_messages(&*store, id).await.len() as u64;
                let after = count(&*store, id).await;
                assert!(
                    before >= listed && listed >= after,
                    "while messages were deleted one by one, message_count before \
                     ({before}) ≥ messages listed ({listed}) ≥ message_count after ({after}) \
                     must hold: the count and the rows must change together"
                );
                polls += 1;
                if last {
                    return polls;
                }
            }
        });
    }
    for m in &messages {
        assert!(
            ok(
                store.delete_message(m.id, time::now()).await,
                "delete_message"
            ),
            "deleting an existing message must answer true"
        );
    }
    done.store(true, Ordering::SeqCst);
    while let Some(finished) = readers.join_next().await {
        assert!(joined(finished) > 0, "every reader must have polled");
    }
    assert_eq!(count(&*store, c.id).await, 0, "every message was deleted");
}

async fn count(store: &dyn Store, id: crate::ids::ConversationId) -> u64 {
    ok(store.get_conversation(id).await, "get_conversation")
        .expect("the conversation is not deleted")
        .message_count
}

/// Attachments added while their message is deleted either fail with
/// `NotFound(Message)` or go with it: none outlives its message. Twenty rounds of four
/// tasks adding attachments to one message for as long as it exists, racing its delete,
/// which comes once they are under way.
pub async fn attachments_racing_their_messages_delete_leave_no_orphans(store: Arc<dyn Store>) {
    let u = new_user(&*store, "attacher").await;
    let c = conversation(u.id, "attached");
    ok(store.create_conversation(&c).await, "create_conversation");
    for _ in 0..20 {
        race_one_message(&store, &c).await;
    }
}

/// How many attachments each adder of a round tries at most.
const ADDS_PER_TASK: usize = 200;

async fn race_one_message(store: &Arc<dyn Store>, c: &Conversation) {
    let m: Message = append_many(store, c, 1, 1).await.remove(0);
    let added = Arc::new(AtomicUsize::new(0));
    let mut adders = JoinSet::new();
    for _ in 0..4 {
        let store = Arc::clone(store);
        let m = m.clone();
        let count = Arc::clone(&added);
        adders.spawn(async move {
            let mut added = Vec::new();
            for _ in 0..ADDS_PER_TASK {
                let a = attachment(&m);
                match store.create_attachment(&a).await {
                    Ok(()) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        added.push(a.id);
                    }
                    Err(Error::NotFound(Entity::Message)) => break,
                    Err(other) => panic!(
                        "create_attachment racing delete_message must succeed or be \
                         NotFound(Message), got {other:?}"
                    ),
                }
            }
            added
        });
    }
    // Delete once the adders are under way, so that some are mid-create when it lands.
    // (Give up waiting after a while: if the adders fail, joining them says why.)
    let start = std::time::Instant::now();
    while added.load(Ordering::SeqCst) < 2 && start.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_micros(100)).await;
    }
    assert!(
        ok(
            store.delete_message(m.id, time::now()).await,
            "delete_message"
        ),
        "deleting an existing message must answer true"
    );
    while let Some(done) = adders.join_next().await {
        for id in joined(done) {
            assert_eq!(
                ok(store.get_attachment(id).await, "get_attachment"),
                None,
                "an attachment created while its message was deleted outlived the message"
            );
        }
    }
    assert!(
        ok(
            store.list_attachments(m.id, None, Limit::MAX).await,
            "list_attachments"
        )
        .is_empty(),
        "list_attachments answered an attachment of a deleted message"
    );
}
