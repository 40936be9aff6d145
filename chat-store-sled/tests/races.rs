//! Races particular to this store: cascades whose keys are gathered before their
//! transaction, against writers that keep adding.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chat_core::{
    Attachment, AttachmentId, Conversation, ConversationId, Entity, Error, Limit, Message,
    MessageDraft, MessageId, MessageOrder, PasswordHash, Role, Store, User, UserId, time,
};
use chat_store_sled::SledStore;

fn user() -> User {
    User {
        id: UserId::new(),
        username: format!("u{}", UserId::new().to_string().replace('-', "")),
        email: None,
        password_hash: PasswordHash("x".into()),
        created_at: time::now(),
    }
}

fn conversation(user: UserId) -> Conversation {
    let now = time::now();
    Conversation {
        id: ConversationId::new(),
        user_id: user,
        title: "t".into(),
        created_at: now,
        updated_at: now,
        message_count: 0,
    }
}

fn draft(c: &Conversation) -> MessageDraft {
    MessageDraft {
        id: MessageId::new(),
        conversation_id: c.id,
        user_id: c.user_id,
        role: Role::User,
        content: "hello".into(),
        metadata: None,
        created_at: time::now(),
    }
}

fn attachment(m: &Message) -> Attachment {
    Attachment {
        id: AttachmentId::new(),
        message_id: m.id,
        conversation_id: m.conversation_id,
        user_id: m.user_id,
        file_type: "pdf".into(),
        file_path: "a.pdf".into(),
        created_at: time::now(),
    }
}

/// A big conversation (so gathering its keys takes a while) is deleted while eight tasks
/// append to it and add attachments: whatever was acknowledged is gone afterwards, and
/// nothing is added after the delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_busy_conversation_leaves_no_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let u = user();
    store.create_user(&u).await.unwrap();
    let c = conversation(u.id);
    store.create_conversation(&c).await.unwrap();
    let seeded: Vec<Message> = (1..=3000).map(|seq| draft(&c).with_seq(seq)).collect();
    store.bench_bulk_append(c.id, &seeded).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let c = c.clone();
        let stop = Arc::clone(&stop);
        writers.push(tokio::spawn(async move {
            let mut acked_messages = Vec::new();
            let mut acked_attachments = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match store.append_message(draft(&c)).await {
                    Ok(m) => {
                        match store.create_attachment(&attachment(&m)).await {
                            Ok(()) => acked_attachments.push(m.id),
                            Err(Error::NotFound(Entity::Message)) => {}
                            Err(e) => panic!("create_attachment: {e}"),
                        }
                        acked_messages.push(m.id);
                    }
                    Err(Error::NotFound(Entity::Conversation)) => break,
                    Err(e) => panic!("append_message: {e}"),
                }
            }
            (acked_messages, acked_attachments)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(store.delete_conversation(c.id).await.unwrap());
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        let (messages, _) = w.await.unwrap();
        acked.extend(messages);
    }
    assert!(
        !acked.is_empty(),
        "the writers should have got some appends in"
    );
    let left = store
        .list_messages(c.id, MessageOrder::default(), Limit::MAX)
        .await
        .unwrap();
    assert!(
        left.is_empty(),
        "{} messages outlived their conversation",
        left.len()
    );
    for id in acked.iter().chain(seeded.iter().map(|m| &m.id).take(10)) {
        assert_eq!(store.get_message(*id).await.unwrap(), None);
        assert!(
            store
                .list_attachments(*id, None, Limit::MAX)
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert!(matches!(
        store.append_message(draft(&c)).await,
        Err(Error::NotFound(Entity::Conversation))
    ));
}

// The race of attachments against their message's delete lives in the shared kit now
// (`attachments_racing_their_messages_delete_leave_no_orphans`), so every store runs it.
