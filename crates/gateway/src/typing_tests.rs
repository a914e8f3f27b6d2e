//! The typing state machine on a paused clock: relays, refresh suppression,
//! expiry, `typing:false`, disconnects, publish failures and the bounds.

use std::time::Duration;

use roomcast_core::{Envelope, Kind, RoomId, UserId};
use tokio::time::sleep;

use super::*;
use crate::test_support::{Wire, drain};

const TIMEOUT: Duration = Duration::from_millis(5000);
const REFRESH: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The `(userId, typing)` of each typing envelope, checking its shape.
fn relays(envs: Vec<Envelope>, room: RoomId) -> Vec<(UserId, bool)> {
    envs.into_iter()
        .map(|e| {
            assert_eq!(e.kind, Kind::Typing);
            assert_eq!(e.room_id, Some(room), "room-targeted");
            assert_eq!(e.user_id, None, "no user target");
            let t: roomcast_core::Typing = serde_json::from_str(e.payload.get()).unwrap();
            assert_eq!(t.room_id, room);
            (t.user_id, t.typing)
        })
        .collect()
}

async fn setup() -> (Wire, Arc<TypingRelay>) {
    let wire = Wire::new().await;
    let relay = TypingRelay::new(TIMEOUT, REFRESH, wire.publisher.clone());
    (wire, relay)
}

#[tokio::test(start_paused = true)]
async fn first_true_relays_refreshes_within_a_second_do_not() {
    let (mut wire, relay) = setup().await;
    let (c, u, r) = (ConnId(1), UserId::new(), RoomId::new());
    assert_eq!(relay.set(c, u, r, true).await.unwrap(), Outcome::Relayed);
    sleep(ms(400)).await;
    assert_eq!(relay.set(c, u, r, true).await.unwrap(), Outcome::Suppressed);
    sleep(ms(500)).await;
    assert_eq!(relay.set(c, u, r, true).await.unwrap(), Outcome::Suppressed);
    sleep(ms(200)).await; // 1.1 s after the first relay
    assert_eq!(relay.set(c, u, r, true).await.unwrap(), Outcome::Relayed);
    assert_eq!(relays(drain(&mut wire.chat_out), r), [(u, true), (u, true)]);
    assert!(
        drain(&mut wire.chat_in).is_empty(),
        "typing never goes to chat.in"
    );
}

#[tokio::test(start_paused = true)]
async fn the_state_expires_five_seconds_after_the_last_true() {
    let (mut wire, relay) = setup().await;
    let (c, u, r) = (ConnId(1), UserId::new(), RoomId::new());
    relay.set(c, u, r, true).await.unwrap();
    sleep(ms(3000)).await;
    relay.set(c, u, r, true).await.unwrap(); // refresh: relayed (> 1 s)
    sleep(ms(4900)).await; // 7.9 s: the first deadline (5 s) has passed
    assert_eq!(relays(drain(&mut wire.chat_out), r), [(u, true), (u, true)]);
    assert_eq!(relay.len(), 1);
    sleep(ms(200)).await; // 8.1 s: 5 s after the refresh
    assert_eq!(relays(drain(&mut wire.chat_out), r), [(u, false)]);
    assert!(relay.is_empty(), "the entry and its timer are gone");
    // A new period relays at once again.
    assert_eq!(relay.set(c, u, r, true).await.unwrap(), Outcome::Relayed);
}

#[tokio::test(start_paused = true)]
async fn false_relays_only_while_typing() {
    let (mut wire, relay) = setup().await;
    let (c, u, r) = (ConnId(1), UserId::new(), RoomId::new());
    assert_eq!(relay.set(c, u, r, false).await.unwrap(), Outcome::Unchanged);
    assert!(relay.is_empty());
    relay.set(c, u, r, true).await.unwrap();
    assert_eq!(relay.set(c, u, r, false).await.unwrap(), Outcome::Relayed);
    assert_eq!(relay.set(c, u, r, false).await.unwrap(), Outcome::Unchanged);
    // Restarting at once relays (not a refresh) and reuses the live timer,
    // which then expires the new period on time, once.
    sleep(ms(100)).await;
    assert_eq!(relay.set(c, u, r, true).await.unwrap(), Outcome::Relayed);
    sleep(ms(5200)).await;
    assert_eq!(
        relays(drain(&mut wire.chat_out), r),
        [(u, true), (u, false), (u, true), (u, false)]
    );
    assert!(relay.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_timer_outlives_false_only_until_its_deadline() {
    let (mut wire, relay) = setup().await;
    let (c, u, r) = (ConnId(1), UserId::new(), RoomId::new());
    relay.set(c, u, r, true).await.unwrap();
    relay.set(c, u, r, false).await.unwrap();
    assert_eq!(relay.len(), 1, "kept while its timer lives");
    sleep(ms(5100)).await;
    assert!(relay.is_empty());
    assert_eq!(
        relays(drain(&mut wire.chat_out), r),
        [(u, true), (u, false)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_disconnect_ends_the_states_the_socket_last_refreshed() {
    let (mut wire, relay) = setup().await;
    let (a, b) = (ConnId(1), ConnId(2));
    let (u, other) = (UserId::new(), UserId::new());
    let (r1, r2) = (RoomId::new(), RoomId::new());
    relay.set(a, u, r1, true).await.unwrap();
    relay.set(b, u, r2, true).await.unwrap(); // the same user's other socket
    relay.set(a, other, r1, true).await.unwrap(); // another user, same conn id
    drain(&mut wire.chat_out);
    relay.disconnected(a, u);
    sleep(ms(10)).await;
    assert_eq!(relays(drain(&mut wire.chat_out), r1), [(u, false)]);
    // r2 (socket b) and the other user keep typing until they expire.
    sleep(ms(5000)).await;
    let mut rest: Vec<_> = drain(&mut wire.chat_out)
        .into_iter()
        .map(|e| {
            (
                e.room_id.unwrap() == r2,
                e.payload_value()["typing"].as_bool(),
            )
        })
        .collect();
    rest.sort();
    assert_eq!(rest, [(false, Some(false)), (true, Some(false))]);
    assert!(relay.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_publish_changes_nothing() {
    let (mut wire, relay) = setup().await;
    let (c, u, r) = (ConnId(1), UserId::new(), RoomId::new());
    wire.fail(true);
    assert!(relay.set(c, u, r, true).await.is_err());
    assert!(relay.is_empty(), "not typing, nothing kept");
    wire.fail(false);
    assert_eq!(relay.set(c, u, r, true).await.unwrap(), Outcome::Relayed);
    wire.fail(true);
    assert!(relay.set(c, u, r, false).await.is_err());
    wire.fail(false);
    // Still typing: the retry relays false.
    assert_eq!(relay.set(c, u, r, false).await.unwrap(), Outcome::Relayed);
    assert_eq!(
        relays(drain(&mut wire.chat_out), r),
        [(u, true), (u, false)]
    );
}

#[tokio::test(start_paused = true)]
async fn many_pairs_each_get_one_expiry() {
    let (mut wire, relay) = setup().await;
    let rooms: Vec<RoomId> = (0..50).map(|_| RoomId::new()).collect();
    let u = UserId::new();
    for (i, r) in rooms.iter().enumerate() {
        relay.set(ConnId(i as u64), u, *r, true).await.unwrap();
        relay.set(ConnId(i as u64), u, *r, true).await.unwrap();
    }
    assert_eq!(relay.len(), 50);
    sleep(ms(5100)).await;
    let out = drain(&mut wire.chat_out);
    let falses = out
        .iter()
        .filter(|e| e.payload_value()["typing"] == false)
        .count();
    assert_eq!((out.len(), falses), (100, 50));
    assert!(relay.is_empty());
}
