//! The operators' calls: scanning every record, importing records exactly as given,
//! disabling users, and finding conversations a retention policy removes.
#![deny(dead_code)]

use std::collections::HashSet;
use std::fmt::Debug;

use crate::error::{Error, Forbidden};
use crate::ids::ConversationId;
use crate::model::{Conversation, Message, Role};
use crate::records::{Record, RecordKind, ScanCursor, UserAccount};
use crate::store::{MessageOrder, Store};
use crate::testkit::fixtures::{
    at, attachment, config, conversation, draft, new_user, ok, provider, session, user,
};
use crate::validation::Limit;

/// Every record of `kind`, read in pages of `page`, checking that the keys go up strictly
/// from page to page (no record twice, none skipped over by a page boundary).
pub(crate) async fn scan_all(store: &dyn Store, kind: RecordKind, page: usize) -> Vec<Record> {
    let limit = Limit::new(page as u64).expect("a valid page size");
    let mut cursor = ScanCursor::start(kind);
    let mut seen: Vec<Record> = Vec::new();
    loop {
        let what = format!("scan({cursor:?}, {page})");
        let batch = ok(store.scan(cursor, limit).await, &what);
        assert!(
            batch.len() <= page,
            "{what}: answered {} records",
            batch.len()
        );
        for record in &batch {
            assert_eq!(
                record.kind(),
                kind,
                "{what}: a record of another kind: {record:?}"
            );
        }
        let Some(last) = batch.last() else {
            return seen;
        };
        cursor = last.cursor();
        seen.extend(batch);
    }
}

/// `items`' keys in the scan's order must be strictly increasing.
fn assert_strictly_increasing<K: Ord + Debug>(keys: &[K], what: &str) {
    for pair in keys.windows(2) {
        assert!(
            pair[0] < pair[1],
            "{what}: keys must go up strictly, {:?} came before {:?}",
            pair[0],
            pair[1]
        );
    }
}

fn sort_key(record: &Record) -> Vec<u8> {
    match record.cursor() {
        ScanCursor::Users(Some(id)) => id.to_bytes().to_vec(),
        ScanCursor::Sessions(Some(token)) => token.0.to_vec(),
        ScanCursor::Providers(Some(id)) => id.to_bytes().to_vec(),
        ScanCursor::Configs(Some((u, p))) => [u.to_bytes(), p.to_bytes()].concat(),
        ScanCursor::Conversations(Some(id)) => id.to_bytes().to_vec(),
        ScanCursor::Messages(Some((c, seq))) => [&c.to_bytes()[..], &seq.to_be_bytes()].concat(),
        ScanCursor::Attachments(Some(id)) => id.to_bytes().to_vec(),
        other => panic!("a record's cursor always has a key, got {other:?}"),
    }
}

/// A store holding some of everything: two users (one disabled), sessions, a shared and a
/// private provider, configs, two conversations with messages (one deleted, so `seq` has
/// a gap) and attachments; and a third conversation deleted with all it held. Answers the
/// records the store must scan back.
async fn populate(store: &dyn Store) -> Vec<Record> {
    let ada = new_user(store, "scan_ada").await;
    let bob = new_user(store, "scan_bob").await;
    let mut expected = vec![
        Record::User(UserAccount {
            user: ada.clone(),
            disabled: false,
        }),
        Record::User(UserAccount {
            user: bob.clone(),
            disabled: true,
        }),
    ];
    for _ in 0..3 {
        let s = session(ada.id, at(3600));
        ok(store.create_session(&s).await, "create_session");
        expected.push(Record::Session(s));
    }
    let doomed = session(bob.id, at(3600));
    ok(store.create_session(&doomed).await, "create_session");
    assert!(ok(
        store.set_user_disabled(bob.id, true).await,
        "set_user_disabled"
    ));
    let shared = provider(None, "scan shared");
    let own = provider(Some(ada.id), "scan own");
    for p in [&shared, &own] {
        ok(store.create_provider(p).await, "create_provider");
        expected.push(Record::Provider(p.clone()));
    }
    for (u, p) in [(ada.id, shared.id), (ada.id, own.id), (bob.id, shared.id)] {
        let c = config(u, p);
        ok(store.create_config(&c).await, "create_config");
        expected.push(Record::Config(c));
    }
    for (owner, title, messages) in [(&ada, "first", 5), (&bob, "second", 3)] {
        let c = conversation(owner.id, title);
        ok(store.create_conversation(&c).await, "create_conversation");
        let mut kept = Vec::new();
        for i in 0..messages {
            let m = ok(
                store.append_message(draft(&c, &format!("m{i}"))).await,
                "append_message",
            );
            kept.push(m);
        }
        // Delete the second and the last: seq has a gap, and last_seq is above the last kept.
        for gone in [kept.remove(1), kept.pop().expect("messages")] {
            assert!(ok(
                store.delete_message(gone.id, at(7)).await,
                "delete_message"
            ));
        }
        for m in &kept {
            let a = attachment(m);
            ok(store.create_attachment(&a).await, "create_attachment");
            expected.push(Record::Attachment(a));
            expected.push(Record::Message(m.clone()));
        }
        let now = ok(store.get_conversation(c.id).await, "get_conversation")
            .expect("the conversation is there");
        expected.push(Record::Conversation {
            conversation: now,
            last_seq: messages,
        });
    }
    let gone = conversation(ada.id, "deleted");
    ok(
        store.create_conversation(&gone).await,
        "create_conversation",
    );
    let m = ok(
        store.append_message(draft(&gone, "x")).await,
        "append_message",
    );
    ok(
        store.create_attachment(&attachment(&m)).await,
        "create_attachment",
    );
    assert!(ok(
        store.delete_conversation(gone.id).await,
        "delete_conversation"
    ));
    expected
}

/// `scan` of every kind, in pages of 1, 2, 3 and 1000, sees every record exactly once,
/// complete and in key order: users with their disabled flag, sessions (none of a disabled
/// user), shared and private providers, configs with their sealed keys, conversations with
/// their counters and last `seq` (above the last message's after deletes), messages with
/// their `seq`s, attachments; nothing of a deleted conversation.
pub async fn scan_sees_every_record_once_in_key_order(store: &dyn Store) {
    let mut expected = populate(store).await;
    expected.sort_by_key(|r| (kind_index(r.kind()), sort_key(r)));
    for page in [1, 2, 3, 1000] {
        let mut got = Vec::new();
        for kind in RecordKind::ALL {
            let records = scan_all(store, kind, page).await;
            let keys: Vec<Vec<u8>> = records.iter().map(sort_key).collect();
            assert_strictly_increasing(&keys, &format!("scan of {kind:?} in pages of {page}"));
            got.extend(records);
        }
        assert_eq!(
            got, expected,
            "scan in pages of {page} must answer every record once, complete"
        );
    }
}

fn kind_index(kind: RecordKind) -> usize {
    RecordKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("every kind is listed")
}

/// Records made by hand (not through the create calls), imported into an empty store, read
/// back exactly: by `scan` and by the get and list calls. A conversation whose messages have
/// `seq` 2 and 5, `message_count` 2, `last_seq` 7 and an old `updated_at` keeps all of it,
/// and the next append gets `seq` 8, after the source's last `seq`, not after the count.
pub async fn import_keeps_every_field(store: &dyn Store) {
    let mut ada = user("import_ada");
    ada.created_at = at(-100);
    let bob = user("import_bob");
    let shared = provider(None, "import shared");
    let cfg = config(ada.id, shared.id);
    let s = session(ada.id, at(3600));
    let mut c = conversation(ada.id, "imported");
    c.created_at = at(-50);
    c.updated_at = at(-40);
    c.message_count = 2;
    let messages: Vec<Message> = [2u64, 5]
        .into_iter()
        .map(|seq| {
            let mut m = draft(&c, &format!("seq {seq}")).with_seq(seq);
            m.role = Role::Assistant;
            m.created_at = at(-45 + seq as i64);
            m
        })
        .collect();
    let a = attachment(&messages[1]);
    let mut records = vec![
        Record::User(UserAccount {
            user: ada.clone(),
            disabled: false,
        }),
        Record::User(UserAccount {
            user: bob.clone(),
            disabled: true,
        }),
        Record::Session(s.clone()),
        Record::Provider(shared.clone()),
        Record::Config(cfg.clone()),
        Record::Conversation {
            conversation: c.clone(),
            last_seq: 7,
        },
    ];
    records.extend(messages.iter().cloned().map(Record::Message));
    records.push(Record::Attachment(a.clone()));
    for record in &records {
        assert!(
            ok(store.import(record).await, &format!("import({record:?})")),
            "import of a new record must answer true: {record:?}"
        );
    }

    for kind in RecordKind::ALL {
        let want: Vec<&Record> = records.iter().filter(|r| r.kind() == kind).collect();
        let got = scan_all(store, kind, 1000).await;
        let mut want: Vec<Record> = want.into_iter().cloned().collect();
        want.sort_by_key(sort_key);
        assert_eq!(got, want, "{kind:?} must scan back exactly as imported");
    }
    assert_eq!(
        ok(store.get_conversation(c.id).await, "get_conversation"),
        Some(c.clone()),
        "an imported conversation keeps its counters and times; its messages do not move them"
    );
    assert_eq!(
        ok(
            store
                .list_messages(
                    c.id,
                    MessageOrder::default(),
                    Limit::new(10).expect("limit")
                )
                .await,
            "list_messages"
        ),
        messages,
        "imported messages keep their seq"
    );
    assert_eq!(
        ok(store.get_message(messages[0].id).await, "get_message"),
        Some(messages[0].clone())
    );
    assert_eq!(
        ok(store.get_session(&s.token_hash).await, "get_session"),
        Some(s)
    );
    assert_eq!(
        ok(store.get_config(ada.id, shared.id).await, "get_config"),
        Some(cfg),
        "a config keeps its sealed key as it was"
    );
    assert_eq!(
        ok(store.get_attachment(a.id).await, "get_attachment"),
        Some(a)
    );
    assert!(
        matches!(
            store.create_session(&session(bob.id, at(3600))).await,
            Err(Error::Forbidden(Forbidden::UserDisabled))
        ),
        "a user imported disabled cannot get a session"
    );
    let next = ok(
        store.append_message(draft(&c, "next")).await,
        "append_message",
    );
    assert_eq!(
        next.seq, 8,
        "the next append after an import continues after the imported last_seq"
    );
}

/// Importing a record that is already there (same id; for a session the same token hash,
/// for a config the same user and provider) answers `false` and keeps the first, even when
/// the second differs in every other field.
pub async fn import_twice_keeps_the_first(store: &dyn Store) {
    let first = populate(store).await;
    for record in &first {
        let mut other = record.clone();
        match &mut other {
            Record::User(a) => {
                a.user.email = Some("changed@example.com".to_owned());
                a.disabled = !a.disabled;
            }
            Record::Session(s) => s.expires_at = at(99_999),
            Record::Provider(p) => p.api_endpoint = "https://changed.example.com".to_owned(),
            Record::Config(c) => c.sealed_key.0 = vec![9, 9, 9],
            Record::Conversation {
                conversation,
                last_seq,
            } => {
                conversation.title = "changed".to_owned();
                *last_seq += 100;
            }
            Record::Message(m) => m.content = "changed".to_owned(),
            Record::Attachment(a) => a.file_path = "changed".to_owned(),
        }
        for again in [record, &other] {
            assert!(
                !ok(store.import(again).await, &format!("import({again:?})")),
                "importing a record that is there must answer false: {again:?}"
            );
        }
    }
    let mut expected = first;
    expected.sort_by_key(|r| (kind_index(r.kind()), sort_key(r)));
    let mut got = Vec::new();
    for kind in RecordKind::ALL {
        got.extend(scan_all(store, kind, 1000).await);
    }
    assert_eq!(
        got, expected,
        "the records first there must be kept as they were"
    );
}

/// Disabling a user removes all their sessions at once (another user's stay), makes
/// `create_session` refuse them with `Forbidden(UserDisabled)`, and shows in the scan;
/// enabling lets them have sessions again, without bringing the old ones back. An unknown
/// user answers `false`.
pub async fn disable_revokes_sessions_and_refuses_new_ones(store: &dyn Store) {
    let ada = new_user(store, "disable_ada").await;
    let bob = new_user(store, "disable_bob").await;
    let ada_sessions: Vec<_> = (0..3).map(|_| session(ada.id, at(3600))).collect();
    for s in &ada_sessions {
        ok(store.create_session(s).await, "create_session");
    }
    let bobs = session(bob.id, at(3600));
    ok(store.create_session(&bobs).await, "create_session");

    assert!(ok(
        store.set_user_disabled(ada.id, true).await,
        "set_user_disabled"
    ));
    for s in &ada_sessions {
        assert_eq!(
            ok(store.get_session(&s.token_hash).await, "get_session"),
            None,
            "a disabled user's sessions must be gone"
        );
    }
    assert_eq!(
        ok(store.get_session(&bobs.token_hash).await, "get_session"),
        Some(bobs.clone()),
        "another user's session must stay"
    );
    let refused = store.create_session(&session(ada.id, at(3600))).await;
    assert!(
        matches!(refused, Err(Error::Forbidden(Forbidden::UserDisabled))),
        "create_session for a disabled user must be Forbidden(UserDisabled), got {refused:?}"
    );
    let sessions = scan_all(store, RecordKind::Session, 1000).await;
    assert_eq!(sessions, vec![Record::Session(bobs)]);
    let users = scan_all(store, RecordKind::User, 1000).await;
    assert!(
        users.contains(&Record::User(UserAccount {
            user: ada.clone(),
            disabled: true
        })),
        "scan must show the user disabled: {users:?}"
    );
    // Disabling again is harmless.
    assert!(ok(
        store.set_user_disabled(ada.id, true).await,
        "set_user_disabled"
    ));

    assert!(ok(
        store.set_user_disabled(ada.id, false).await,
        "set_user_disabled"
    ));
    let again = session(ada.id, at(3600));
    ok(
        store.create_session(&again).await,
        "create_session after enabling",
    );
    assert_eq!(
        ok(store.get_session(&again.token_hash).await, "get_session"),
        Some(again)
    );
    assert_eq!(
        ok(
            store.get_session(&ada_sessions[0].token_hash).await,
            "get_session"
        ),
        None,
        "enabling must not bring revoked sessions back"
    );
    assert!(
        !ok(
            store
                .set_user_disabled(user("disable_nobody").id, true)
                .await,
            "set_user_disabled"
        ),
        "disabling an unknown user answers false"
    );
}

/// `list_idle_conversations` answers exactly the conversations (of every user) whose
/// `updated_at` is before the cutoff, by id, in pages that neither skip nor repeat; an
/// append moves a conversation out of it.
pub async fn idle_conversations_are_only_the_old_ones(store: &dyn Store) {
    let ada = new_user(store, "idle_ada").await;
    let bob = new_user(store, "idle_bob").await;
    let mut old = HashSet::new();
    let mut all = Vec::new();
    for (i, owner) in [&ada, &bob, &ada, &bob, &ada, &bob].into_iter().enumerate() {
        let mut c = conversation(owner.id, &format!("idle {i}"));
        let age = if i % 2 == 0 { -1000 } else { 1000 };
        c.created_at = at(age);
        c.updated_at = at(age);
        ok(store.create_conversation(&c).await, "create_conversation");
        if age < 0 {
            old.insert(c.id);
        }
        all.push(c);
    }
    // Old by creation, but a recent append makes it young.
    let revived = all[0].clone();
    let mut d = draft(&revived, "still here");
    d.created_at = at(500);
    ok(store.append_message(d).await, "append_message");
    old.remove(&revived.id);
    // Exactly at the cutoff is not before it.
    let mut edge = conversation(ada.id, "edge");
    edge.created_at = at(0);
    edge.updated_at = at(0);
    ok(
        store.create_conversation(&edge).await,
        "create_conversation",
    );

    for page in [1, 2, 100] {
        let limit = Limit::new(page).expect("a valid limit");
        let mut after: Option<ConversationId> = None;
        let mut got: Vec<Conversation> = Vec::new();
        loop {
            let batch = ok(
                store.list_idle_conversations(at(0), after, limit).await,
                "list_idle_conversations",
            );
            let Some(last) = batch.last() else { break };
            after = Some(last.id);
            got.extend(batch);
        }
        let ids: Vec<ConversationId> = got.iter().map(|c| c.id).collect();
        assert_strictly_increasing(&ids, "list_idle_conversations");
        assert_eq!(
            ids.iter().copied().collect::<HashSet<_>>(),
            old,
            "pages of {page}: exactly the conversations not updated since the cutoff"
        );
    }
}
