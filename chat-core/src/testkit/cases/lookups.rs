//! Lookups by strings no store holds: what a hostile client can put in a login form reaches
//! the store as a lookup string unless the caller filters it, and a store must answer such a
//! lookup like any other miss, never with an error (which the server would turn into a 500).
//!
//! U+0000 is the string every store must be held to: PostgreSQL refuses it in any `text`
//! parameter, so a store over PostgreSQL has to answer it without asking the database.
//! Every `&str` lookup of the [`Store`] trait belongs here; `get_user_by_username` is the
//! only one today.
#![deny(dead_code)]

use crate::store::Store;
use crate::testkit::fixtures::{new_user, ok};

/// `get_user_by_username` with U+0000 anywhere in the name (alone, before, inside or after a
/// registered name, in any case) answers `Ok(None)`, and the user is still found by the name
/// as registered afterwards.
pub async fn lookup_with_nul_finds_nothing(store: &dyn Store) {
    let registered = new_user(store, "nul_target").await;
    for name in [
        "\0",
        "\0\0\0",
        "nul_target\0",
        "\0nul_target",
        "nul\0target",
        "NUL_TARGET\0",
        "nul_target\0nul_target",
    ] {
        let what = format!("get_user_by_username({name:?})");
        assert_eq!(
            ok(store.get_user_by_username(name).await, &what),
            None,
            "{what} must find nobody: no registered name holds U+0000"
        );
    }
    assert_eq!(
        ok(
            store.get_user_by_username("nul_target").await,
            "get_user_by_username after lookups with U+0000"
        ),
        Some(registered),
        "lookups with U+0000 must leave the store serving the user as before"
    );
}
