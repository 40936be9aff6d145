//! The whole test kit against `MemoryStore`, the reference store.

use std::process::Command;

use chat_core::testkit::{CASES, CaseKind, MemoryStoreFactory};

chat_core::store_tests!(memory_store, MemoryStoreFactory);

/// `store_tests!` generates a test for every case of [`CASES`] (but the durability case,
/// which needs `durable`) under the case's name, and nothing else: asked of this very test
/// binary, which lists the tests it really holds. (That every case function is on the list
/// the build itself checks: a function left off it is dead code, which is denied.)
#[test]
fn every_case_is_generated() {
    let out = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["--list", "--format", "terse"])
        .output()
        .expect("the test binary lists its tests");
    assert!(out.status.success(), "--list failed: {out:?}");
    let listing = String::from_utf8(out.stdout).expect("a UTF-8 listing");
    let mut generated: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .filter_map(|name| name.strip_prefix("memory_store::"))
        .collect();
    let mut expected: Vec<&str> = CASES
        .iter()
        // The memory store is not durable, and has no commit to make fail.
        .filter(|case| !matches!(case.kind, CaseKind::Durable | CaseKind::CommitFault))
        .map(|case| case.name)
        .collect();
    generated.sort_unstable();
    expected.sort_unstable();
    assert_eq!(generated, expected);
}
