//! The bodies of the [`cases`](super): only the re-exports of the one list of cases make
//! them reachable, so a case left off that list is dead code, and dead code here fails the
//! build instead of being a case that silently never runs.
#![deny(dead_code)]

use serde_json::json;

use crate::error::Entity;
use crate::ids::{AttachmentId, ConversationId, MessageId, ProviderId, SessionId, UserId};
use crate::model::{Attachment, Conversation, LlmProvider, Message, Role, Session};
use crate::secrets::SealedKey;
use crate::store::{MessageOrder, Store};
use crate::testkit::fixtures::{
    at, attachment, config, conversation, draft, expect_any_conflict, expect_conflict,
    expect_not_found, new_user, ok, provider, session, token, user,
};
use crate::time;
use crate::validation::{Limit, Metadata, provider_name_key};

mod metadata;
pub use metadata::metadata_kept_exactly_as_sent;

async fn new_conversation(store: &dyn Store, owner: UserId, title: &str) -> Conversation {
    let c = conversation(owner, title);
    ok(store.create_conversation(&c).await, "create_conversation");
    c
}

async fn append(store: &dyn Store, c: &Conversation, content: &str) -> Message {
    ok(
        store.append_message(draft(c, content)).await,
        "append_message",
    )
}

async fn new_attachment(store: &dyn Store, m: &Message) -> Attachment {
    let a = attachment(m);
    ok(store.create_attachment(&a).await, "create_attachment");
    a
}

async fn new_provider(store: &dyn Store, owner: Option<UserId>, name: &str) -> LlmProvider {
    let p = provider(owner, name);
    ok(store.create_provider(&p).await, "create_provider");
    p
}

fn limit(n: u64) -> Limit {
    Limit::new(n).expect("a valid limit")
}

/// Reads every page of `read` with page size `size` and checks that together they are
/// `expected`, in order, each page full but the last, and that the page after the last is
/// empty.
async fn check_paging<T, K, R, Fut>(what: &str, expected: &[T], size: u64, key: K, read: R)
where
    T: PartialEq + std::fmt::Debug,
    K: Fn(&T) -> Option<u128>,
    R: Fn(Option<u128>, Limit) -> Fut,
    Fut: std::future::Future<Output = Vec<T>>,
{
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = read(cursor, limit(size)).await;
        assert!(
            page.len() as u64 <= size,
            "{what}: a page of limit {size} held {} items",
            page.len()
        );
        if page.is_empty() {
            break;
        }
        pages += 1;
        assert!(
            pages <= expected.len() + 1,
            "{what}: paging with limit {size} does not end"
        );
        let full = page.len() as u64 == size;
        cursor = key(page.last().expect("non-empty"));
        seen.extend(page);
        if !full {
            break;
        }
    }
    assert_eq!(
        seen, expected,
        "{what}: reading every page with limit {size} gave other items or another order"
    );
    // After the last page there is nothing.
    if let Some(last) = expected.last() {
        let after = read(key(last), limit(size)).await;
        assert!(
            after.is_empty(),
            "{what}: the page after the last item is not empty: {after:?}"
        );
    }
}

fn conv_key(c: &Conversation) -> Option<u128> {
    Some(c.id.as_uuid().as_u128())
}

// ----- basics, users and sessions -----

/// `backend()` names the store and `ping()` answers `Ok`.
pub async fn backend_name_and_ping(store: &dyn Store) {
    assert!(!store.backend().is_empty(), "backend() must name the store");
    ok(store.ping().await, "ping");
}

/// A user reads back field for field, by id and by name, with and without an email.
pub async fn user_round_trip(store: &dyn Store) {
    let mut alice = user("alice");
    alice.email = Some("zoë.ünïcode@例え.jp".to_owned());
    alice.created_at = at(0);
    ok(store.create_user(&alice).await, "create_user");
    let mut bob = user("Bob_the-builder.2");
    bob.email = None;
    ok(store.create_user(&bob).await, "create_user with no email");

    for u in [&alice, &bob] {
        assert_eq!(
            ok(store.get_user(u.id).await, "get_user").as_ref(),
            Some(u),
            "get_user must read back every field exactly"
        );
        assert_eq!(
            ok(
                store.get_user_by_username(&u.username).await,
                "get_user_by_username"
            )
            .as_ref(),
            Some(u),
            "get_user_by_username must read back every field exactly"
        );
    }
    let got = ok(store.get_user(alice.id).await, "get_user").expect("alice exists");
    assert_eq!(
        got.password_hash, alice.password_hash,
        "the password hash must read back exactly"
    );
}

/// `get_user_by_username` matches ignoring ASCII case, and answers the name as registered.
pub async fn user_lookup_by_username_ignores_ascii_case(store: &dyn Store) {
    let u = new_user(store, "MixedCase").await;
    for spelling in ["mixedcase", "MIXEDCASE", "mIxEdCaSe", "MixedCase"] {
        let got = ok(
            store.get_user_by_username(spelling).await,
            "get_user_by_username",
        );
        assert_eq!(
            got.as_ref(),
            Some(&u),
            "get_user_by_username({spelling:?}) must find the user registered as \"MixedCase\""
        );
    }
    assert_eq!(
        ok(
            store.get_user_by_username("MixedCas").await,
            "get_user_by_username"
        ),
        None,
        "a prefix of a name is another name"
    );
}

/// A name taken ignoring ASCII case is `Conflict { User, "username" }`; other names are fine.
pub async fn username_unique_ignoring_ascii_case(store: &dyn Store) {
    let first = new_user(store, "carol").await;
    for taken in ["carol", "CAROL", "Carol", "cArOl"] {
        expect_conflict(
            store.create_user(&user(taken)).await,
            Entity::User,
            "username",
            &format!("create_user({taken:?}) after \"carol\""),
        );
    }
    // The losers left nothing behind.
    assert_eq!(
        ok(
            store.get_user_by_username("CAROL").await,
            "get_user_by_username"
        ),
        Some(first),
        "a refused registration must not replace the user"
    );
    new_user(store, "carol2").await;
    new_user(store, "caro").await;
}

/// Adding a user whose id is taken is `Conflict { User, .. }`.
pub async fn user_id_taken_is_conflict(store: &dyn Store) {
    let first = new_user(store, "dave").await;
    let mut again = user("someone_else");
    again.id = first.id;
    expect_conflict(
        store.create_user(&again).await,
        Entity::User,
        "id",
        "create_user with a taken id",
    );
    assert_eq!(
        ok(store.get_user(first.id).await, "get_user"),
        Some(first),
        "a refused create_user must not change the user"
    );
    assert_eq!(
        ok(
            store.get_user_by_username("someone_else").await,
            "get_user_by_username"
        ),
        None,
        "a refused create_user must not leave its name behind"
    );
    new_user(store, "someone_else").await;
}

/// Reads of unknown users answer `None`.
pub async fn missing_user_is_none(store: &dyn Store) {
    new_user(store, "erin").await;
    assert_eq!(ok(store.get_user(UserId::new()).await, "get_user"), None);
    assert_eq!(
        ok(
            store.get_user_by_username("nobody").await,
            "get_user_by_username"
        ),
        None
    );
}

/// A session reads back exactly, expired or not; an unknown token is `None`.
pub async fn session_round_trip(store: &dyn Store) {
    let u = new_user(store, "frank").await;
    let live = session(u.id, time::now() + chrono::Duration::days(30));
    let expired = session(u.id, at(-3600));
    for s in [&live, &expired] {
        ok(store.create_session(s).await, "create_session");
    }
    for s in [&live, &expired] {
        assert_eq!(
            ok(store.get_session(&s.token_hash).await, "get_session").as_ref(),
            Some(s),
            "get_session must read back every field exactly, expired or not"
        );
    }
    assert_eq!(
        ok(store.get_session(&token()).await, "get_session"),
        None,
        "an unknown token has no session"
    );
}

/// Deleting a session revokes it: `true` once, then `false`, and it is gone.
pub async fn session_delete_revokes(store: &dyn Store) {
    let u = new_user(store, "grace").await;
    let a = session(u.id, at(3600));
    let b = session(u.id, at(3600));
    ok(store.create_session(&a).await, "create_session");
    ok(store.create_session(&b).await, "create_session");
    assert!(
        ok(store.delete_session(&a.token_hash).await, "delete_session"),
        "deleting an existing session must answer true"
    );
    assert_eq!(
        ok(store.get_session(&a.token_hash).await, "get_session"),
        None,
        "a deleted session must be gone"
    );
    assert!(
        !ok(store.delete_session(&a.token_hash).await, "delete_session"),
        "deleting a deleted session must answer false"
    );
    assert!(
        !ok(store.delete_session(&token()).await, "delete_session"),
        "deleting an unknown session must answer false"
    );
    assert_eq!(
        ok(store.get_session(&b.token_hash).await, "get_session").as_ref(),
        Some(&b),
        "deleting one session must leave the others"
    );
}

/// `delete_expired_sessions(now)` removes the sessions that expired at or before `now`, all
/// of them and nothing else, and counts them.
pub async fn delete_expired_sessions_removes_exactly_the_expired(store: &dyn Store) {
    let u = new_user(store, "heidi").await;
    let now = at(0);
    let expired: Vec<Session> = [-86_400, -1, 0]
        .into_iter()
        .map(|s| session(u.id, at(s)))
        .chain([session(u.id, now - chrono::Duration::microseconds(1))])
        .collect();
    let live: Vec<Session> = [1, 86_400]
        .into_iter()
        .map(|s| session(u.id, at(s)))
        .chain([session(u.id, now + chrono::Duration::microseconds(1))])
        .collect();
    for s in expired.iter().chain(&live) {
        ok(store.create_session(s).await, "create_session");
    }
    assert_eq!(
        ok(
            store.delete_expired_sessions(now).await,
            "delete_expired_sessions"
        ),
        expired.len() as u64,
        "delete_expired_sessions must count the sessions that expired at or before now"
    );
    for s in &expired {
        assert_eq!(
            ok(store.get_session(&s.token_hash).await, "get_session"),
            None,
            "a session that expired at {} must be removed at {now}",
            s.expires_at
        );
    }
    for s in &live {
        assert_eq!(
            ok(store.get_session(&s.token_hash).await, "get_session").as_ref(),
            Some(s),
            "a session that expires at {} must survive at {now}",
            s.expires_at
        );
    }
    assert_eq!(
        ok(
            store.delete_expired_sessions(now).await,
            "delete_expired_sessions"
        ),
        0,
        "a second sweep at the same time finds nothing"
    );
}

/// A session whose id or token hash is taken is `Conflict { Session, .. }`.
pub async fn session_id_or_token_taken_is_conflict(store: &dyn Store) {
    let u = new_user(store, "ivan").await;
    let first = session(u.id, at(3600));
    ok(store.create_session(&first).await, "create_session");

    let mut same_token = session(u.id, at(7200));
    same_token.token_hash = first.token_hash;
    expect_any_conflict(
        store.create_session(&same_token).await,
        Entity::Session,
        "create_session with a taken token hash",
    );
    let mut same_id = session(u.id, at(7200));
    same_id.id = first.id;
    expect_any_conflict(
        store.create_session(&same_id).await,
        Entity::Session,
        "create_session with a taken id",
    );
    assert_eq!(
        ok(store.get_session(&first.token_hash).await, "get_session"),
        Some(first),
        "a refused create_session must not change the session"
    );
    assert_eq!(
        ok(store.get_session(&same_id.token_hash).await, "get_session"),
        None,
        "a refused create_session must leave nothing behind"
    );
    let mut fresh = session(u.id, at(7200));
    fresh.id = SessionId::new();
    ok(store.create_session(&fresh).await, "create_session");
}

// ----- conversations -----

/// A conversation reads back field for field, with Unicode in its title.
pub async fn conversation_round_trip(store: &dyn Store) {
    let u = new_user(store, "judy").await;
    let mut c = conversation(u.id, "Grüße, 世界 — \"quotes\" and 'apostrophes' 🎉");
    c.created_at = at(0);
    c.updated_at = at(0);
    ok(store.create_conversation(&c).await, "create_conversation");
    let now = conversation(u.id, "now");
    ok(store.create_conversation(&now).await, "create_conversation");
    for c in [&c, &now] {
        assert_eq!(
            ok(store.get_conversation(c.id).await, "get_conversation").as_ref(),
            Some(c),
            "get_conversation must read back every field exactly"
        );
    }
}

/// Adding a conversation whose id is taken is `Conflict { Conversation, "id" }`.
pub async fn conversation_id_taken_is_conflict(store: &dyn Store) {
    let u = new_user(store, "ken").await;
    let c = new_conversation(store, u.id, "first").await;
    let mut again = conversation(u.id, "second");
    again.id = c.id;
    expect_conflict(
        store.create_conversation(&again).await,
        Entity::Conversation,
        "id",
        "create_conversation with a taken id",
    );
    assert_eq!(
        ok(store.get_conversation(c.id).await, "get_conversation"),
        Some(c),
        "a refused create_conversation must not change the conversation"
    );
}

/// Unknown conversations: get is `None`, rename is `None`, delete is `false`.
pub async fn missing_conversation_answers(store: &dyn Store) {
    let u = new_user(store, "liam").await;
    new_conversation(store, u.id, "exists").await;
    let unknown = ConversationId::new();
    assert_eq!(
        ok(store.get_conversation(unknown).await, "get_conversation"),
        None
    );
    assert_eq!(
        ok(
            store.rename_conversation(unknown, "x", at(1)).await,
            "rename_conversation"
        ),
        None,
        "renaming an unknown conversation must answer None"
    );
    assert!(
        !ok(
            store.delete_conversation(unknown).await,
            "delete_conversation"
        ),
        "deleting an unknown conversation must answer false"
    );
    assert_eq!(
        ok(store.get_conversation(unknown).await, "get_conversation"),
        None,
        "renaming an unknown conversation must not create it"
    );
}

/// Renaming sets the title and `updated_at` and nothing else, and answers the result.
pub async fn rename_conversation_sets_title_and_updated_at(store: &dyn Store) {
    let u = new_user(store, "mallory").await;
    let c = new_conversation(store, u.id, "old").await;
    append(store, &c, "hello").await;
    let before = ok(store.get_conversation(c.id).await, "get_conversation").expect("exists");
    let when = at(100);
    let renamed = ok(
        store.rename_conversation(c.id, "néw tïtle ✓", when).await,
        "rename_conversation",
    )
    .expect("rename_conversation of an existing conversation must answer it");
    let expected = Conversation {
        title: "néw tïtle ✓".to_owned(),
        updated_at: when,
        ..before
    };
    assert_eq!(
        renamed, expected,
        "rename_conversation must change the title and updated_at only"
    );
    assert_eq!(
        ok(store.get_conversation(c.id).await, "get_conversation"),
        Some(expected),
        "the rename must be visible to get_conversation"
    );
}

/// `list_conversations` answers the user's own conversations, newest (highest id) first.
pub async fn list_conversations_newest_first_and_only_own(store: &dyn Store) {
    let a = new_user(store, "nina").await;
    let b = new_user(store, "oscar").await;
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(new_conversation(store, a.id, &format!("a{i}")).await);
        new_conversation(store, b.id, &format!("b{i}")).await;
    }
    // A rename moves updated_at, not the position.
    ok(
        store
            .rename_conversation(mine[0].id, "a0", at(10_000))
            .await,
        "rename_conversation",
    );
    mine[0].updated_at = at(10_000);
    mine.reverse();
    assert_eq!(
        ok(
            store.list_conversations(a.id, None, Limit::DEFAULT).await,
            "list_conversations"
        ),
        mine,
        "list_conversations must answer the user's own conversations by descending id"
    );
    assert!(
        ok(
            store
                .list_conversations(UserId::new(), None, Limit::MAX)
                .await,
            "list_conversations"
        )
        .is_empty(),
        "a user with no conversations has an empty list"
    );
}

/// Paging through conversations: every page size, a cursor past either end, a cursor that
/// names a deleted conversation or no conversation at all.
pub async fn list_conversations_pages(store: &dyn Store) {
    let u = new_user(store, "peggy").await;
    let other = new_user(store, "quentin").await;
    let mut all = Vec::new();
    for i in 0..8 {
        all.push(new_conversation(store, u.id, &format!("c{i}")).await);
        new_conversation(store, other.id, &format!("o{i}")).await;
    }
    let gone = all.remove(4);
    assert!(ok(
        store.delete_conversation(gone.id).await,
        "delete_conversation"
    ));
    all.reverse();
    let read = |cursor: Option<u128>, limit: Limit| async move {
        let before = cursor.map(|c| ConversationId::from_uuid(uuid::Uuid::from_u128(c)));
        ok(
            store.list_conversations(u.id, before, limit).await,
            "list_conversations",
        )
    };
    for size in [1, 2, 3, 7, 8, 1000] {
        check_paging("list_conversations", &all, size, conv_key, read).await;
    }
    // A cursor naming the deleted conversation is still a position.
    let after_gone: Vec<_> = all.iter().filter(|c| c.id < gone.id).cloned().collect();
    assert_eq!(
        ok(
            store
                .list_conversations(u.id, Some(gone.id), Limit::MAX)
                .await,
            "list_conversations"
        ),
        after_gone,
        "a cursor naming a deleted conversation must page from its position"
    );
    // A cursor newer than everything answers from the newest; older than everything, nothing.
    assert_eq!(
        ok(
            store
                .list_conversations(u.id, Some(ConversationId::new()), limit(3))
                .await,
            "list_conversations"
        ),
        all[..3].to_vec(),
        "a cursor newer than every conversation must answer the newest page"
    );
    assert!(
        ok(
            store
                .list_conversations(u.id, Some(ConversationId::from_bytes([0; 16])), Limit::MAX)
                .await,
            "list_conversations"
        )
        .is_empty(),
        "nothing is older than the smallest id"
    );
    // The other user's cursor does not leak their conversations.
    let theirs = ok(
        store.list_conversations(other.id, None, Limit::MAX).await,
        "list_conversations",
    );
    assert_eq!(theirs.len(), 8);
    assert!(theirs.iter().all(|c| c.user_id == other.id));
}

/// Deleting a conversation removes it, its messages and their attachments, and answers
/// `true` once.
pub async fn delete_conversation_cascades(store: &dyn Store) {
    let u = new_user(store, "rupert").await;
    let c = new_conversation(store, u.id, "doomed").await;
    let mut messages = Vec::new();
    let mut attachments = Vec::new();
    for i in 0..3 {
        let m = append(store, &c, &format!("m{i}")).await;
        for _ in 0..2 {
            attachments.push(new_attachment(store, &m).await);
        }
        messages.push(m);
    }
    assert!(
        ok(store.delete_conversation(c.id).await, "delete_conversation"),
        "deleting an existing conversation must answer true"
    );
    assert_eq!(
        ok(store.get_conversation(c.id).await, "get_conversation"),
        None,
        "a deleted conversation must be gone"
    );
    for m in &messages {
        assert_eq!(
            ok(store.get_message(m.id).await, "get_message"),
            None,
            "deleting a conversation must delete its messages (seq {})",
            m.seq
        );
        assert!(
            ok(
                store.list_attachments(m.id, None, Limit::MAX).await,
                "list_attachments"
            )
            .is_empty(),
            "deleting a conversation must delete its attachments"
        );
    }
    for a in &attachments {
        assert_eq!(
            ok(store.get_attachment(a.id).await, "get_attachment"),
            None,
            "deleting a conversation must delete its messages' attachments"
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
            "a deleted conversation has no messages to list"
        );
    }
    assert!(
        ok(
            store.list_conversations(u.id, None, Limit::MAX).await,
            "list_conversations"
        )
        .is_empty(),
        "a deleted conversation must not be listed"
    );
    assert!(
        !ok(store.delete_conversation(c.id).await, "delete_conversation"),
        "deleting a deleted conversation must answer false"
    );
    // Appending to it now is NotFound, and its attachments cannot come back.
    expect_not_found(
        store.append_message(draft(&c, "late")).await,
        Entity::Conversation,
        "append_message to a deleted conversation",
    );
    expect_not_found(
        store.create_attachment(&attachment(&messages[0])).await,
        Entity::Message,
        "create_attachment on a message of a deleted conversation",
    );
}

/// Deleting a conversation leaves other conversations, their messages and attachments be.
pub async fn delete_conversation_leaves_others_alone(store: &dyn Store) {
    let u = new_user(store, "sybil").await;
    let doomed = new_conversation(store, u.id, "doomed").await;
    let kept = new_conversation(store, u.id, "kept").await;
    let dm = append(store, &doomed, "bye").await;
    new_attachment(store, &dm).await;
    let km = append(store, &kept, "stay").await;
    let ka = new_attachment(store, &km).await;
    let kept_now = ok(store.get_conversation(kept.id).await, "get_conversation");
    assert!(ok(
        store.delete_conversation(doomed.id).await,
        "delete_conversation"
    ));
    assert_eq!(
        ok(store.get_conversation(kept.id).await, "get_conversation"),
        kept_now,
        "deleting one conversation must not touch another"
    );
    assert_eq!(
        ok(store.get_message(km.id).await, "get_message"),
        Some(km),
        "deleting one conversation must not touch another's messages"
    );
    assert_eq!(
        ok(store.get_attachment(ka.id).await, "get_attachment"),
        Some(ka),
        "deleting one conversation must not touch another's attachments"
    );
}

// ----- messages -----

/// Appends number a conversation's messages 1, 2, 3, … and each conversation on its own.
pub async fn append_assigns_seq_from_one(store: &dyn Store) {
    let u = new_user(store, "trent").await;
    let a = new_conversation(store, u.id, "a").await;
    let b = new_conversation(store, u.id, "b").await;
    for expected in 1..=5u64 {
        let m = append(store, &a, &format!("a{expected}")).await;
        assert_eq!(
            m.seq, expected,
            "append number {expected} must get seq {expected}"
        );
        if expected % 2 == 1 {
            let m = append(store, &b, "b").await;
            assert_eq!(
                m.seq,
                expected.div_ceil(2),
                "each conversation numbers its messages on its own"
            );
        }
    }
}

/// A message reads back field for field: every role, Unicode content, metadata objects with
/// nested values, and no metadata.
pub async fn message_round_trip(store: &dyn Store) {
    let u = new_user(store, "ursula").await;
    let c = new_conversation(store, u.id, "round trip").await;
    let metadata = [
        None,
        Some(json!({})),
        // Floats whose shortest text is long: a store that keeps metadata as text must give
        // back the very same number.
        Some(json!({
            "model": "gpt-x", "temperature": 0.5, "tokens": 1234, "stream": false,
            "top_p": 0.1, "sum": 0.30000000000000004, "third": 0.3333333333333333,
            "tiny": 5e-324, "huge": 1.797_693_134_862_315_7e308, "neg": -2.5e-7,
        })),
        Some(json!({
            "nested": {"a": [1, 2, {"b": null}], "ünï": "çødé 🎉"},
            "big": 9_007_199_254_740_993_u64,
            "neg": -42,
            "empty": [],
            "quote": "\"'\\",
        })),
    ];
    let mut written = Vec::new();
    for (i, (role, meta)) in Role::ALL.into_iter().zip(metadata).enumerate() {
        let mut d = draft(&c, "");
        d.role = role;
        d.content = format!("line one\nline two\t«{i}» — 日本語 🚀");
        d.metadata = meta.map(|m| Metadata::parse(m).expect("valid metadata"));
        d.created_at = at(i as i64);
        let m = ok(store.append_message(d.clone()).await, "append_message");
        assert_eq!(
            m,
            d.with_seq(i as u64 + 1),
            "append_message must answer the draft with its seq"
        );
        written.push(m);
    }
    let mut long = draft(&c, &"x".repeat(64 * 1024));
    long.created_at = at(10);
    written.push(ok(store.append_message(long).await, "append_message"));
    for m in &written {
        assert_eq!(
            ok(store.get_message(m.id).await, "get_message").as_ref(),
            Some(m),
            "get_message must read back every field exactly ({} message)",
            m.role
        );
    }
    assert_eq!(
        ok(
            store
                .list_messages(c.id, MessageOrder::default(), Limit::MAX)
                .await,
            "list_messages"
        ),
        written,
        "list_messages must read back every field exactly"
    );
    assert_eq!(
        ok(store.get_message(MessageId::new()).await, "get_message"),
        None,
        "an unknown message is None"
    );
}

/// Appending to a conversation that does not exist is `NotFound(Conversation)`.
pub async fn append_to_missing_conversation_is_not_found(store: &dyn Store) {
    let u = new_user(store, "victor").await;
    let ghost = conversation(u.id, "never created");
    let d = draft(&ghost, "hello?");
    let id = d.id;
    expect_not_found(
        store.append_message(d).await,
        Entity::Conversation,
        "append_message to a missing conversation",
    );
    assert_eq!(
        ok(store.get_message(id).await, "get_message"),
        None,
        "a refused append must leave no message"
    );
    assert_eq!(
        ok(store.get_conversation(ghost.id).await, "get_conversation"),
        None,
        "a refused append must not create the conversation"
    );
}

/// Appending as someone other than the owner is `NotFound(Conversation)` and changes nothing.
pub async fn append_to_other_users_conversation_is_not_found(store: &dyn Store) {
    let owner = new_user(store, "walter").await;
    let intruder = new_user(store, "xena").await;
    let c = new_conversation(store, owner.id, "private").await;
    append(store, &c, "mine").await;
    let before = ok(store.get_conversation(c.id).await, "get_conversation");
    let mut d = draft(&c, "not yours");
    d.user_id = intruder.id;
    let id = d.id;
    expect_not_found(
        store.append_message(d).await,
        Entity::Conversation,
        "append_message to another user's conversation",
    );
    assert_eq!(ok(store.get_message(id).await, "get_message"), None);
    assert_eq!(
        ok(store.get_conversation(c.id).await, "get_conversation"),
        before,
        "a refused append must not move the conversation"
    );
    let next = append(store, &c, "mine again").await;
    assert_eq!(next.seq, 2, "a refused append must not use up a seq");
}

/// Appending a message whose id is taken is `Conflict { Message, "id" }` and uses no seq.
pub async fn message_id_taken_is_conflict(store: &dyn Store) {
    let u = new_user(store, "yusuf").await;
    let c = new_conversation(store, u.id, "c").await;
    let other = new_conversation(store, u.id, "other").await;
    let first = append(store, &c, "first").await;
    for target in [&c, &other] {
        let mut d = draft(target, "dup");
        d.id = first.id;
        expect_conflict(
            store.append_message(d).await,
            Entity::Message,
            "id",
            "append_message with a taken id",
        );
    }
    assert_eq!(
        ok(store.get_message(first.id).await, "get_message"),
        Some(first),
        "a refused append must not change the message"
    );
    let c_now = ok(store.get_conversation(c.id).await, "get_conversation").expect("exists");
    assert_eq!(c_now.message_count, 1, "a refused append must not count");
    let o_now = ok(store.get_conversation(other.id).await, "get_conversation").expect("exists");
    assert_eq!(
        o_now, other,
        "a refused append must not move the conversation"
    );
    assert_eq!(append(store, &c, "second").await.seq, 2);
}

/// Each append adds one to `message_count` and sets `updated_at` to the message's time.
pub async fn append_moves_updated_at_and_message_count(store: &dyn Store) {
    let u = new_user(store, "zoe").await;
    let mut c = conversation(u.id, "counting");
    c.created_at = at(0);
    c.updated_at = at(0);
    ok(store.create_conversation(&c).await, "create_conversation");
    // Times that go backwards too: the contract says the message's time, not the maximum.
    for (n, secs) in [(1u64, 10i64), (2, 20), (3, 15)] {
        let mut d = draft(&c, "m");
        d.created_at = at(secs);
        ok(store.append_message(d).await, "append_message");
        let now = ok(store.get_conversation(c.id).await, "get_conversation").expect("exists");
        assert_eq!(
            now.message_count, n,
            "message_count must be {n} after {n} appends"
        );
        assert_eq!(
            now.updated_at,
            at(secs),
            "updated_at must be the appended message's created_at"
        );
        assert_eq!(now.created_at, at(0), "created_at must not move");
        assert_eq!(now.title, c.title, "the title must not move");
    }
}

/// Deleting a message subtracts one from `message_count`, sets `updated_at`, answers `true`
/// once, and leaves the other messages be.
pub async fn delete_message_moves_updated_at_and_message_count(store: &dyn Store) {
    let u = new_user(store, "adam").await;
    let c = new_conversation(store, u.id, "c").await;
    let m1 = append(store, &c, "one").await;
    let m2 = append(store, &c, "two").await;
    let m3 = append(store, &c, "three").await;
    assert!(
        ok(store.delete_message(m2.id, at(500)).await, "delete_message"),
        "deleting an existing message must answer true"
    );
    let now = ok(store.get_conversation(c.id).await, "get_conversation").expect("exists");
    assert_eq!(now.message_count, 2, "deleting a message must subtract one");
    assert_eq!(
        now.updated_at,
        at(500),
        "deleting a message must set updated_at to the given time"
    );
    assert_eq!(ok(store.get_message(m2.id).await, "get_message"), None);
    assert!(
        !ok(store.delete_message(m2.id, at(600)).await, "delete_message"),
        "deleting a deleted message must answer false"
    );
    assert!(
        !ok(
            store.delete_message(MessageId::new(), at(600)).await,
            "delete_message"
        ),
        "deleting an unknown message must answer false"
    );
    let after = ok(store.get_conversation(c.id).await, "get_conversation").expect("exists");
    assert_eq!(
        after, now,
        "a delete that found nothing must not move the conversation"
    );
    assert_eq!(
        ok(
            store
                .list_messages(c.id, MessageOrder::default(), Limit::MAX)
                .await,
            "list_messages"
        ),
        vec![m1, m3],
        "deleting a message must leave the others"
    );
}

/// A deleted message's `seq` is never given out again, not even when it was the last.
pub async fn seq_never_reused_after_delete(store: &dyn Store) {
    let u = new_user(store, "bella").await;
    let c = new_conversation(store, u.id, "c").await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(append(store, &c, "m").await);
    }
    let last = last.expect("appended");
    assert!(ok(
        store.delete_message(last.id, at(1)).await,
        "delete_message"
    ));
    let next = append(store, &c, "after delete").await;
    assert_eq!(
        next.seq, 4,
        "after deleting the message with seq 3 the next append must get 4, not reuse 3"
    );
    // Deleting every message does not reset the count either.
    for m in ok(
        store
            .list_messages(c.id, MessageOrder::default(), Limit::MAX)
            .await,
        "list_messages",
    ) {
        assert!(ok(
            store.delete_message(m.id, at(2)).await,
            "delete_message"
        ));
    }
    let now = ok(store.get_conversation(c.id).await, "get_conversation").expect("exists");
    assert_eq!(now.message_count, 0);
    assert_eq!(
        append(store, &c, "again").await.seq,
        5,
        "after deleting every message the next append must continue the numbering"
    );
}

/// Paging through messages oldest first and newest first, with every page size.
pub async fn list_messages_pages_both_ways(store: &dyn Store) {
    let u = new_user(store, "chris").await;
    let c = new_conversation(store, u.id, "c").await;
    let noise = new_conversation(store, u.id, "noise").await;
    let mut all = Vec::new();
    for i in 0..9 {
        all.push(append(store, &c, &format!("m{i}")).await);
        append(store, &noise, "noise").await;
    }
    // A gap in the numbering.
    let gone = all.remove(4);
    assert!(ok(
        store.delete_message(gone.id, at(1)).await,
        "delete_message"
    ));
    let key = |m: &Message| Some(u128::from(m.seq));
    let asc = |cursor: Option<u128>, limit: Limit| async move {
        let after = cursor.map(|c| u64::try_from(c).expect("a seq"));
        ok(
            store
                .list_messages(c.id, MessageOrder::Ascending { after }, limit)
                .await,
            "list_messages ascending",
        )
    };
    let desc = |cursor: Option<u128>, limit: Limit| async move {
        let before = cursor.map(|c| u64::try_from(c).expect("a seq"));
        ok(
            store
                .list_messages(c.id, MessageOrder::Descending { before }, limit)
                .await,
            "list_messages descending",
        )
    };
    let mut reversed = all.clone();
    reversed.reverse();
    for size in [1, 2, 3, 8, 9, 1000] {
        check_paging("list_messages ascending", &all, size, key, asc).await;
        check_paging("list_messages descending", &reversed, size, key, desc).await;
    }
}

/// A message cursor is a position: a deleted `seq`, 0, or one past the end all work.
pub async fn list_messages_cursor_need_not_exist(store: &dyn Store) {
    let u = new_user(store, "dora").await;
    let c = new_conversation(store, u.id, "c").await;
    let mut all = Vec::new();
    for i in 0..6 {
        all.push(append(store, &c, &format!("m{i}")).await);
    }
    let gone = all.remove(2); // seq 3
    assert!(ok(
        store.delete_message(gone.id, at(1)).await,
        "delete_message"
    ));
    let list = |order| async move {
        ok(
            store.list_messages(c.id, order, Limit::MAX).await,
            "list_messages",
        )
    };
    let seqs = |ms: Vec<Message>| ms.into_iter().map(|m| m.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(list(MessageOrder::Ascending { after: Some(3) }).await),
        vec![4, 5, 6],
        "ascending after a deleted seq"
    );
    assert_eq!(
        seqs(list(MessageOrder::Descending { before: Some(3) }).await),
        vec![2, 1],
        "descending before a deleted seq"
    );
    assert_eq!(
        seqs(list(MessageOrder::Ascending { after: Some(0) }).await),
        vec![1, 2, 4, 5, 6],
        "ascending after 0 is everything"
    );
    assert_eq!(
        seqs(list(MessageOrder::Descending { before: Some(0) }).await),
        Vec::<u64>::new(),
        "nothing comes before seq 0"
    );
    assert_eq!(
        seqs(list(MessageOrder::Ascending { after: Some(6) }).await),
        Vec::<u64>::new(),
        "nothing comes after the last seq"
    );
    assert_eq!(
        seqs(list(MessageOrder::Descending { before: Some(100) }).await),
        vec![6, 5, 4, 2, 1],
        "descending before a seq past the end is everything"
    );
    assert_eq!(
        seqs(
            list(MessageOrder::Descending {
                before: Some(u64::MAX)
            })
            .await
        ),
        vec![6, 5, 4, 2, 1],
        "descending before u64::MAX is everything"
    );
    assert_eq!(
        seqs(
            list(MessageOrder::Ascending {
                after: Some(u64::MAX)
            })
            .await
        ),
        Vec::<u64>::new(),
        "nothing comes after u64::MAX"
    );
}

/// Listing the messages of an unknown conversation answers an empty page, not an error.
pub async fn list_messages_of_unknown_conversation_is_empty(store: &dyn Store) {
    let u = new_user(store, "eve").await;
    let c = new_conversation(store, u.id, "c").await;
    append(store, &c, "m").await;
    for order in [
        MessageOrder::Ascending { after: None },
        MessageOrder::Descending { before: None },
        MessageOrder::Ascending { after: Some(0) },
    ] {
        assert!(
            ok(
                store
                    .list_messages(ConversationId::new(), order, Limit::MAX)
                    .await,
                "list_messages"
            )
            .is_empty(),
            "an unknown conversation has no messages"
        );
    }
}

/// Deleting a message deletes its attachments and no one else's.
pub async fn delete_message_cascades_to_attachments(store: &dyn Store) {
    let u = new_user(store, "fred").await;
    let c = new_conversation(store, u.id, "c").await;
    let doomed = append(store, &c, "doomed").await;
    let kept = append(store, &c, "kept").await;
    let da = [
        new_attachment(store, &doomed).await,
        new_attachment(store, &doomed).await,
    ];
    let ka = new_attachment(store, &kept).await;
    assert!(ok(
        store.delete_message(doomed.id, at(1)).await,
        "delete_message"
    ));
    for a in &da {
        assert_eq!(
            ok(store.get_attachment(a.id).await, "get_attachment"),
            None,
            "deleting a message must delete its attachments"
        );
    }
    assert!(
        ok(
            store.list_attachments(doomed.id, None, Limit::MAX).await,
            "list_attachments"
        )
        .is_empty(),
        "a deleted message has no attachments to list"
    );
    assert_eq!(
        ok(store.get_attachment(ka.id).await, "get_attachment"),
        Some(ka),
        "deleting a message must not touch another message's attachments"
    );
    expect_not_found(
        store.create_attachment(&attachment(&doomed)).await,
        Entity::Message,
        "create_attachment on a deleted message",
    );
}

// ----- attachments -----

/// An attachment reads back field for field.
pub async fn attachment_round_trip(store: &dyn Store) {
    let u = new_user(store, "gina").await;
    let c = new_conversation(store, u.id, "c").await;
    let m = append(store, &c, "m").await;
    let mut a = attachment(&m);
    a.file_type =
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document".to_owned();
    a.file_path = "s3://bucket/dïr/ファイル name (1).docx".to_owned();
    a.created_at = at(0);
    ok(store.create_attachment(&a).await, "create_attachment");
    let b = new_attachment(store, &m).await;
    for x in [&a, &b] {
        assert_eq!(
            ok(store.get_attachment(x.id).await, "get_attachment").as_ref(),
            Some(x),
            "get_attachment must read back every field exactly"
        );
    }
    assert_eq!(
        ok(
            store.get_attachment(AttachmentId::new()).await,
            "get_attachment"
        ),
        None
    );
}

/// An attachment whose message is missing, or whose conversation or user is not the
/// message's, is `NotFound(Message)` and leaves nothing behind.
pub async fn attachment_to_missing_or_mismatched_message_is_not_found(store: &dyn Store) {
    let u = new_user(store, "hank").await;
    let other = new_user(store, "iris").await;
    let c = new_conversation(store, u.id, "c").await;
    let c2 = new_conversation(store, u.id, "c2").await;
    let m = append(store, &c, "m").await;

    let mut missing = attachment(&m);
    missing.message_id = MessageId::new();
    let mut wrong_conversation = attachment(&m);
    wrong_conversation.conversation_id = c2.id;
    let mut wrong_user = attachment(&m);
    wrong_user.user_id = other.id;
    for (a, what) in [
        (&missing, "create_attachment on a missing message"),
        (
            &wrong_conversation,
            "create_attachment naming another conversation",
        ),
        (&wrong_user, "create_attachment naming another user"),
    ] {
        expect_not_found(store.create_attachment(a).await, Entity::Message, what);
        assert_eq!(
            ok(store.get_attachment(a.id).await, "get_attachment"),
            None,
            "{what}: a refused attachment must leave nothing behind"
        );
    }
    assert!(
        ok(
            store.list_attachments(m.id, None, Limit::MAX).await,
            "list_attachments"
        )
        .is_empty()
    );
}

/// Adding an attachment whose id is taken is `Conflict { Attachment, "id" }`.
pub async fn attachment_id_taken_is_conflict(store: &dyn Store) {
    let u = new_user(store, "jack").await;
    let c = new_conversation(store, u.id, "c").await;
    let m = append(store, &c, "m").await;
    let m2 = append(store, &c, "m2").await;
    let first = new_attachment(store, &m).await;
    for target in [&m, &m2] {
        let mut dup = attachment(target);
        dup.id = first.id;
        dup.file_path = "elsewhere".to_owned();
        expect_conflict(
            store.create_attachment(&dup).await,
            Entity::Attachment,
            "id",
            "create_attachment with a taken id",
        );
    }
    assert_eq!(
        ok(store.get_attachment(first.id).await, "get_attachment"),
        Some(first),
        "a refused attachment must not change the first"
    );
    assert!(
        ok(
            store.list_attachments(m2.id, None, Limit::MAX).await,
            "list_attachments"
        )
        .is_empty()
    );
}

/// Paging through a message's attachments by ascending id.
pub async fn list_attachments_pages(store: &dyn Store) {
    let u = new_user(store, "kate").await;
    let c = new_conversation(store, u.id, "c").await;
    let m = append(store, &c, "m").await;
    let noise = append(store, &c, "noise").await;
    let mut all = Vec::new();
    for _ in 0..7 {
        all.push(new_attachment(store, &m).await);
        new_attachment(store, &noise).await;
    }
    let gone = all.remove(3);
    assert!(ok(
        store.delete_attachment(gone.id).await,
        "delete_attachment"
    ));
    let key = |a: &Attachment| Some(a.id.as_uuid().as_u128());
    let read = |cursor: Option<u128>, limit: Limit| async move {
        let after = cursor.map(|c| AttachmentId::from_uuid(uuid::Uuid::from_u128(c)));
        ok(
            store.list_attachments(m.id, after, limit).await,
            "list_attachments",
        )
    };
    for size in [1, 2, 3, 6, 1000] {
        check_paging("list_attachments", &all, size, key, read).await;
    }
    let after_gone: Vec<_> = all.iter().filter(|a| a.id > gone.id).cloned().collect();
    assert_eq!(
        ok(
            store
                .list_attachments(m.id, Some(gone.id), Limit::MAX)
                .await,
            "list_attachments"
        ),
        after_gone,
        "a cursor naming a deleted attachment must page from its position"
    );
    assert!(
        ok(
            store
                .list_attachments(m.id, Some(AttachmentId::new()), Limit::MAX)
                .await,
            "list_attachments"
        )
        .is_empty(),
        "nothing comes after an id newer than every attachment"
    );
    assert!(
        ok(
            store
                .list_attachments(MessageId::new(), None, Limit::MAX)
                .await,
            "list_attachments"
        )
        .is_empty(),
        "an unknown message has no attachments"
    );
}

/// Deleting an attachment answers `true` once, removes it and nothing else.
pub async fn delete_attachment(store: &dyn Store) {
    let u = new_user(store, "leo").await;
    let c = new_conversation(store, u.id, "c").await;
    let m = append(store, &c, "m").await;
    let a = new_attachment(store, &m).await;
    let b = new_attachment(store, &m).await;
    assert!(
        ok(store.delete_attachment(a.id).await, "delete_attachment"),
        "deleting an existing attachment must answer true"
    );
    assert_eq!(ok(store.get_attachment(a.id).await, "get_attachment"), None);
    assert!(
        !ok(store.delete_attachment(a.id).await, "delete_attachment"),
        "deleting a deleted attachment must answer false"
    );
    assert!(!ok(
        store.delete_attachment(AttachmentId::new()).await,
        "delete_attachment"
    ));
    assert_eq!(
        ok(
            store.list_attachments(m.id, None, Limit::MAX).await,
            "list_attachments"
        ),
        vec![b],
        "deleting one attachment must leave the others"
    );
    assert_eq!(
        ok(store.get_message(m.id).await, "get_message"),
        Some(m),
        "deleting an attachment must not touch its message"
    );
}

// ----- providers -----

/// Providers, shared and owned, read back field for field.
pub async fn provider_round_trip(store: &dyn Store) {
    let u = new_user(store, "mona").await;
    let mut shared = provider(None, "Ünïcode Prövider 🤖");
    shared.api_endpoint = "http://localhost:11434/api?x=1&y=ü#frag".to_owned();
    shared.created_at = at(0);
    ok(store.create_provider(&shared).await, "create_provider");
    let own = new_provider(store, Some(u.id), "mine").await;
    for p in [&shared, &own] {
        assert_eq!(
            ok(store.get_provider(p.id).await, "get_provider").as_ref(),
            Some(p),
            "get_provider must read back every field exactly"
        );
    }
    assert_eq!(
        ok(store.get_provider(ProviderId::new()).await, "get_provider"),
        None
    );
}

/// Provider names are unique per owner ignoring Unicode case (by
/// [`provider_name_key`]), shared providers being one owner; a deleted provider's name is
/// free again.
pub async fn provider_name_unique_per_owner_ignoring_case(store: &dyn Store) {
    let u = new_user(store, "nora").await;
    for owner in [None, Some(u.id)] {
        let first = new_provider(store, owner, "ÜberAI").await;
        for taken in ["ÜberAI", "überai", "ÜBERAI", "üBeRaI"] {
            expect_conflict(
                store.create_provider(&provider(owner, taken)).await,
                Entity::Provider,
                "name",
                &format!("create_provider({taken:?}) after \"ÜberAI\" for the same owner"),
            );
        }
        // Names whose keys differ are different names.
        for (a, b) in [
            ("ΟΔΟΣ", "οδοσ"),
            ("Straße", "STRASSE"),
            ("İstanbul", "istanbul"),
        ] {
            new_provider(store, owner, a).await;
            let result = store.create_provider(&provider(owner, b)).await;
            if provider_name_key(a) == provider_name_key(b) {
                expect_conflict(
                    result,
                    Entity::Provider,
                    "name",
                    &format!("create_provider({b:?}) after {a:?}, which has the same key"),
                );
            } else {
                ok(
                    result,
                    &format!("create_provider({b:?}) after {a:?}, which has another key"),
                );
            }
        }
        assert!(ok(store.delete_provider(first.id).await, "delete_provider"));
        new_provider(store, owner, "überai").await;
    }
}

/// The same name is fine for different owners, and for a user and the shared set.
pub async fn provider_same_name_for_different_owners(store: &dyn Store) {
    let a = new_user(store, "olga").await;
    let b = new_user(store, "pavel").await;
    let shared = new_provider(store, None, "OpenAI").await;
    let pa = new_provider(store, Some(a.id), "OpenAI").await;
    let pb = new_provider(store, Some(b.id), "openai").await;
    for p in [&shared, &pa, &pb] {
        assert_eq!(
            ok(store.get_provider(p.id).await, "get_provider").as_ref(),
            Some(p)
        );
    }
}

/// Adding a provider whose id is taken is `Conflict { Provider, "id" }`.
pub async fn provider_id_taken_is_conflict(store: &dyn Store) {
    let u = new_user(store, "quinn").await;
    let first = new_provider(store, None, "first").await;
    for owner in [None, Some(u.id)] {
        let mut dup = provider(owner, "a different name");
        dup.id = first.id;
        expect_conflict(
            store.create_provider(&dup).await,
            Entity::Provider,
            "id",
            "create_provider with a taken id",
        );
    }
    assert_eq!(
        ok(store.get_provider(first.id).await, "get_provider"),
        Some(first)
    );
    // The refused provider's name is not taken.
    new_provider(store, None, "a different name").await;
    new_provider(store, Some(u.id), "a different name").await;
}

/// `list_providers` answers the shared providers and the user's own, by ascending id, and
/// never another user's.
pub async fn list_providers_shared_and_own(store: &dyn Store) {
    let a = new_user(store, "rosa").await;
    let b = new_user(store, "sam").await;
    let mut seen_by_a = Vec::new();
    let mut seen_by_b = Vec::new();
    for i in 0..3 {
        let s = new_provider(store, None, &format!("shared{i}")).await;
        seen_by_a.push(s.clone());
        seen_by_b.push(s);
        seen_by_a.push(new_provider(store, Some(a.id), &format!("a{i}")).await);
        seen_by_b.push(new_provider(store, Some(b.id), &format!("b{i}")).await);
    }
    assert_eq!(
        ok(
            store.list_providers(a.id, None, Limit::DEFAULT).await,
            "list_providers"
        ),
        seen_by_a,
        "list_providers must answer the shared providers and the user's own, by id"
    );
    assert_eq!(
        ok(
            store.list_providers(b.id, None, Limit::DEFAULT).await,
            "list_providers"
        ),
        seen_by_b
    );
    let shared_only: Vec<_> = seen_by_a
        .iter()
        .filter(|p| p.owner_id.is_none())
        .cloned()
        .collect();
    assert_eq!(
        ok(
            store
                .list_providers(UserId::new(), None, Limit::DEFAULT)
                .await,
            "list_providers"
        ),
        shared_only,
        "a user with no providers of their own sees the shared ones"
    );
}

/// Paging through providers, where shared and own ones interleave.
pub async fn list_providers_pages(store: &dyn Store) {
    let a = new_user(store, "tina").await;
    let b = new_user(store, "uma").await;
    let mut all = Vec::new();
    for i in 0..5 {
        all.push(new_provider(store, None, &format!("s{i}")).await);
        new_provider(store, Some(b.id), &format!("b{i}")).await;
        all.push(new_provider(store, Some(a.id), &format!("a{i}")).await);
    }
    let gone = all.remove(5);
    assert!(ok(store.delete_provider(gone.id).await, "delete_provider"));
    let key = |p: &LlmProvider| Some(p.id.as_uuid().as_u128());
    let read = |cursor: Option<u128>, limit: Limit| async move {
        let after = cursor.map(|c| ProviderId::from_uuid(uuid::Uuid::from_u128(c)));
        ok(
            store.list_providers(a.id, after, limit).await,
            "list_providers",
        )
    };
    for size in [1, 2, 3, 4, 9, 1000] {
        check_paging("list_providers", &all, size, key, read).await;
    }
    let after_gone: Vec<_> = all.iter().filter(|p| p.id > gone.id).cloned().collect();
    assert_eq!(
        ok(
            store.list_providers(a.id, Some(gone.id), Limit::MAX).await,
            "list_providers"
        ),
        after_gone,
        "a cursor naming a deleted provider must page from its position"
    );
    assert_eq!(
        ok(
            store
                .list_providers(a.id, Some(ProviderId::from_bytes([0; 16])), limit(4))
                .await,
            "list_providers"
        ),
        all[..4].to_vec(),
        "a cursor below every id answers the first page"
    );
}

/// Deleting a provider removes it and every config that uses it, answers `true` once, and
/// leaves other providers' configs be.
pub async fn delete_provider_cascades_to_configs(store: &dyn Store) {
    let a = new_user(store, "vera").await;
    let b = new_user(store, "will").await;
    let doomed = new_provider(store, None, "doomed").await;
    let kept = new_provider(store, None, "kept").await;
    for u in [&a, &b] {
        ok(
            store.create_config(&config(u.id, doomed.id)).await,
            "create_config",
        );
    }
    let kc = config(a.id, kept.id);
    ok(store.create_config(&kc).await, "create_config");
    assert!(
        ok(store.delete_provider(doomed.id).await, "delete_provider"),
        "deleting an existing provider must answer true"
    );
    assert_eq!(
        ok(store.get_provider(doomed.id).await, "get_provider"),
        None
    );
    for u in [&a, &b] {
        assert_eq!(
            ok(store.get_config(u.id, doomed.id).await, "get_config"),
            None,
            "deleting a provider must delete the configs that use it"
        );
    }
    assert_eq!(
        ok(store.get_config(a.id, kept.id).await, "get_config"),
        Some(kc),
        "deleting a provider must not touch other providers' configs"
    );
    assert!(
        !ok(store.delete_provider(doomed.id).await, "delete_provider"),
        "deleting a deleted provider must answer false"
    );
    expect_not_found(
        store.create_config(&config(a.id, doomed.id)).await,
        Entity::Provider,
        "create_config for a deleted provider",
    );
    assert!(
        !ok(
            store.list_providers(a.id, None, Limit::MAX).await,
            "list_providers"
        )
        .iter()
        .any(|p| p.id == doomed.id),
        "a deleted provider must not be listed"
    );
}

// ----- configs -----

/// A config reads back field for field, with and without a hint.
pub async fn config_round_trip(store: &dyn Store) {
    let u = new_user(store, "xavier").await;
    let p1 = new_provider(store, None, "p1").await;
    let p2 = new_provider(store, Some(u.id), "p2").await;
    let mut c1 = config(u.id, p1.id);
    c1.sealed_key = SealedKey((0..=255).collect());
    c1.created_at = at(0);
    c1.updated_at = at(5);
    let mut c2 = config(u.id, p2.id);
    c2.api_key_hint = None;
    for c in [&c1, &c2] {
        ok(store.create_config(c).await, "create_config");
    }
    for c in [&c1, &c2] {
        assert_eq!(
            ok(
                store.get_config(c.user_id, c.provider_id).await,
                "get_config"
            )
            .as_ref(),
            Some(c),
            "get_config must read back every field exactly"
        );
    }
    assert_eq!(
        ok(store.get_config(UserId::new(), p1.id).await, "get_config"),
        None
    );
    assert_eq!(
        ok(
            store.get_config(u.id, ProviderId::new()).await,
            "get_config"
        ),
        None
    );
}

/// A config for a provider that does not exist is `NotFound(Provider)`.
pub async fn config_for_missing_provider_is_not_found(store: &dyn Store) {
    let u = new_user(store, "yara").await;
    let missing = ProviderId::new();
    expect_not_found(
        store.create_config(&config(u.id, missing)).await,
        Entity::Provider,
        "create_config for a missing provider",
    );
    assert_eq!(
        ok(store.get_config(u.id, missing).await, "get_config"),
        None,
        "a refused config must leave nothing behind"
    );
}

/// One config per (user, provider): a second is `Conflict { Config, "provider_id" }`; the
/// same provider for another user is fine; a taken id is `Conflict { Config, "id" }`.
pub async fn one_config_per_user_and_provider(store: &dyn Store) {
    let a = new_user(store, "zack").await;
    let b = new_user(store, "amy").await;
    let p = new_provider(store, None, "p").await;
    let q = new_provider(store, None, "q").await;
    let first = config(a.id, p.id);
    ok(store.create_config(&first).await, "create_config");
    let mut second = config(a.id, p.id);
    second.sealed_key = SealedKey(vec![9, 9, 9]);
    expect_conflict(
        store.create_config(&second).await,
        Entity::Config,
        "provider_id",
        "a second create_config for the same user and provider",
    );
    assert_eq!(
        ok(store.get_config(a.id, p.id).await, "get_config"),
        Some(first.clone()),
        "a refused config must not replace the first"
    );
    ok(
        store.create_config(&config(b.id, p.id)).await,
        "create_config for the same provider and another user",
    );
    ok(
        store.create_config(&config(a.id, q.id)).await,
        "create_config for the same user and another provider",
    );
    let mut same_id = config(b.id, q.id);
    same_id.id = first.id;
    expect_conflict(
        store.create_config(&same_id).await,
        Entity::Config,
        "id",
        "create_config with a taken id",
    );
    assert_eq!(
        ok(store.get_config(b.id, q.id).await, "get_config"),
        None,
        "a refused config must leave nothing behind"
    );
}

/// `update_config` replaces the sealed key and hint and sets `updated_at`, answers the
/// result, and answers `None` for a config that does not exist.
pub async fn update_config(store: &dyn Store) {
    let u = new_user(store, "ben").await;
    let p = new_provider(store, None, "p").await;
    let c = config(u.id, p.id);
    ok(store.create_config(&c).await, "create_config");
    let new_key = SealedKey(vec![2, 3, 5, 7, 11, 13]);
    let updated = ok(
        store
            .update_config(u.id, p.id, new_key.clone(), None, at(77))
            .await,
        "update_config",
    )
    .expect("update_config of an existing config must answer it");
    let expected = crate::model::UserLlmConfig {
        sealed_key: new_key,
        api_key_hint: None,
        updated_at: at(77),
        ..c.clone()
    };
    assert_eq!(
        updated, expected,
        "update_config must change the key, the hint and updated_at only"
    );
    assert_eq!(
        ok(store.get_config(u.id, p.id).await, "get_config"),
        Some(expected.clone())
    );
    let again = ok(
        store
            .update_config(u.id, p.id, SealedKey(vec![1]), Some("…wxyz".into()), at(78))
            .await,
        "update_config",
    )
    .expect("exists");
    assert_eq!(again.api_key_hint.as_deref(), Some("…wxyz"));
    assert_eq!(again.created_at, c.created_at, "created_at must not move");
    assert_eq!(
        ok(
            store
                .update_config(UserId::new(), p.id, SealedKey(vec![1]), None, at(79))
                .await,
            "update_config"
        ),
        None,
        "updating a missing config must answer None"
    );
    assert_eq!(
        ok(
            store
                .update_config(u.id, ProviderId::new(), SealedKey(vec![1]), None, at(79))
                .await,
            "update_config"
        ),
        None,
        "updating a missing config must answer None"
    );
}

/// Deleting a config answers `true` once and removes only it; the pair is free again.
pub async fn delete_config(store: &dyn Store) {
    let a = new_user(store, "cleo").await;
    let b = new_user(store, "dan").await;
    let p = new_provider(store, None, "p").await;
    let ca = config(a.id, p.id);
    let cb = config(b.id, p.id);
    ok(store.create_config(&ca).await, "create_config");
    ok(store.create_config(&cb).await, "create_config");
    assert!(
        ok(store.delete_config(a.id, p.id).await, "delete_config"),
        "deleting an existing config must answer true"
    );
    assert_eq!(ok(store.get_config(a.id, p.id).await, "get_config"), None);
    assert!(
        !ok(store.delete_config(a.id, p.id).await, "delete_config"),
        "deleting a deleted config must answer false"
    );
    assert_eq!(
        ok(store.get_config(b.id, p.id).await, "get_config"),
        Some(cb),
        "deleting one user's config must leave another's"
    );
    assert_eq!(
        ok(store.get_provider(p.id).await, "get_provider"),
        Some(p.clone()),
        "deleting a config must not touch its provider"
    );
    ok(
        store.create_config(&config(a.id, p.id)).await,
        "create_config after deleting the previous one",
    );
}
