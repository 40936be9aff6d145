//! What a delete leaves behind in the indexes a store keeps beside its records: after a
//! provider or a conversation is gone, no index may still answer for what it held. Each
//! case deletes, then uses every id and name that was freed again: a lookup that still
//! answers, or a create refused as a conflict, is a stale index entry.
#![deny(dead_code)]

use crate::error::Entity;
use crate::model::{Attachment, Message};
use crate::store::Store;
use crate::testkit::fixtures::{
    all_messages, attachment, config, conversation, draft, expect_not_found, new_user, ok, provider,
};
use crate::validation::Limit;

/// After `delete_provider`, its id, its name and its configs' ids are free: a provider
/// created again with the same id and name has no configs, a config of the same id can be
/// created for it, and the deleted provider's configs answer nowhere.
pub async fn deleted_provider_leaves_no_index_answering(store: &dyn Store) {
    let a = new_user(store, "stale_a").await;
    let b = new_user(store, "stale_b").await;
    for owner in [None, Some(a.id)] {
        let p = provider(owner, "Reused Name");
        ok(store.create_provider(&p).await, "create_provider");
        let configs = [config(a.id, p.id), config(b.id, p.id)];
        for c in &configs {
            ok(store.create_config(c).await, "create_config");
        }
        assert!(
            ok(store.delete_provider(p.id).await, "delete_provider"),
            "deleting an existing provider must answer true"
        );
        for c in &configs {
            assert!(
                !ok(store.delete_config(c.user_id, p.id).await, "delete_config"),
                "delete_config for a deleted provider's config must answer false: no index \
                 may still hold it"
            );
            assert_eq!(
                ok(
                    store
                        .update_config(c.user_id, p.id, c.sealed_key.clone(), None, c.updated_at)
                        .await,
                    "update_config"
                ),
                None,
                "update_config for a deleted provider's config must find nothing"
            );
        }
        expect_not_found(
            store.create_config(&configs[0]).await,
            Entity::Provider,
            "create_config for the deleted provider",
        );
        // The same id and name again: a new provider, with nothing of the old one's.
        ok(
            store.create_provider(&p).await,
            "create_provider with the id and name of a deleted provider",
        );
        for c in &configs {
            assert_eq!(
                ok(store.get_config(c.user_id, p.id).await, "get_config"),
                None,
                "a provider created again with a deleted provider's id must have none of \
                 the deleted one's configs"
            );
        }
        ok(
            store.create_config(&configs[0]).await,
            "create_config with the id of a config that went with its provider",
        );
        assert_eq!(
            ok(store.get_config(a.id, p.id).await, "get_config").as_ref(),
            Some(&configs[0]),
            "the config created again must read back"
        );
        let visible = ok(
            store.list_providers(a.id, None, Limit::MAX).await,
            "list_providers",
        );
        assert_eq!(
            visible.iter().filter(|q| q.id == p.id).count(),
            1,
            "list_providers must list the provider created again once: {visible:?}"
        );
        ok(store.delete_provider(p.id).await, "delete_provider");
    }
}

/// After `delete_conversation`, the ids of its messages and attachments are free: they can
/// be used again in another conversation, where they answer for the new records only; and
/// a conversation created again with the deleted one's id starts empty.
pub async fn purged_conversation_leaves_no_index_answering(store: &dyn Store) {
    let u = new_user(store, "purged").await;
    let doomed = conversation(u.id, "doomed");
    ok(
        store.create_conversation(&doomed).await,
        "create_conversation",
    );
    let mut messages: Vec<Message> = Vec::new();
    let mut attachments: Vec<Attachment> = Vec::new();
    for i in 0..5 {
        let m = ok(
            store
                .append_message(draft(&doomed, &format!("old {i}")))
                .await,
            "append_message",
        );
        let a = attachment(&m);
        ok(store.create_attachment(&a).await, "create_attachment");
        messages.push(m);
        attachments.push(a);
    }
    assert!(
        ok(
            store.delete_conversation(doomed.id).await,
            "delete_conversation"
        ),
        "deleting an existing conversation must answer true"
    );
    let other = conversation(u.id, "elsewhere");
    ok(
        store.create_conversation(&other).await,
        "create_conversation",
    );
    for (old, old_attachment) in messages.iter().zip(&attachments) {
        let mut d = draft(&other, "new");
        d.id = old.id;
        let new = ok(
            store.append_message(d).await,
            "append_message with the id of a message of a deleted conversation",
        );
        assert_eq!(
            ok(store.get_message(old.id).await, "get_message").as_ref(),
            Some(&new),
            "get_message must answer the message that now has the id, not the purged one"
        );
        let mut a = attachment(&new);
        a.id = old_attachment.id;
        ok(
            store.create_attachment(&a).await,
            "create_attachment with the id of an attachment of a deleted conversation",
        );
        assert_eq!(
            ok(store.get_attachment(a.id).await, "get_attachment"),
            Some(a),
            "get_attachment must answer the attachment that now has the id"
        );
    }
    // The deleted conversation's id again: a new, empty conversation.
    ok(
        store.create_conversation(&doomed).await,
        "create_conversation with the id of a deleted conversation",
    );
    assert_eq!(
        all_messages(store, doomed.id).await,
        Vec::new(),
        "a conversation created again with a deleted one's id must hold none of its messages"
    );
    let first = ok(
        store.append_message(draft(&doomed, "first again")).await,
        "append_message",
    );
    assert_eq!(
        ok(store.get_conversation(doomed.id).await, "get_conversation").map(|c| c.message_count),
        Some(1),
        "a conversation created again with a deleted one's id counts only its own messages"
    );
    assert_eq!(
        all_messages(store, doomed.id).await,
        vec![first],
        "a conversation created again with a deleted one's id lists only its own messages"
    );
}
