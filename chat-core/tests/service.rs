//! The rules of access, accounts and secrets, through `ChatService` over `MemoryStore`.

use std::sync::Arc;

use chat_core::accounts::PasswordCost;
use chat_core::{
    ApiKey, Caller, ChatService, ConversationId, Entity, Error, Forbidden, Limit, MasterKey,
    MemoryStore, MessageOrder, NewAttachment, NewConfig, NewConversation, NewMessage, NewProvider,
    NewUser, ProviderId, Sealer, ServiceConfig, Store, Title, UserId,
};
use chrono::Duration;

fn config() -> ServiceConfig {
    ServiceConfig {
        password_cost: PasswordCost::INSECURE_FOR_TESTS,
        ..ServiceConfig::default()
    }
}

fn service_with(config: ServiceConfig) -> (ChatService, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let service = ChatService::new(store.clone(), Sealer::new(1, MasterKey::generate()), config);
    (service, store)
}

fn service() -> ChatService {
    service_with(config()).0
}

async fn user(service: &ChatService, name: &str) -> Caller {
    service
        .register(NewUser::parse(name, "password123", None).unwrap())
        .await
        .unwrap();
    let login = service.login(name, "password123").await.unwrap();
    service
        .authenticate(login.token.expose_secret())
        .await
        .unwrap()
}

fn assert_not_found<T: std::fmt::Debug>(result: chat_core::Result<T>, entity: Entity) {
    match result {
        Err(Error::NotFound(e)) => assert_eq!(e, entity),
        other => panic!("expected {entity} not found, got {other:?}"),
    }
}

fn limit(n: u64) -> Limit {
    Limit::new(n).unwrap()
}

#[tokio::test]
async fn conversations_are_their_owners_alone() {
    let s = service();
    let (ada, bob) = (user(&s, "ada").await, user(&s, "bob").await);
    let chat = s
        .create_conversation(&ada, NewConversation::parse(None, "Ada's").unwrap())
        .await
        .unwrap();
    assert_eq!(chat.user_id, ada.user_id());
    assert_eq!(s.get_conversation(&ada, chat.id).await.unwrap(), chat);

    assert_not_found(
        s.get_conversation(&bob, chat.id).await,
        Entity::Conversation,
    );
    assert_not_found(
        s.rename_conversation(&bob, chat.id, Title::parse("mine").unwrap())
            .await,
        Entity::Conversation,
    );
    assert_not_found(
        s.delete_conversation(&bob, chat.id).await,
        Entity::Conversation,
    );
    assert_not_found(
        s.list_messages(&bob, chat.id, MessageOrder::default(), Limit::DEFAULT)
            .await,
        Entity::Conversation,
    );
    assert!(
        s.list_conversations(&bob, None, Limit::DEFAULT)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.list_conversations(&ada, None, Limit::DEFAULT)
            .await
            .unwrap(),
        vec![chat.clone()]
    );

    // Naming another user in the body is forbidden, naming oneself is fine.
    let foreign = NewConversation::parse(Some(ada.user_id()), "x").unwrap();
    assert!(matches!(
        s.create_conversation(&bob, foreign).await,
        Err(Error::Forbidden(Forbidden::OtherUser))
    ));
    let own = NewConversation::parse(Some(bob.user_id()), "x").unwrap();
    assert_eq!(
        s.create_conversation(&bob, own).await.unwrap().user_id,
        bob.user_id()
    );

    // Nothing of Ada's changed.
    assert_eq!(s.get_conversation(&ada, chat.id).await.unwrap(), chat);
    assert_not_found(
        s.get_conversation(&ada, ConversationId::new()).await,
        Entity::Conversation,
    );
}

#[tokio::test]
async fn messages_and_attachments_are_their_owners_alone() {
    let s = service();
    let (ada, bob) = (user(&s, "ada").await, user(&s, "bob").await);
    let chat = s
        .create_conversation(&ada, NewConversation::parse(None, "t").unwrap())
        .await
        .unwrap();
    let msg = |content: &str| NewMessage::parse(chat.id, "user", content, None).unwrap();

    assert_not_found(
        s.append_message(&bob, msg("intrusion")).await,
        Entity::Conversation,
    );
    let m1 = s.append_message(&ada, msg("one")).await.unwrap();
    let m2 = s.append_message(&ada, msg("two")).await.unwrap();
    assert_eq!((m1.seq, m2.seq), (1, 2));
    let after = s.get_conversation(&ada, chat.id).await.unwrap();
    assert_eq!(after.message_count, 2);
    assert_eq!(after.updated_at, m2.created_at);

    assert_not_found(s.get_message(&bob, m1.id).await, Entity::Message);
    assert_not_found(s.delete_message(&bob, m1.id).await, Entity::Message);
    let attach = |message| NewAttachment::parse(message, "image/png", "/a.png").unwrap();
    assert_not_found(
        s.create_attachment(&bob, attach(m1.id)).await,
        Entity::Message,
    );
    assert_not_found(
        s.list_attachments(&bob, m1.id, None, Limit::DEFAULT).await,
        Entity::Message,
    );

    let a = s.create_attachment(&ada, attach(m1.id)).await.unwrap();
    assert_eq!(a.conversation_id, chat.id);
    assert_not_found(s.get_attachment(&bob, a.id).await, Entity::Attachment);
    assert_not_found(s.delete_attachment(&bob, a.id).await, Entity::Attachment);
    assert_eq!(
        s.list_attachments(&ada, m1.id, None, Limit::DEFAULT)
            .await
            .unwrap(),
        vec![a.clone()]
    );

    let desc = s
        .list_messages(
            &ada,
            chat.id,
            MessageOrder::Descending { before: None },
            limit(1),
        )
        .await
        .unwrap();
    assert_eq!(desc, vec![m2.clone()]);

    s.delete_message(&ada, m1.id).await.unwrap();
    assert_not_found(s.get_attachment(&ada, a.id).await, Entity::Attachment);
    assert_eq!(
        s.get_conversation(&ada, chat.id)
            .await
            .unwrap()
            .message_count,
        1
    );
    let m3 = s.append_message(&ada, msg("three")).await.unwrap();
    assert_eq!(m3.seq, 3, "a deleted message's seq is not reused");

    s.delete_conversation(&ada, chat.id).await.unwrap();
    assert_not_found(s.get_message(&ada, m2.id).await, Entity::Message);
}

#[tokio::test]
async fn the_service_holds_messages_to_its_own_content_limit() {
    let (s, _) = service_with(ServiceConfig {
        max_content_bytes: 8,
        ..config()
    });
    let ada = user(&s, "ada").await;
    let chat = s
        .create_conversation(&ada, NewConversation::parse(None, "t").unwrap())
        .await
        .unwrap();
    // Parsing leaves the length to the service, which holds it to the operator's limit.
    for content in ["123456789", ""] {
        let wrong = NewMessage::parse(chat.id, "user", content, None).unwrap();
        match s.append_message(&ada, wrong).await {
            Err(Error::Invalid(e)) => {
                assert_eq!(e.field, "content");
                assert_eq!(e.to_string(), "content must be 1 to 8 bytes");
            }
            other => panic!("expected invalid content, got {other:?}"),
        }
    }
    let fits = NewMessage::parse(chat.id, "user", "12345678", None).unwrap();
    assert!(s.append_message(&ada, fits).await.is_ok());
}

#[tokio::test]
async fn shared_providers_are_seen_by_all_and_deleted_by_none() {
    let s = service();
    let (ada, bob) = (user(&s, "ada").await, user(&s, "bob").await);
    let shared = s
        .create_shared_provider(NewProvider::parse("OpenAI", "https://api.openai.com/v1").unwrap())
        .await
        .unwrap();
    assert_eq!(shared.owner_id, None);
    let private = s
        .create_provider(
            &ada,
            NewProvider::parse("Local", "http://localhost:11434").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(private.owner_id, Some(ada.user_id()));

    assert_eq!(s.get_provider(&bob, shared.id).await.unwrap(), shared);
    assert_not_found(s.get_provider(&bob, private.id).await, Entity::Provider);
    assert_eq!(s.get_provider(&ada, private.id).await.unwrap(), private);

    let ids =
        |list: Vec<chat_core::LlmProvider>| list.into_iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_providers(&ada, None, Limit::DEFAULT).await.unwrap()),
        vec![shared.id, private.id]
    );
    assert_eq!(
        ids(s.list_providers(&bob, None, Limit::DEFAULT).await.unwrap()),
        vec![shared.id]
    );

    assert!(matches!(
        s.delete_provider(&ada, shared.id).await,
        Err(Error::Forbidden(Forbidden::SharedProvider))
    ));
    assert_not_found(s.delete_provider(&bob, private.id).await, Entity::Provider);

    // Names clash within one owner, ignoring case, never across owners or with shared ones.
    let dup = s
        .create_provider(&ada, NewProvider::parse("LOCAL", "http://x").unwrap())
        .await;
    assert!(
        matches!(
            dup,
            Err(Error::Conflict {
                entity: Entity::Provider,
                field: "name"
            })
        ),
        "{dup:?}"
    );
    assert!(
        s.create_provider(&bob, NewProvider::parse("local", "http://x").unwrap())
            .await
            .is_ok()
    );
    assert!(
        s.create_provider(&bob, NewProvider::parse("openai", "http://x").unwrap())
            .await
            .is_ok()
    );

    s.delete_provider(&ada, private.id).await.unwrap();
    assert_not_found(s.get_provider(&ada, private.id).await, Entity::Provider);
}

#[tokio::test]
async fn configs_keep_keys_sealed_and_private() {
    let (s, store) = service_with(config());
    let (ada, bob) = (user(&s, "ada").await, user(&s, "bob").await);
    let shared = s
        .create_shared_provider(NewProvider::parse("OpenAI", "https://api.openai.com").unwrap())
        .await
        .unwrap();
    let bobs = s
        .create_provider(
            &bob,
            NewProvider::parse("Bob's", "https://bob.example").unwrap(),
        )
        .await
        .unwrap();
    let key = "sk-live-0123456789abcdef";

    let foreign = NewConfig::parse(Some(bob.user_id()), shared.id, key).unwrap();
    assert!(matches!(
        s.create_config(&ada, foreign).await,
        Err(Error::Forbidden(Forbidden::OtherUser))
    ));
    assert_not_found(
        s.create_config(&ada, NewConfig::parse(None, bobs.id, key).unwrap())
            .await,
        Entity::Provider,
    );
    assert_not_found(
        s.create_config(
            &ada,
            NewConfig::parse(None, ProviderId::new(), key).unwrap(),
        )
        .await,
        Entity::Provider,
    );

    let config = s
        .create_config(&ada, NewConfig::parse(None, shared.id, key).unwrap())
        .await
        .unwrap();
    assert_eq!(config.api_key_hint.as_deref(), Some("…cdef"));
    let stored = store
        .get_config(ada.user_id(), shared.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !stored
            .sealed_key
            .0
            .windows(key.len())
            .any(|w| w == key.as_bytes()),
        "stored in plain text"
    );
    assert!(!format!("{stored:?}").contains(key));

    let again = s
        .create_config(
            &ada,
            NewConfig::parse(None, shared.id, "other-key").unwrap(),
        )
        .await;
    assert!(
        matches!(
            again,
            Err(Error::Conflict {
                entity: Entity::Config,
                field: "provider_id"
            })
        ),
        "{again:?}"
    );

    assert_eq!(
        s.reveal_api_key(&ada, shared.id)
            .await
            .unwrap()
            .expose_secret(),
        key
    );
    assert_not_found(s.reveal_api_key(&bob, shared.id).await, Entity::Config);
    assert_not_found(
        s.get_config(&bob, ada.user_id(), shared.id).await,
        Entity::Config,
    );
    assert_not_found(
        s.update_config(&bob, ada.user_id(), shared.id, ApiKey::parse("x").unwrap())
            .await,
        Entity::Config,
    );
    assert_not_found(
        s.delete_config(&bob, ada.user_id(), shared.id).await,
        Entity::Config,
    );
    assert_not_found(
        s.update_config(&bob, bob.user_id(), shared.id, ApiKey::parse("x").unwrap())
            .await,
        Entity::Config,
    );

    let updated = s
        .update_config(
            &ada,
            ada.user_id(),
            shared.id,
            ApiKey::parse("short").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(updated.api_key_hint, None);
    assert!(updated.updated_at >= config.updated_at);
    assert_eq!(
        s.reveal_api_key(&ada, shared.id)
            .await
            .unwrap()
            .expose_secret(),
        "short"
    );

    s.delete_config(&ada, ada.user_id(), shared.id)
        .await
        .unwrap();
    assert_not_found(
        s.get_config(&ada, ada.user_id(), shared.id).await,
        Entity::Config,
    );
}

#[tokio::test]
async fn a_sealed_key_moved_to_another_row_does_not_open() {
    let (s, store) = service_with(config());
    let (ada, bob) = (user(&s, "ada").await, user(&s, "bob").await);
    let p = s
        .create_shared_provider(NewProvider::parse("P", "https://p.example").unwrap())
        .await
        .unwrap();
    s.create_config(
        &ada,
        NewConfig::parse(None, p.id, "ada-secret-key-123").unwrap(),
    )
    .await
    .unwrap();
    s.create_config(
        &bob,
        NewConfig::parse(None, p.id, "bob-secret-key-456").unwrap(),
    )
    .await
    .unwrap();
    let adas = store
        .get_config(ada.user_id(), p.id)
        .await
        .unwrap()
        .unwrap();
    let now = chat_core::time::now();
    store
        .update_config(bob.user_id(), p.id, adas.sealed_key, None, now)
        .await
        .unwrap();
    assert!(matches!(
        s.reveal_api_key(&bob, p.id).await,
        Err(Error::Unseal)
    ));
}

#[tokio::test]
async fn logins_and_tokens() {
    let s = service();
    let registered = s
        .register(NewUser::parse("Ada", "password123", Some("ada@example.com")).unwrap())
        .await
        .unwrap();
    assert_eq!(registered.email.as_deref(), Some("ada@example.com"));
    let taken = s
        .register(NewUser::parse("ADA", "password456", None).unwrap())
        .await;
    assert!(
        matches!(
            taken,
            Err(Error::Conflict {
                entity: Entity::User,
                field: "username"
            })
        ),
        "{taken:?}"
    );

    for (name, password) in [
        ("ada", "wrong-password"),
        ("nobody", "password123"),
        ("", ""),
        ("ada", ""),
    ] {
        assert!(
            matches!(s.login(name, password).await, Err(Error::Unauthorized)),
            "{name}/{password}"
        );
    }
    let login = s.login("aDa", "password123").await.unwrap();
    assert_eq!(login.user_id, registered.id);
    let token = login.token.expose_secret().to_owned();
    let caller = s.authenticate(&token).await.unwrap();
    assert_eq!(s.me(&caller).await.unwrap().username, "Ada");

    // A second login is a second, independent session.
    let other = s.login("ada", "password123").await.unwrap();
    assert_ne!(other.token, login.token);

    for forged in [
        "",
        "x",
        &"0".repeat(64),
        &token.to_uppercase(),
        &token[1..],
        &format!("{token}0"),
    ] {
        assert!(
            matches!(s.authenticate(forged).await, Err(Error::Unauthorized)),
            "{forged}"
        );
    }

    s.logout(&token).await.unwrap();
    assert!(
        matches!(s.authenticate(&token).await, Err(Error::Unauthorized)),
        "revoked token still works"
    );
    assert!(matches!(s.logout(&token).await, Err(Error::Unauthorized)));
    assert!(
        s.authenticate(other.token.expose_secret()).await.is_ok(),
        "logout revokes only its own token"
    );
}

#[tokio::test]
async fn expired_tokens_fail_and_are_purged() {
    let (s, store) = service_with(ServiceConfig {
        token_ttl: Duration::milliseconds(-1),
        ..config()
    });
    s.register(NewUser::parse("ada", "password123", None).unwrap())
        .await
        .unwrap();
    let login = s.login("ada", "password123").await.unwrap();
    let hash = login.token.hash();
    assert!(store.get_session(&hash).await.unwrap().is_some());
    assert!(matches!(
        s.authenticate(login.token.expose_secret()).await,
        Err(Error::Unauthorized)
    ));
    assert!(
        store.get_session(&hash).await.unwrap().is_none(),
        "an expired session is removed when seen"
    );

    s.login("ada", "password123").await.unwrap();
    assert_eq!(s.purge_expired_sessions().await.unwrap(), 1);

    let (live, _) = service_with(config());
    live.register(NewUser::parse("bob", "password123", None).unwrap())
        .await
        .unwrap();
    let token = live.login("bob", "password123").await.unwrap();
    assert!(token.expires_at > chat_core::time::now() + Duration::days(6));
    assert_eq!(live.purge_expired_sessions().await.unwrap(), 0);
}

#[tokio::test]
async fn closed_registration_is_forbidden() {
    let (s, _) = service_with(ServiceConfig {
        registration_open: false,
        ..config()
    });
    let result = s
        .register(NewUser::parse("ada", "password123", None).unwrap())
        .await;
    assert!(
        matches!(result, Err(Error::Forbidden(Forbidden::RegistrationClosed))),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_operator_adds_users_while_registration_is_closed() {
    let (s, _) = service_with(ServiceConfig {
        registration_open: false,
        ..config()
    });
    let added = s
        .add_user(NewUser::parse("ada", "password123", None).unwrap())
        .await
        .unwrap();
    let login = s.login("ADA", "password123").await.unwrap();
    assert_eq!(login.user_id, added.id);
    let users = s.list_users(None, limit(10)).await.unwrap();
    assert_eq!(users.len(), 1);
    assert!(!users[0].disabled);
}

#[tokio::test]
async fn a_disabled_user_loses_their_sessions_and_cannot_log_in() {
    let s = service();
    user(&s, "ada").await;
    let bob = user(&s, "bob").await;
    let live = s.login("ada", "password123").await.unwrap();
    s.authenticate(live.token.expose_secret()).await.unwrap();

    let disabled = s.set_user_disabled("Ada", true).await.unwrap();
    assert_eq!(disabled.username, "ada");
    assert!(matches!(
        s.authenticate(live.token.expose_secret()).await,
        Err(Error::Unauthorized)
    ));
    // The right password learns why (403); a wrong one is told nothing more than anyone.
    assert!(matches!(
        s.login("ada", "password123").await,
        Err(Error::Forbidden(Forbidden::UserDisabled))
    ));
    assert!(matches!(
        s.login("ada", "wrong-password").await,
        Err(Error::Unauthorized)
    ));
    let users = s.list_users(None, limit(10)).await.unwrap();
    assert!(users.iter().any(|u| u.user.username == "ada" && u.disabled));
    // Others are untouched.
    s.create_conversation(&bob, NewConversation::parse(None, "still here").unwrap())
        .await
        .unwrap();

    s.set_user_disabled("ada", false).await.unwrap();
    s.login("ada", "password123").await.unwrap();
    assert_not_found(s.set_user_disabled("nobody", true).await, Entity::User);
}

#[tokio::test]
async fn prune_deletes_only_conversations_idle_past_the_period() {
    let (s, store) = service_with(config());
    let ada = user(&s, "ada").await;
    let mut old = s
        .create_conversation(&ada, NewConversation::parse(None, "old").unwrap())
        .await
        .unwrap();
    s.create_conversation(&ada, NewConversation::parse(None, "new").unwrap())
        .await
        .unwrap();
    // Age one conversation by putting it back with an old updated_at.
    store.delete_conversation(old.id).await.unwrap();
    old.updated_at = chat_core::time::now() - Duration::days(100);
    store.create_conversation(&old).await.unwrap();

    let dry = s.prune(Duration::days(30), true).await.unwrap();
    assert_eq!(dry.conversations, 1);
    assert!(store.get_conversation(old.id).await.unwrap().is_some());
    let done = s.prune(Duration::days(30), false).await.unwrap();
    assert_eq!(done.conversations, 1);
    assert!(store.get_conversation(old.id).await.unwrap().is_none());
    let left = s.list_conversations(&ada, None, limit(10)).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].title, "new");
}

#[tokio::test]
async fn trusted_callers_act_for_applications_with_their_own_login() {
    let s = service();
    let caller = Caller::trusted(UserId::new());
    let chat = s
        .create_conversation(&caller, NewConversation::parse(None, "t").unwrap())
        .await
        .unwrap();
    assert_eq!(chat.user_id, caller.user_id());
}

mod no_input_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        // Arbitrary strings through every parse and service call: errors, never panics,
        // and every rejection comes back as the typed error of the field at fault.
        #[test]
        fn arbitrary_strings(a in any::<String>(), b in any::<String>(), json in any::<String>()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let s = service();
                let caller = Caller::trusted(UserId::new());
                let meta = serde_json::from_str(&json).ok();
                if let Ok(new) = NewConversation::parse(None, &a) {
                    let chat = s.create_conversation(&caller, new).await.unwrap();
                    if let Ok(m) = NewMessage::parse(chat.id, &b, &a, meta) {
                        s.append_message(&caller, m).await.unwrap();
                    }
                }
                if let Ok(p) = NewProvider::parse(&a, &b) {
                    let p = s.create_provider(&caller, p).await.unwrap();
                    if let Ok(c) = NewConfig::parse(None, p.id, &b) {
                        s.create_config(&caller, c).await.unwrap();
                        let key = s.reveal_api_key(&caller, p.id).await.unwrap();
                        assert_eq!(key.expose_secret(), b);
                    }
                }
                if let Ok(u) = NewUser::parse(&a, &b, Some(&json)) {
                    s.register(u).await.unwrap();
                }
                assert!(s.login(&a, &b).await.is_err());
                assert!(s.authenticate(&a).await.is_err());
            });
        }
    }
}
