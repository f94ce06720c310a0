//! The store conformance suite: behaviour every [`cloudpilot::store::Store`] backend must
//! show, written once and run against each backend.
//!
//! A backend's test file includes this module and invokes the macro with a factory that
//! yields `(guard, store)`: the guard (a temp dir, a server process) lives as long as the
//! test, and every test gets a fresh, empty store.
//!
//! ```ignore
//! #[macro_use]
//! #[path = "store_conformance/suite.rs"]
//! mod suite;
//! conformance_suite!(suite, fresh_store());
//! ```

#[path = "accounts.rs"]
pub mod accounts;
#[path = "fixtures.rs"]
pub mod fixtures;
#[path = "routers.rs"]
pub mod routers;
#[path = "sessions.rs"]
pub mod sessions;

/// Expands to one `#[tokio::test]` per case, each on a store made by `$make`.
macro_rules! conformance_suite {
    ($suite:ident, $make:expr) => {
        conformance_suite!(@cases $suite, $make, accounts: [
            ping_answers,
            create_user_assigns_ids_and_stores_key,
            duplicate_username_ignores_case_and_leaves_no_key,
            duplicate_public_key_conflicts_and_leaves_no_user,
            concurrent_registrations_of_one_name_admit_exactly_one,
            lookups_find_users_by_id_and_any_case_of_name,
            update_profile_changes_only_given_fields,
            update_profile_of_absent_user_is_not_found,
            replace_api_key_retires_old_public_key,
            replace_api_key_taken_by_other_user_changes_nothing,
            replace_api_key_of_absent_user_is_not_found,
        ]);
        conformance_suite!(@cases $suite, $make, routers: [
            router_crud_round_trip,
            router_for_absent_owner_is_not_found,
            routers_for_user_ordered_by_name_then_id,
            routers_are_isolated_between_users,
            router_owner_change_moves_it_between_lists,
            router_ids_never_reused_after_delete,
            update_of_absent_router_is_not_found,
            router_status_defaults_then_round_trips,
        ]);
        conformance_suite!(@cases $suite, $make, sessions: [
            refresh_rotation_moves_current_token,
            refresh_reuse_of_spent_token_revokes_family,
            refresh_revoked_family_is_invalid,
            refresh_unknown_or_expired_family_is_invalid,
            refresh_family_ids_are_unique_while_live,
            throttle_counts_hits_within_window,
            throttle_window_restarts_after_it_ends,
            throttle_reset_and_keys_are_independent,
            audit_lists_newest_first_with_limit,
        ]);
    };
    (@cases $suite:ident, $make:expr, $module:ident: [$($case:ident),+ $(,)?]) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (_guard, store) = $make;
                $suite::$module::$case(&store).await;
            }
        )+
    };
}
