//! Tests of [`super`]: the buffer, the seam, hold-backs and offsets.

use std::sync::Mutex as StdMutex;

use serde_json::json;

use super::*;
use roomcast_core::Kind;

fn ev(seq: i64) -> RoomEvent {
    RoomEvent {
        event_seq: seq,
        kind: Kind::ReceiveMessage,
        payload: serde_json::value::to_raw_value(&json!({ "eventSeq": seq })).unwrap(),
    }
}

fn seqs(v: &StdMutex<Vec<i64>>) -> Vec<i64> {
    v.lock().unwrap().clone()
}

/// A socket of one fixed user.
fn sock(n: u64) -> SocketRef {
    static USER: std::sync::OnceLock<UserId> = std::sync::OnceLock::new();
    SocketRef {
        conn: ConnId(n),
        user: *USER.get_or_init(UserId::new),
    }
}

#[test]
fn emits_each_event_once_and_keeps_the_latest() {
    let logs = RoomLogs::new(3, false);
    let room = RoomId::new();
    let out = StdMutex::new(Vec::new());
    for s in [1, 2, 2, 1, 3, 4, 5] {
        logs.emit(room, ev(s), |e, _, _| out.lock().unwrap().push(e.event_seq));
    }
    assert_eq!(seqs(&out), [1, 2, 3, 4, 5], "redeliveries are dropped");
    assert_eq!(logs.last(room), 5);
    let got = StdMutex::new(Vec::new());
    let joined = StdMutex::new(false);
    let send = |e: &RoomEvent, _: Option<String>| got.lock().unwrap().push(e.event_seq);
    assert!(matches!(
        logs.rejoin(room, sock(1), 2, send, || *joined.lock().unwrap() = true),
        Seam::Joined(3)
    ));
    assert_eq!((seqs(&got), *joined.lock().unwrap()), (vec![3, 4, 5], true));
    assert!(matches!(
        logs.rejoin(room, sock(1), 5, |_, _| {}, || {}),
        Seam::Joined(0)
    ));
    assert!(
        matches!(logs.rejoin(room, sock(1), 1, |_, _| {}, || {}), Seam::Fetch),
        "3..5 only"
    );
    assert!(
        matches!(logs.rejoin(room, sock(1), 9, |_, _| {}, || {}), Seam::Fetch),
        "ahead"
    );
    assert!(matches!(
        logs.rejoin(RoomId::new(), sock(1), 0, |_, _| {}, || {}),
        Seam::Fetch
    ));
}

#[test]
fn a_gap_restarts_the_buffer() {
    let logs = RoomLogs::new(10, false);
    let room = RoomId::new();
    for s in [1, 2, 5, 6] {
        logs.emit(room, ev(s), |_, _, _| {});
    }
    assert!(matches!(
        logs.rejoin(room, sock(1), 3, |_, _| {}, || {}),
        Seam::Fetch
    ));
    assert!(matches!(
        logs.rejoin(room, sock(1), 4, |_, _| {}, || {}),
        Seam::Joined(2)
    ));
}

#[test]
fn a_fetch_is_continued_from_the_buffer() {
    let logs = RoomLogs::new(2, false);
    let room = RoomId::new();
    for s in 1..=6 {
        logs.emit(room, ev(s), |_, _, _| {});
    }
    let got = StdMutex::new(Vec::new());
    let send = |e: &RoomEvent, _: Option<String>| got.lock().unwrap().push(e.event_seq);
    let fetched = [ev(2), ev(3), ev(4)];
    let conn = sock(1);
    assert_eq!(
        logs.rejoin_after_fetch(room, conn, &fetched, 4, send, || {}),
        Some(5)
    );
    assert_eq!(seqs(&got), [2, 3, 4, 5, 6]);
    assert_eq!(
        logs.rejoin_after_fetch(room, conn, &[ev(2)], 2, |_, _| {}, || {}),
        None,
        "the buffer moved past 2"
    );
}

#[test]
fn a_socket_ahead_of_this_node_is_skipped_until_the_node_catches_up() {
    let logs = RoomLogs::new(4, false);
    let room = RoomId::new();
    let (ahead, plain) = (sock(1), sock(2));
    logs.emit(room, ev(1), |_, _, _| {});
    // The store had 1..=3; this node has emitted 1 only.
    assert_eq!(
        logs.rejoin_after_fetch(room, ahead, &[ev(2), ev(3)], 3, |_, _| {}, || {}),
        Some(2)
    );
    logs.hold_back(room, plain, 2);
    logs.hold_back(room, plain, 1);
    let skipped = StdMutex::new(Vec::new());
    for s in 2..=4 {
        logs.emit(room, ev(s), |e, skip, _| {
            skipped.lock().unwrap().push((e.event_seq, skip.to_vec()))
        });
    }
    assert_eq!(
        *skipped.lock().unwrap(),
        [
            (2, vec![ahead.conn, plain.conn]),
            (3, vec![ahead.conn]),
            (4, vec![])
        ]
    );
}

#[test]
fn offsets_say_what_each_socket_has_of_each_room() {
    let logs = RoomLogs::new(8, true);
    let (a, b) = (RoomId::new(), RoomId::new());
    let (one, two) = (sock(1), sock(2));
    for s in 1..=3 {
        logs.emit(a, ev(s), |_, _, _| {});
    }
    // `one` joins `a` plainly at 3 and its user channel; `two` replays `a`
    // from 1 and joins `b` ahead of this node (the store had up to 5).
    logs.hold_back(a, one, 3);
    assert_eq!(logs.user_joined(one), Some(format!("u,{a}:3")));
    let offsets = StdMutex::new(Vec::new());
    let send = |e: &RoomEvent, o: Option<String>| offsets.lock().unwrap().push((e.event_seq, o));
    assert!(matches!(
        logs.rejoin(a, two, 1, send, || {}),
        Seam::Joined(2)
    ));
    assert_eq!(
        *offsets.lock().unwrap(),
        [(2, Some(format!("{a}:2"))), (3, Some(format!("{a}:3")))]
    );
    logs.hold_back(b, two, 5);
    assert_eq!(logs.offset(two.conn), Some(format!("{a}:3,{b}:5")));

    // A live event of `a`: each socket's offset has it, and `two` keeps `b`.
    let live = StdMutex::new(Vec::new());
    logs.emit(a, ev(4), |e, skip, o| {
        assert!(skip.is_empty());
        live.lock()
            .unwrap()
            .extend([(e.event_seq, o.of(one.conn)), (e.event_seq, o.of(two.conn))]);
    });
    assert_eq!(
        *live.lock().unwrap(),
        [
            (4, Some(format!("u,{a}:4"))),
            (4, Some(format!("{a}:4,{b}:5")))
        ]
    );
    // `b` catches up on this node: still 5 for `two` until 6.
    logs.emit(b, ev(4), |_, skip, o| {
        assert_eq!(skip, [two.conn]);
        assert_eq!(o.of(two.conn), Some(format!("{a}:4,{b}:5")));
    });

    assert_eq!(logs.left(two.conn, a), Some(format!("{b}:5")));
    logs.removed(two.user, b);
    assert_eq!(logs.offset(two.conn), Some(String::new()));
    logs.forget(two.conn);
    assert_eq!(logs.offset(two.conn), None);
    assert_eq!(logs.offset(ConnId(99)), None);
}

#[test]
fn without_recovery_nothing_is_tracked() {
    let logs = RoomLogs::new(8, false);
    let a = RoomId::new();
    logs.hold_back(a, sock(1), 3);
    assert_eq!(logs.user_joined(sock(1)), None);
    logs.emit(a, ev(1), |_, _, o| assert_eq!(o.of(ConnId(1)), None));
    assert_eq!(logs.offset(ConnId(1)), None);
}

#[test]
fn an_idle_rooms_buffer_is_dropped_but_its_position_kept() {
    let logs = RoomLogs::new(4, false);
    let (quiet, busy) = (RoomId::new(), RoomId::new());
    for s in 1..=3 {
        logs.emit(quiet, ev(s), |_, _, _| {});
    }
    assert!(logs.covers(quiet, 1));
    let busy_last = (IDLE_EVENTS + EVICT_EVERY) as i64;
    for s in 1..=busy_last {
        logs.emit(busy, ev(s), |_, _, _| {});
    }
    assert!(!logs.covers(quiet, 1), "the quiet room's buffer is gone");
    assert!(
        logs.covers(busy, busy_last - 2),
        "the busy one keeps its own"
    );
    assert_eq!(logs.last(quiet), 3, "its position is kept");
    let again = StdMutex::new(Vec::new());
    for s in [3, 4] {
        logs.emit(quiet, ev(s), |e, _, _| {
            again.lock().unwrap().push(e.event_seq)
        });
    }
    assert_eq!(seqs(&again), [4], "a redelivery of 3 is still dropped");
}
