//! Inputs beyond the habits of the other cases and the model: names outside ASCII, records
//! whose times are not the ones a service would make, times that go backwards. A store is
//! held to what the contract says, not to what callers usually send.
#![deny(dead_code)]

use crate::error::Entity;
use crate::store::{MessageOrder, Store};
use crate::testkit::fixtures::{at, conversation, draft, expect_conflict, ok, user};
use crate::validation::Limit;

/// Usernames are unique ignoring *ASCII* case only: names that differ only in the case of
/// a non-ASCII letter (`jürgen`, `jÜrgen`) are two users, each found by its own name, and
/// the Kelvin sign `K` (U+212A), which Unicode lower-cases to `k`, is not `K`.
pub async fn usernames_differing_only_in_non_ascii_case_are_distinct(store: &dyn Store) {
    let pairs = [
        ("jürgen", "jÜrgen"),
        ("σοφία", "ΣΟΦΊΑ"),
        ("kelvin", "\u{212A}elvin"),
        ("\u{212A}", "K"),
    ];
    for (first, second) in pairs {
        let a = user(first);
        let b = user(second);
        ok(
            store.create_user(&a).await,
            &format!("create_user({first:?})"),
        );
        ok(
            store.create_user(&b).await,
            &format!(
                "create_user({second:?}) after {first:?}: the two names differ beyond ASCII \
                 case, so they are different usernames"
            ),
        );
        for u in [&a, &b] {
            let what = format!("get_user_by_username({:?})", u.username);
            assert_eq!(
                ok(store.get_user_by_username(&u.username).await, &what).as_ref(),
                Some(u),
                "{what} must find the user of exactly that username: of {first:?} and \
                 {second:?}, which differ beyond ASCII case"
            );
        }
    }
    // ASCII case still folds around the non-ASCII letters.
    expect_conflict(
        store.create_user(&user("JüRGEN")).await,
        Entity::User,
        "username",
        "create_user(\"JüRGEN\") after \"jürgen\" (the same username ignoring ASCII case)",
    );
    let kelvin = ok(
        store.get_user_by_username("\u{212A}ELVIN").await,
        "get_user_by_username(\"\\u{212A}ELVIN\")",
    );
    assert_eq!(
        kelvin.map(|u| u.username),
        Some("\u{212A}elvin".to_owned()),
        "get_user_by_username(\"\\u{{212A}}ELVIN\") must find the username with the Kelvin \
         sign, ignoring the ASCII case of the rest"
    );
}

/// A conversation created with an `updated_at` later than its `created_at` (as an import
/// of old data makes) reads back with both times as given, alone and in a list.
pub async fn conversation_created_with_later_updated_at_round_trips(store: &dyn Store) {
    let owner = user("importer");
    ok(store.create_user(&owner).await, "create_user");
    let mut c = conversation(owner.id, "imported");
    c.created_at = at(-86_400);
    c.updated_at = at(3_600);
    ok(store.create_conversation(&c).await, "create_conversation");
    assert_eq!(
        ok(store.get_conversation(c.id).await, "get_conversation").as_ref(),
        Some(&c),
        "a conversation created with updated_at later than created_at must read back with \
         both times as given"
    );
    assert_eq!(
        ok(
            store.list_conversations(owner.id, None, Limit::MAX).await,
            "list_conversations"
        ),
        vec![c],
        "list_conversations must answer the updated_at the conversation was created with"
    );
}

/// Times that go backwards: an append dated before the conversation was created, then
/// earlier still, a delete and a rename earlier again. `updated_at` is each time the time
/// given, never the greatest seen, and every message keeps its own `created_at`.
pub async fn appends_with_times_going_backwards(store: &dyn Store) {
    let owner = user("time_traveller");
    ok(store.create_user(&owner).await, "create_user");
    let mut c = conversation(owner.id, "backwards");
    c.created_at = at(1_000);
    c.updated_at = at(1_000);
    ok(store.create_conversation(&c).await, "create_conversation");
    let mut appended = Vec::new();
    for secs in [500, 100, -3_600] {
        let mut d = draft(&c, "earlier");
        d.created_at = at(secs);
        appended.push(ok(store.append_message(d).await, "append_message"));
        let now = ok(store.get_conversation(c.id).await, "get_conversation").expect("exists");
        assert_eq!(
            now.updated_at,
            at(secs),
            "updated_at must be the created_at of the message just appended, even when it \
             is earlier than the conversation's times so far"
        );
    }
    let listed = ok(
        store
            .list_messages(c.id, MessageOrder::default(), Limit::MAX)
            .await,
        "list_messages",
    );
    assert_eq!(
        listed, appended,
        "messages appended with times going backwards must keep their seq order and times"
    );
    ok(
        store.delete_message(appended[0].id, at(-7_200)).await,
        "delete_message",
    );
    let now = ok(store.get_conversation(c.id).await, "get_conversation").expect("exists");
    assert_eq!(
        now.updated_at,
        at(-7_200),
        "delete_message must set updated_at to the time given, even an earlier one"
    );
    let renamed = ok(
        store.rename_conversation(c.id, "renamed", at(-9_000)).await,
        "rename_conversation",
    )
    .expect("exists");
    assert_eq!(
        renamed.updated_at,
        at(-9_000),
        "rename_conversation must set updated_at to the time given, even an earlier one"
    );
    assert_eq!(
        renamed.created_at,
        at(1_000),
        "created_at must not move, whatever the times of later changes"
    );
}
