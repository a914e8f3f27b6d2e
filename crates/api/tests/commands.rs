//! The `chat.in` handlers, called directly (bypassing the consumer's
//! duplicate dropping): a command delivered twice changes state once (issue
//! #4), refusals are acked and change nothing, database failures are retried.

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::down::DownStore;
use common::{Member, World, command};
use roomcast_api::commands::handle;
use roomcast_bus::Handled;
use roomcast_core::{Envelope, Kind, RoomId, UserId, now_ms};
use serde_json::{Value, json};

async fn two_in_a_room() -> (World, Member, Member, RoomId) {
    let w = World::new().await;
    let [a, b] = w.users(["alice", "bob"]).await;
    let room = w.room(&a, &[&b]).await;
    w.drain().await;
    (w, a, b, room)
}

async fn history(w: &World, who: &Member, room: RoomId) -> Vec<Value> {
    let (s, v) = w
        .call(
            Method::GET,
            &format!("/v1/rooms/{room}/messages"),
            Some(who),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["messages"].as_array().unwrap().clone()
}

async fn read_seq(w: &World, who: &Member, room: RoomId) -> i64 {
    w.store.room(room, who.id).await.unwrap().read_seq
}

#[tokio::test]
async fn a_send_message_delivered_twice_stores_one_message_and_queues_its_events_once() {
    let (w, a, b, room) = two_in_a_room().await;
    let env = command(
        Kind::SendMessage,
        Some(b.id),
        json!({"roomId": room, "clientMsgId": "s-1", "body": "over the socket"}),
    );
    assert_eq!(handle(&w.state, &env).await, Handled::Done);
    let once = w.outbox().await;
    assert_eq!(handle(&w.state, &env).await, Handled::Done);

    let messages = history(&w, &a, room).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["senderId"],
        b.id.to_string(),
        "the envelope's user"
    );
    assert_eq!(messages[0]["body"], "over the socket");
    assert_eq!(messages[0]["clientMsgId"], "s-1");
    let twice = w.outbox().await;
    let content = |events: &[Envelope]| -> Vec<_> {
        events
            .iter()
            .map(|e| (e.kind.clone(), e.room_id, e.user_id, e.payload_value()))
            .collect()
    };
    assert_eq!(content(&twice), content(&once), "the repeat queued nothing");
    let received = twice
        .iter()
        .filter(|e| e.kind == Kind::ReceiveMessage)
        .count();
    assert_eq!(received, 1);
    let updated = twice.iter().filter(|e| e.kind == Kind::RoomUpdated).count();
    assert_eq!(updated, 2, "one roomUpdated per member");
    assert_eq!(
        read_seq(&w, &b, room).await,
        1,
        "the sender has read their message"
    );
}

#[tokio::test]
async fn a_mark_message_read_delivered_twice_moves_the_marker_once() {
    let (w, a, b, room) = two_in_a_room().await;
    for i in 1..=5 {
        w.post(&a, room, &format!("m{i}"), "hi").await;
    }
    w.drain().await;
    let env = command(
        Kind::MarkMessageRead,
        Some(b.id),
        json!({"roomId": room, "seq": 4}),
    );
    assert_eq!(handle(&w.state, &env).await, Handled::Done);
    assert_eq!(handle(&w.state, &env).await, Handled::Done);

    assert_eq!(read_seq(&w, &b, room).await, 4);
    let out = w.outbox().await;
    let kinds: Vec<_> = out.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        [Kind::MessageReadUpdate, Kind::RoomUpdated],
        "once: {out:?}"
    );
    assert_eq!(out[0].payload_value()["seq"], 4);
}

#[tokio::test]
async fn read_markers_delivered_out_of_order_stay_at_the_highest() {
    let (w, a, b, room) = two_in_a_room().await;
    for i in 1..=6 {
        w.post(&a, room, &format!("m{i}"), "hi").await;
    }
    w.drain().await;
    let five = command(
        Kind::MarkMessageRead,
        Some(b.id),
        json!({"roomId": room, "seq": 5}),
    );
    let three = command(
        Kind::MarkMessageRead,
        Some(b.id),
        json!({"roomId": room, "seq": 3}),
    );
    assert_eq!(handle(&w.state, &five).await, Handled::Done);
    let after_five = w.outbox().await;
    assert_eq!(handle(&w.state, &three).await, Handled::Done);

    assert_eq!(read_seq(&w, &b, room).await, 5);
    assert_eq!(w.outbox().await, after_five, "the late 3 queued nothing");
    let reads: Vec<_> = after_five
        .iter()
        .filter(|e| e.kind == Kind::MessageReadUpdate)
        .map(|e| e.payload_value()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(reads, [5]);
}

#[tokio::test]
async fn refused_commands_are_acked_and_change_nothing() {
    let (w, a, b, room) = two_in_a_room().await;
    w.post(&a, room, "m1", "hi").await;
    w.drain().await;
    let outsider = w.user("erin").await;
    let before = w.snapshot(room, &a).await;
    let send = |user: Option<UserId>, payload: Value| command(Kind::SendMessage, user, payload);
    let read = |user: Option<UserId>, payload: Value| command(Kind::MarkMessageRead, user, payload);
    let refused = [
        // Not a member, no such room, no user.
        send(
            Some(outsider.id),
            json!({"roomId": room, "clientMsgId": "x", "body": "hi"}),
        ),
        send(
            Some(b.id),
            json!({"roomId": RoomId::new(), "clientMsgId": "x", "body": "hi"}),
        ),
        send(
            None,
            json!({"roomId": room, "clientMsgId": "x", "body": "hi"}),
        ),
        read(Some(outsider.id), json!({"roomId": room, "seq": 1})),
        read(Some(b.id), json!({"roomId": RoomId::new(), "seq": 1})),
        read(None, json!({"roomId": room, "seq": 1})),
        // Malformed or invalid payloads.
        send(
            Some(b.id),
            json!({"roomId": room, "clientMsgId": "x", "body": "  "}),
        ),
        send(
            Some(b.id),
            json!({"roomId": room, "clientMsgId": "", "body": "hi"}),
        ),
        send(
            Some(b.id),
            json!({"roomId": "nope", "clientMsgId": "x", "body": "hi"}),
        ),
        send(Some(b.id), json!("not an object")),
        read(Some(b.id), json!({"roomId": room, "seq": -1})),
        read(Some(b.id), json!({"roomId": room})),
        command(
            Kind::PresenceChanged,
            None,
            json!({"node": "rt-1", "online": true, "at": 1}),
        ),
        command(
            Kind::PresenceChanged,
            Some(b.id),
            json!({"node": "", "online": true, "at": 1}),
        ),
        command(Kind::NodeHeartbeat, None, json!({"node": "rt-1"})),
        // Not a command at all.
        command(Kind::parse("dropTables"), Some(b.id), json!({})),
        command(Kind::ReceiveMessage, Some(b.id), json!({})),
    ];
    for env in &refused {
        assert_eq!(handle(&w.state, env).await, Handled::Done, "{env:?}");
    }
    assert_eq!(w.snapshot(room, &a).await, before);
    let (_, presence) = w
        .call(
            Method::GET,
            &format!("/v1/rooms/{room}/presence"),
            Some(&a),
            None,
        )
        .await;
    assert!(
        presence["presence"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["online"] == false)
    );
}

#[tokio::test]
async fn presence_commands_reach_the_store() {
    let (w, a, b, room) = two_in_a_room().await;
    let now = now_ms();
    let online = |user: &Member, online: bool, at: i64| {
        command(
            Kind::PresenceChanged,
            Some(user.id),
            json!({"node": "rt-1", "online": online, "at": at}),
        )
    };
    let beat = command(
        Kind::NodeHeartbeat,
        None,
        json!({"node": "rt-1", "at": now}),
    );
    assert_eq!(handle(&w.state, &beat).await, Handled::Done);
    assert_eq!(
        handle(&w.state, &online(&b, true, now)).await,
        Handled::Done
    );

    let presence = w.store.room_presence(room, a.id).await.unwrap();
    assert!(presence.iter().find(|p| p.user_id == b.id).unwrap().online);
    let told: Vec<_> = w
        .outbox()
        .await
        .into_iter()
        .filter(|e| e.kind == Kind::Presence)
        .map(|e| e.user_id)
        .collect();
    assert!(
        told.contains(&Some(a.id)),
        "co-members hear of it: {told:?}"
    );

    // An older change (reordered on the bus) is ignored; a newer one counts.
    assert_eq!(
        handle(&w.state, &online(&b, false, now - 1)).await,
        Handled::Done
    );
    let presence = w.store.room_presence(room, a.id).await.unwrap();
    assert!(presence.iter().find(|p| p.user_id == b.id).unwrap().online);
    assert_eq!(
        handle(&w.state, &online(&b, false, now + 1)).await,
        Handled::Done
    );
    let presence = w.store.room_presence(room, a.id).await.unwrap();
    assert!(!presence.iter().find(|p| p.user_id == b.id).unwrap().online);
}

#[tokio::test]
async fn database_failures_are_retried_not_acked() {
    let w = World::on(Arc::new(DownStore::default()));
    let (user, room) = (Some(UserId::new()), RoomId::new());
    for env in [
        command(
            Kind::SendMessage,
            user,
            json!({"roomId": room, "clientMsgId": "x", "body": "hi"}),
        ),
        command(
            Kind::MarkMessageRead,
            user,
            json!({"roomId": room, "seq": 1}),
        ),
        command(
            Kind::PresenceChanged,
            user,
            json!({"node": "rt-1", "online": true, "at": 1}),
        ),
        command(Kind::NodeHeartbeat, None, json!({"node": "rt-1", "at": 1})),
    ] {
        assert_eq!(handle(&w.state, &env).await, Handled::Retry, "{}", env.kind);
    }
}
