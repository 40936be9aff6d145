//! [`store_tests!`](crate::store_tests): the whole suite as named tests.

/// Expands into a module of tests that run the whole [`testkit`](crate::testkit) suite
/// against the stores of a [`StoreFactory`](crate::testkit::StoreFactory).
///
/// ```text
/// store_tests!(module_name, factory_expression);
/// store_tests!(module_name, factory_expression, durable);
/// store_tests!(module_name, factory_expression, proptest_cases = 32);
/// store_tests!(module_name, factory_expression, durable, proptest_cases = 32);
/// ```
///
/// The module holds one `#[test]` per case of [`cases`](crate::testkit::cases) and
/// [`concurrency`](crate::testkit::concurrency), named after the case, plus
/// `model_matches_memory_store`, the property test of [`model`](crate::testkit::model);
/// with `durable` (which needs a
/// [`ReopenableStoreFactory`](crate::testkit::ReopenableStoreFactory)) also
/// `durability_survives_reopening`. A failure reads `module_name::case_name`.
///
/// The factory expression is evaluated once per test, inside the module, which imports
/// everything from the module the macro is called in. `proptest_cases` sets how many
/// random sequences the property test tries (default
/// [`DEFAULT_PROPTEST_CASES`](crate::testkit::DEFAULT_PROPTEST_CASES)); the
/// `PROPTEST_CASES` environment variable overrides it.
///
/// Each test builds its own Tokio runtime, so the calling crate needs no test macro.
///
/// ```
/// use chat_core::testkit::MemoryStoreFactory;
///
/// chat_core::store_tests!(memory, MemoryStoreFactory, proptest_cases = 16);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! store_tests {
    ($name:ident, $factory:expr $(,)?) => {
        $crate::__store_cases!($crate::__store_tests_module![
            $name,
            $factory,
            [],
            $crate::testkit::DEFAULT_PROPTEST_CASES
        ]);
    };
    ($name:ident, $factory:expr, durable $(,)?) => {
        $crate::__store_cases!($crate::__store_tests_module![
            $name,
            $factory,
            [durable],
            $crate::testkit::DEFAULT_PROPTEST_CASES
        ]);
    };
    ($name:ident, $factory:expr, proptest_cases = $cases:expr $(,)?) => {
        $crate::__store_cases!($crate::__store_tests_module![$name, $factory, [], $cases]);
    };
    ($name:ident, $factory:expr, durable, proptest_cases = $cases:expr $(,)?) => {
        $crate::__store_cases!($crate::__store_tests_module![
            $name,
            $factory,
            [durable],
            $cases
        ]);
    };
}

/// Expands into a module of tests that run the [`faults`](crate::testkit::faults) cases
/// against the stores of a [`CommitFaultFactory`](crate::testkit::faults::CommitFaultFactory):
/// a store whose commits the factory can make fail is held to answering an error, never
/// `Ok`, for a write whose commit failed.
///
/// ```text
/// store_fault_tests!(module_name, factory_expression);
/// ```
///
/// A failure reads `module_name::case_name`.
#[macro_export]
macro_rules! store_fault_tests {
    ($name:ident, $factory:expr $(,)?) => {
        $crate::__store_cases!($crate::__store_fault_tests_module![$name, $factory]);
    };
}

/// [`store_fault_tests!`]'s callback for [`__store_cases!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __store_fault_tests_module {
    (
        [$name:ident, $factory:expr]
        plain $plain:tt
        race $race:tt
        durable $durable:tt
        property $property:tt
        faults [$($fault:ident)*]
    ) => {
        #[cfg(test)]
        #[allow(unused_imports, non_snake_case)]
        mod $name {
            use super::*;

            $(
                #[test]
                fn $fault() {
                    let factory = $factory;
                    $crate::testkit::run_factory_case(
                        &factory,
                        $crate::testkit::faults::$fault(&factory),
                    );
                }
            )*
        }
    };
}

/// The one list of the suite's cases, by kind (see [`CaseKind`](crate::testkit::CaseKind)).
///
/// Everything that enumerates the cases is generated from it, by handing it to a callback
/// macro along with that macro's own arguments: the tests of [`store_tests!`], the
/// [`CASES`](crate::testkit::CASES) list, and the re-exports that make the bodies of the
/// plain cases and the races public (a body not re-exported is dead code, which fails the
/// build). A new case is written once in its module and named once here.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_cases {
    ($($callback:ident)::+ ! $args:tt) => {
        $($callback)::+! {
            $args
            plain [
                backend_name_and_ping,
                user_round_trip,
                user_lookup_by_username_ignores_ascii_case,
                username_unique_ignoring_ascii_case,
                user_id_taken_is_conflict,
                missing_user_is_none,
                session_round_trip,
                session_delete_revokes,
                delete_expired_sessions_removes_exactly_the_expired,
                session_id_or_token_taken_is_conflict,
                conversation_round_trip,
                conversation_id_taken_is_conflict,
                missing_conversation_answers,
                rename_conversation_sets_title_and_updated_at,
                list_conversations_newest_first_and_only_own,
                list_conversations_pages,
                delete_conversation_cascades,
                delete_conversation_leaves_others_alone,
                append_assigns_seq_from_one,
                message_round_trip,
                metadata_kept_exactly_as_sent,
                append_to_missing_conversation_is_not_found,
                append_to_other_users_conversation_is_not_found,
                message_id_taken_is_conflict,
                append_moves_updated_at_and_message_count,
                delete_message_moves_updated_at_and_message_count,
                seq_never_reused_after_delete,
                list_messages_pages_both_ways,
                list_messages_cursor_need_not_exist,
                list_messages_of_unknown_conversation_is_empty,
                delete_message_cascades_to_attachments,
                attachment_round_trip,
                attachment_to_missing_or_mismatched_message_is_not_found,
                attachment_id_taken_is_conflict,
                list_attachments_pages,
                delete_attachment,
                provider_round_trip,
                provider_name_unique_per_owner_ignoring_case,
                provider_same_name_for_different_owners,
                provider_id_taken_is_conflict,
                list_providers_shared_and_own,
                list_providers_pages,
                delete_provider_cascades_to_configs,
                config_round_trip,
                config_for_missing_provider_is_not_found,
                one_config_per_user_and_provider,
                update_config,
                delete_config,
                lookup_with_nul_finds_nothing,
                scan_sees_every_record_once_in_key_order,
                import_keeps_every_field,
                import_twice_keeps_the_first,
                disable_revokes_sessions_and_refuses_new_ones,
                idle_conversations_are_only_the_old_ones,
                usernames_differing_only_in_non_ascii_case_are_distinct,
                conversation_created_with_later_updated_at_round_trips,
                appends_with_times_going_backwards,
                deleted_provider_leaves_no_index_answering,
                purged_conversation_leaves_no_index_answering,
            ]
            race [
                concurrent_appends_are_gapless,
                concurrent_registrations_have_one_winner,
                delete_racing_appends_leaves_no_orphans,
                concurrent_config_creations_have_one_winner,
                disable_racing_logins_leaves_no_session,
                expired_sessions_beyond_one_batch,
                deleted_conversation_beyond_one_purge_batch,
                readers_never_see_messages_of_a_gone_conversation,
                message_count_brackets_listing_during_deletes,
                attachments_racing_their_messages_delete_leave_no_orphans,
                newest_page_cost_follows_the_page,
            ]
            durable [durability_survives_reopening]
            property [model_matches_memory_store]
            faults [writes_whose_commit_fails_are_refused]
        }
    };
}

/// [`store_tests!`]'s callback for [`__store_cases!`]: the module of tests.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_tests_module {
    (
        [$name:ident, $factory:expr, [$($durable:ident)?], $cases:expr]
        plain [$($plain:ident,)*]
        race [$($race:ident,)*]
        durable [$durability:ident]
        property [$property:ident]
        faults $faults:tt
    ) => {
        #[cfg(test)]
        #[allow(unused_imports, non_snake_case)]
        mod $name {
            use super::*;

            $(
                #[test]
                fn $plain() {
                    $crate::testkit::run(
                        &$factory,
                        $crate::testkit::Flavor::CurrentThread,
                        |store| async move { $crate::testkit::cases::$plain(&*store).await },
                    );
                }
            )*

            $(
                #[test]
                fn $race() {
                    $crate::testkit::run(
                        &$factory,
                        $crate::testkit::Flavor::MultiThread,
                        $crate::testkit::concurrency::$race,
                    );
                }
            )*

            $crate::__store_tests_durable!($durability, $factory; $($durable)?);

            #[test]
            fn $property() {
                $crate::testkit::model::run(&$factory, $cases);
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_tests_durable {
    ($test:ident, $factory:expr;) => {};
    ($test:ident, $factory:expr; durable) => {
        #[test]
        fn $test() {
            $crate::testkit::run_durability(&$factory);
        }
    };
}

/// Callback for [`__store_cases!`]: `pub use` of the plain cases or the races from the
/// private module that holds their bodies.
macro_rules! reexport_cases {
    ([plain from $module:ident] plain [$($plain:ident,)*] $($rest:tt)*) => {
        pub use $module::{$($plain),*};
    };
    ([race from $module:ident] plain $plain:tt race [$($race:ident,)*] $($rest:tt)*) => {
        pub use $module::{$($race),*};
    };
}
pub(crate) use reexport_cases;

/// Callback for [`__store_cases!`]: the [`CASES`](crate::testkit::CASES) constant, with the
/// documentation given.
macro_rules! case_list {
    (
        [$(#[$meta:meta])*]
        plain [$($plain:ident,)*]
        race [$($race:ident,)*]
        durable [$durability:ident]
        property [$property:ident]
        faults [$($fault:ident)*]
    ) => {
        $(#[$meta])*
        pub const CASES: &[Case] = &[
            $(Case { name: stringify!($plain), kind: CaseKind::Plain },)*
            $(Case { name: stringify!($race), kind: CaseKind::Race },)*
            Case { name: stringify!($durability), kind: CaseKind::Durable },
            Case { name: stringify!($property), kind: CaseKind::Property },
            $(Case { name: stringify!($fault), kind: CaseKind::CommitFault },)*
        ];
    };
}
pub(crate) use case_list;
