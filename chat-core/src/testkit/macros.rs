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
    (@imp $name:ident, $factory:expr, [$($durable:ident)?], $cases:expr) => {
        #[cfg(test)]
        #[allow(unused_imports, non_snake_case)]
        mod $name {
            use super::*;

            $crate::__store_tests_plain!($factory;
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
            );

            $crate::__store_tests_concurrent!($factory;
                concurrent_appends_are_gapless,
                concurrent_registrations_have_one_winner,
                delete_racing_appends_leaves_no_orphans,
                concurrent_config_creations_have_one_winner,
            );

            $crate::__store_tests_durable!($factory; $($durable)?);

            #[test]
            fn model_matches_memory_store() {
                $crate::testkit::model::run(&$factory, $cases);
            }
        }
    };
    ($name:ident, $factory:expr $(,)?) => {
        $crate::store_tests!(@imp $name, $factory, [],
            $crate::testkit::DEFAULT_PROPTEST_CASES);
    };
    ($name:ident, $factory:expr, durable $(,)?) => {
        $crate::store_tests!(@imp $name, $factory, [durable],
            $crate::testkit::DEFAULT_PROPTEST_CASES);
    };
    ($name:ident, $factory:expr, proptest_cases = $cases:expr $(,)?) => {
        $crate::store_tests!(@imp $name, $factory, [], $cases);
    };
    ($name:ident, $factory:expr, durable, proptest_cases = $cases:expr $(,)?) => {
        $crate::store_tests!(@imp $name, $factory, [durable], $cases);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_tests_plain {
    ($factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::run(
                    &$factory,
                    $crate::testkit::Flavor::CurrentThread,
                    |store| async move { $crate::testkit::cases::$case(&*store).await },
                );
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_tests_concurrent {
    ($factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::run(
                    &$factory,
                    $crate::testkit::Flavor::MultiThread,
                    $crate::testkit::concurrency::$case,
                );
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_tests_durable {
    ($factory:expr;) => {};
    ($factory:expr; durable) => {
        #[test]
        fn durability_survives_reopening() {
            $crate::testkit::run_durability(&$factory);
        }
    };
}
