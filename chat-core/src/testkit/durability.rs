//! The durability case, for stores that can be opened again from where they keep data.
//!
//! [`survives_reopening`] writes one of everything through a store from a
//! [`ReopenableStoreFactory`], drops the store, opens it again with
//! [`reopen`](ReopenableStoreFactory::reopen) and reads every acknowledged write back.
//! [`store_tests!`](crate::store_tests) runs it when given `durable`.

use chrono::Duration;
use serde_json::json;

use super::ReopenableStoreFactory;
use super::fixtures::{at, attachment, config, conversation, draft, ok, provider, session, user};
use crate::model::Message;
use crate::secrets::SealedKey;
use crate::store::{MessageOrder, Store};
use crate::time;
use crate::validation::{Limit, Metadata};

/// Writes users, sessions, a conversation with messages and attachments, providers and a
/// config (with a rename, an update and deletes among them), drops the store, reopens it,
/// and checks that everything acknowledged is there, exactly, and that `seq` continues.
///
/// # Panics
///
/// When something acknowledged is missing or different after reopening.
pub async fn survives_reopening<F: ReopenableStoreFactory>(factory: &F) {
    let (store, guard) = factory.create().await;

    let mut alice = user("Alice");
    alice.email = None;
    let bob = user("bob");
    let live = session(alice.id, time::now() + Duration::days(1));
    let revoked = session(bob.id, time::now() + Duration::days(1));
    let mut conv = conversation(alice.id, "durable ✓");
    let mut messages: Vec<Message> = Vec::new();
    let shared = provider(None, "Shared");
    let own = provider(Some(alice.id), "Own");
    let mut cfg = config(alice.id, own.id);
    let doomed_cfg = config(bob.id, shared.id);

    {
        let s: &dyn Store = &store;
        ok(s.create_user(&alice).await, "create_user");
        ok(s.create_user(&bob).await, "create_user");
        ok(s.create_session(&live).await, "create_session");
        ok(s.create_session(&revoked).await, "create_session");
        assert!(ok(
            s.delete_session(&revoked.token_hash).await,
            "delete_session"
        ));
        ok(s.create_conversation(&conv).await, "create_conversation");
        for i in 0..4 {
            let mut d = draft(&conv, &format!("message {i} — ünïcode"));
            d.metadata = Some(
                Metadata::parse(json!({"i": i, "nested": {"ok": true}})).expect("valid metadata"),
            );
            d.created_at = at(i);
            messages.push(ok(s.append_message(d).await, "append_message"));
        }
        // The last message goes: its seq must not come back after reopening.
        let last = messages.pop().expect("four messages");
        assert!(ok(
            s.delete_message(last.id, at(10)).await,
            "delete_message"
        ));
        let kept_attachment = attachment(&messages[0]);
        ok(
            s.create_attachment(&kept_attachment).await,
            "create_attachment",
        );
        let gone_attachment = attachment(&messages[1]);
        ok(
            s.create_attachment(&gone_attachment).await,
            "create_attachment",
        );
        assert!(ok(
            s.delete_attachment(gone_attachment.id).await,
            "delete_attachment"
        ));
        conv = ok(
            s.rename_conversation(conv.id, "renamed", at(20)).await,
            "rename_conversation",
        )
        .expect("exists");
        ok(s.create_provider(&shared).await, "create_provider");
        ok(s.create_provider(&own).await, "create_provider");
        ok(s.create_config(&cfg).await, "create_config");
        cfg = ok(
            s.update_config(alice.id, own.id, SealedKey(vec![4, 2]), None, at(30))
                .await,
            "update_config",
        )
        .expect("exists");
        ok(s.create_config(&doomed_cfg).await, "create_config");
        assert!(ok(
            s.delete_config(bob.id, shared.id).await,
            "delete_config"
        ));
        drop(store);

        let store = factory.reopen(&guard).await;
        let s: &dyn Store = &store;
        let what = "after reopening";
        assert_eq!(
            ok(s.get_user(alice.id).await, "get_user"),
            Some(alice.clone()),
            "{what}: a user must be there"
        );
        assert_eq!(
            ok(
                s.get_user_by_username("ALICE").await,
                "get_user_by_username"
            ),
            Some(alice.clone()),
            "{what}: the name index must be there"
        );
        assert_eq!(ok(s.get_user(bob.id).await, "get_user"), Some(bob.clone()));
        assert_eq!(
            ok(s.get_session(&live.token_hash).await, "get_session"),
            Some(live.clone()),
            "{what}: a session must be there"
        );
        assert_eq!(
            ok(s.get_session(&revoked.token_hash).await, "get_session"),
            None,
            "{what}: a revoked session must stay revoked"
        );
        assert_eq!(
            ok(s.get_conversation(conv.id).await, "get_conversation"),
            Some(conv.clone()),
            "{what}: the conversation, with its title, updated_at and message_count, must be there"
        );
        assert_eq!(
            ok(
                s.list_conversations(alice.id, None, Limit::MAX).await,
                "list_conversations"
            ),
            vec![conv.clone()]
        );
        assert_eq!(
            ok(
                s.list_messages(conv.id, MessageOrder::default(), Limit::MAX)
                    .await,
                "list_messages"
            ),
            messages,
            "{what}: the messages must be there, and the deleted one gone"
        );
        assert_eq!(
            ok(s.get_attachment(kept_attachment.id).await, "get_attachment"),
            Some(kept_attachment.clone()),
            "{what}: an attachment must be there"
        );
        assert_eq!(
            ok(s.get_attachment(gone_attachment.id).await, "get_attachment"),
            None,
            "{what}: a deleted attachment must stay deleted"
        );
        assert_eq!(
            ok(
                s.list_providers(alice.id, None, Limit::MAX).await,
                "list_providers"
            ),
            vec![shared.clone(), own.clone()],
            "{what}: the providers must be there"
        );
        assert_eq!(
            ok(s.get_config(alice.id, own.id).await, "get_config"),
            Some(cfg.clone()),
            "{what}: the updated config must be there"
        );
        assert_eq!(
            ok(s.get_config(bob.id, shared.id).await, "get_config"),
            None,
            "{what}: a deleted config must stay deleted"
        );
        let next = ok(
            s.append_message(draft(&conv, "after reopening")).await,
            "append_message",
        );
        assert_eq!(
            next.seq, 5,
            "{what}: the next seq must be 5: seq 4 was handed out and deleted before reopening"
        );
        // The uniqueness rules hold across the reopen.
        assert!(
            s.create_user(&user("ALICE")).await.is_err(),
            "{what}: a taken name must stay taken"
        );
        factory.destroy(store, guard).await;
    }
}
