//! The store suite: the rules every [`Store`] keeps, as cases that each
//! backend's test binary runs through [`store_suite!`] (`tests/sqlite.rs`,
//! `tests/postgres/main.rs`), one `#[tokio::test]` per case per backend.
//!
//! A case is an `async fn(Db)`: [`Db`] holds a store opened on a fresh, empty
//! database and that database's URL (to open it again). The backend's runner
//! makes the database, runs the case and cleans up. The cases live in one
//! file per concern; this file has the helpers they share.

mod events;
mod invitations;
mod members;
mod messages;
mod outbox;
mod presence;
mod rates;
mod reactions;
mod reads;
mod rooms;
mod sessions;
pub mod upgrade;

use std::fmt::Debug;
use std::sync::Arc;

use roomcast_core::{Envelope, Kind, Message, RoomId, RoomView, UserId};
use roomcast_store::{NewMessage, Posted, Store, StoreError};

pub use events::*;
pub use invitations::*;
pub use members::*;
pub use messages::*;
pub use outbox::*;
pub use presence::*;
pub use rates::*;
pub use reactions::*;
pub use reads::*;
pub use rooms::*;
pub use sessions::*;

/// The options every runner opens its stores with: the defaults, but users
/// who never chose let anyone add them (`AddPolicy::Anyone`), so the cases
/// add members directly; the consent cases (`invitations.rs`) set each
/// user's policy themselves, and open a store with the product default.
pub fn options() -> roomcast_store::StoreOptions {
    roomcast_store::StoreOptions {
        default_add_policy: roomcast_core::AddPolicy::Anyone,
        ..roomcast_store::StoreOptions::default()
    }
}

/// A fresh database for one case.
pub struct Db {
    /// A store open on it.
    pub store: Arc<dyn Store>,
    /// Its URL, for [`roomcast_store::open`].
    pub url: String,
}

/// One `#[tokio::test]` per shared case, each run through `$run`, an
/// `async fn run<F, Fut>(case: F)` with `F: FnOnce(Db) -> Fut`.
macro_rules! store_suite {
    ($run:path) => {
        // The outbox table's own promises: rows survive a reopen, and a
        // claimed row is claimed again until done (an outbox held in memory
        // hands each event over once; `roomcast_store::held`).
        $crate::common::store_suite!(@each $run;
            outbox_rows_survive_a_reopen_until_marked_done,
            a_claim_reads_its_partitions_rows_oldest_first,
            claimed_rows_stay_until_marked_done,
        );
        $crate::common::store_suite!(held_outbox $run);
    };
    // Every case that holds for an outbox in memory too.
    (held_outbox $run:path) => {
        $crate::common::store_suite!(@each $run;
            // outbox.rs
            usernames_are_unique_regardless_of_case,
            the_backlog_counts_rows_and_the_oldest_ones_age,
            every_write_wakes_the_relay,
            a_lone_relay_holds_every_partition,
            the_partition_count_is_fixed_when_the_database_is_made,
            // rooms.rs
            a_room_lists_its_creator_first_as_owner_and_queues_room_updated_per_member,
            an_unknown_member_creates_nothing,
            access_tells_member_non_member_and_missing_room_apart,
            a_room_is_seen_by_members_only,
            a_dm_is_one_room_from_either_side,
            a_dm_keeps_its_two_members,
            the_room_list_is_latest_activity_first_in_cursor_pages,
            owners_and_admins_rename_and_members_may_not,
            // sessions.rs
            a_refresh_rotates_and_a_rotated_token_revokes_the_session,
            logout_ends_one_session_and_everywhere_ends_the_others,
            a_session_ends_when_it_expires_and_a_refresh_extends_it,
            // rates.rs
            a_bucket_allows_its_burst_then_refills_one_per_interval,
            refilled_buckets_are_pruned_and_start_full,
            // invitations.rs
            a_users_policy_is_their_choice_or_the_default,
            adding_invites_who_chose_invite_and_adds_the_others,
            accepting_joins_and_declining_leaves_out,
            a_dm_with_an_invitee_starts_with_its_opener_alone,
            invitations_are_listed_newest_first_per_invitee,
            // members.rs
            the_owner_makes_admins_and_nobody_else_changes_roles,
            admins_add_members_once_and_members_may_not,
            who_may_remove_whom,
            removal_queues_room_removed_then_room_updated_to_those_left,
            a_removed_member_can_do_nothing_more,
            // messages.rs
            concurrent_posts_get_gap_free_seqs_and_one_receive_message_each,
            reposting_a_client_msg_id_returns_the_stored_message_and_writes_nothing,
            a_post_queues_receive_message_then_room_updated_per_member,
            a_post_in_a_room_over_the_fanout_limit_queues_receive_message_only,
            a_reply_must_be_to_a_message_of_the_same_room,
            the_sender_edits_and_a_repeat_changes_nothing,
            deleting_keeps_the_seq_and_clears_the_body,
            history_pages_both_ways_in_seq_order,
            // reads.rs
            unread_counts_follow_each_members_read_marker,
            the_read_marker_only_moves_forward_and_is_capped,
            // reactions.rs
            reactions_are_idempotent_and_counted_per_reader,
            reactions_are_refused_on_deleted_messages_and_beyond_the_limit,
            // presence.rs
            presence_flips_once_across_nodes_and_ignores_older_changes,
            a_silent_node_is_swept_and_its_users_go_offline,
            // events.rs
            every_logged_event_gets_the_rooms_next_event_seq_and_replays_as_emitted,
            concurrent_writes_get_gap_free_event_seqs_per_room,
            retention_prunes_by_count_and_age_and_a_pruned_gap_is_not_recovered,
        );
    };
    (@each $run:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $run($crate::common::$case).await;
            }
        )*
    };
}
pub(crate) use store_suite;

/// Create a user named `name`.
pub async fn user(s: &dyn Store, name: &str) -> UserId {
    s.create_user(name, "hash").await.unwrap().id
}

/// Create users named `names`, in order.
pub async fn users<const N: usize>(s: &dyn Store, names: [&str; N]) -> [UserId; N] {
    let mut ids = [UserId::default(); N];
    for (id, name) in ids.iter_mut().zip(names) {
        *id = user(s, name).await;
    }
    ids
}

/// A message to post.
pub fn msg<'a>(room: RoomId, sender: UserId, id: &'a str, body: &'a str) -> NewMessage<'a> {
    NewMessage {
        room_id: room,
        sender_id: sender,
        client_msg_id: id,
        body,
        reply_to: None,
    }
}

/// Post a new message and return it.
pub async fn post(s: &dyn Store, room: RoomId, sender: UserId, id: &str, body: &str) -> Message {
    match s.post_message(msg(room, sender, id, body)).await.unwrap() {
        Posted::Created(m) => m,
        other => panic!("expected a new message, got {other:?}"),
    }
}

/// A group room named `name` of `creator` and `members`, its events drained.
pub async fn room(s: &dyn Store, name: &str, creator: UserId, members: &[UserId]) -> RoomId {
    let id = s.create_room(name, creator, members).await.unwrap().id;
    drain_outbox(s).await;
    id
}

/// Delete every pending outbox row.
pub async fn drain_outbox(s: &dyn Store) {
    take(s).await;
}

/// The pending envelopes, oldest first, deleted from the outbox.
pub async fn take(s: &dyn Store) -> Vec<Envelope> {
    let rows = s.outbox_pending(100_000).await.unwrap();
    let ids: Vec<i64> = rows.iter().map(|o| o.id).collect();
    s.outbox_done(&ids).await.unwrap();
    rows.into_iter()
        .flat_map(|o| {
            o.envelope
                .decode()
                .expect("an outbox row is an envelope")
                .expand()
        })
        .collect()
}

/// Each envelope as `(type, room target, user target)`.
pub fn targets(envs: &[Envelope]) -> Vec<(Kind, Option<RoomId>, Option<UserId>)> {
    envs.iter()
        .map(|e| (e.kind.clone(), e.room_id, e.user_id))
        .collect()
}

/// The room view a `roomUpdated` envelope carries.
pub fn view_in(env: &Envelope) -> RoomView {
    serde_json::from_str(env.payload.get()).unwrap()
}

/// The refusal's kind: `not_found`, `forbidden`, `invalid`, `conflict`, or
/// the error's text for anything else.
pub fn refusal(e: &StoreError) -> String {
    match e {
        StoreError::NotFound(_) => "not_found".into(),
        StoreError::Forbidden(_) => "forbidden".into(),
        StoreError::Invalid(_) => "invalid".into(),
        StoreError::Conflict(_) => "conflict".into(),
        other => other.to_string(),
    }
}

/// Assert `res` is the refusal `kind` and that it queued nothing.
pub async fn refused<T: Debug>(s: &dyn Store, res: Result<T, StoreError>, kind: &str) {
    match res {
        Err(e) => assert_eq!(refusal(&e), kind, "refused with {e}"),
        Ok(v) => panic!("expected a {kind} refusal, got {v:?}"),
    }
    assert!(
        take(s).await.is_empty(),
        "a refused {kind} queued outbox rows"
    );
}
