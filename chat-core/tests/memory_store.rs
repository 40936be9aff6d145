//! The whole test kit against `MemoryStore`, the reference store.

use chat_core::testkit::MemoryStoreFactory;

chat_core::store_tests!(memory_store, MemoryStoreFactory);

/// Every public case is in its module's `ALL` list and in the macro, and nothing else is:
/// a case added to the kit but not to the macro would silently never run.
#[test]
fn every_case_is_listed_and_generated() {
    let macros = include_str!("../src/testkit/macros.rs");
    for (source, all) in [
        (
            include_str!("../src/testkit/cases.rs"),
            chat_core::testkit::cases::ALL,
        ),
        (
            include_str!("../src/testkit/concurrency.rs"),
            chat_core::testkit::concurrency::ALL,
        ),
    ] {
        let defined: Vec<&str> = source
            .lines()
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split(['(', '<']).next())
            .collect();
        assert_eq!(defined, all, "the ALL list differs from the cases defined");
        for name in all {
            assert!(
                macros.contains(&format!("                {name},\n")),
                "store_tests! does not generate {name}"
            );
        }
    }
}
