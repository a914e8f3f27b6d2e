//! The bus commands end to end below the transport: checks, ACKs, and what
//! reaches `chat.in` / `chat.out` (observed on an in-process bus).

use std::sync::atomic::Ordering;
use std::time::Duration;

use roomcast_core::{Envelope, ErrorCode};
use serde_json::json;

use super::*;
use crate::test_support::{Table, Wire, drain};

struct Setup {
    wire: Wire,
    table: Arc<Table>,
    cache: Arc<MembershipCache>,
    commands: Commands,
    conn: ConnId,
    user: UserId,
    room: RoomId,
}

async fn setup() -> Setup {
    let wire = Wire::new().await;
    let table = Arc::new(Table::default());
    let cache = Arc::new(MembershipCache::new(Duration::from_secs(2), 1024));
    let typing = TypingRelay::new(
        Duration::from_secs(5),
        Duration::from_secs(1),
        wire.publisher.clone(),
    );
    let commands = Commands::new(
        table.clone(),
        cache.clone(),
        wire.publisher.clone(),
        typing,
        RateLimits::new(10, 10),
    );
    let (conn, user, room) = (ConnId(1), UserId::new(), RoomId::new());
    table.add(room, user);
    commands.connected(conn);
    Setup {
        wire,
        table,
        cache,
        commands,
        conn,
        user,
        room,
    }
}

impl Setup {
    async fn run(&self, event: &str, data: Value) -> Reply {
        self.commands
            .run(self.conn, self.user, event, Some(data))
            .await
            .expect("a known command")
    }
    fn asked(&self) -> usize {
        self.table.asked.load(Ordering::SeqCst)
    }
}

fn code(reply: Reply) -> ErrorCode {
    reply.expect_err("an error ACK").code
}

fn one(envs: Vec<Envelope>) -> Envelope {
    assert_eq!(envs.len(), 1, "{envs:?}");
    envs.into_iter().next().unwrap()
}

#[tokio::test(start_paused = true)]
async fn send_message_publishes_the_command_as_the_socket_user_then_acks() {
    let mut s = setup().await;
    let reply = s
        .run(
            "sendMessage",
            json!({ "roomId": s.room, "clientMsgId": "m-1", "body": "hi", "userId": UserId::new(), "extra": 1 }),
        )
        .await
        .unwrap();
    assert_eq!(reply, json!({ "ok": true, "clientMsgId": "m-1" }));
    let env = one(drain(&mut s.wire.chat_in));
    assert_eq!(env.kind, "sendMessage");
    assert_eq!(
        env.user_id,
        Some(s.user),
        "the socket's user, never the payload's"
    );
    assert_eq!(
        env.payload_value(),
        json!({ "roomId": s.room, "clientMsgId": "m-1", "body": "hi" })
    );
    let reply_to = roomcast_core::MessageId::new();
    s.run(
        "sendMessage",
        json!({ "roomId": s.room, "clientMsgId": "m-2", "body": "re", "replyTo": reply_to }),
    )
    .await
    .unwrap();
    let env = one(drain(&mut s.wire.chat_in));
    assert_eq!(env.payload_value()["replyTo"], json!(reply_to));
    assert!(drain(&mut s.wire.chat_out).is_empty());
}

#[tokio::test(start_paused = true)]
async fn malformed_commands_are_bad_requests_and_publish_nothing() {
    let mut s = setup().await;
    let r = s.room;
    let long_id = "x".repeat(roomcast_core::validate::MAX_CLIENT_MSG_ID + 1);
    let long_body = "é".repeat(roomcast_core::validate::MAX_BODY_CHARS + 1);
    let cases = [
        ("sendMessage", json!(null)),
        ("sendMessage", json!("hi")),
        ("sendMessage", json!({ "roomId": r, "body": "hi" })),
        (
            "sendMessage",
            json!({ "roomId": "nope", "clientMsgId": "m", "body": "hi" }),
        ),
        (
            "sendMessage",
            json!({ "roomId": r, "clientMsgId": "", "body": "hi" }),
        ),
        (
            "sendMessage",
            json!({ "roomId": r, "clientMsgId": long_id, "body": "hi" }),
        ),
        (
            "sendMessage",
            json!({ "roomId": r, "clientMsgId": "m", "body": "  " }),
        ),
        (
            "sendMessage",
            json!({ "roomId": r, "clientMsgId": "m", "body": long_body }),
        ),
        (
            "sendMessage",
            json!({ "roomId": r, "clientMsgId": "m", "body": "hi", "replyTo": "x" }),
        ),
        ("markMessageRead", json!({ "roomId": r })),
        ("markMessageRead", json!({ "roomId": r, "seq": -1 })),
        ("markMessageRead", json!({ "roomId": r, "seq": "3" })),
        ("typing", json!({ "roomId": r })),
        ("typing", json!({ "roomId": r, "typing": "yes" })),
    ];
    for (event, data) in cases {
        let reply = s.run(event, data.clone()).await;
        assert_eq!(code(reply), ErrorCode::BadRequest, "{event} {data}");
    }
    assert_eq!(
        s.asked(),
        0,
        "membership is not asked for malformed commands"
    );
    assert!(drain(&mut s.wire.chat_in).is_empty());
    assert!(drain(&mut s.wire.chat_out).is_empty());
    let none = s.commands.run(s.conn, s.user, "sendMessage", None).await;
    assert_eq!(code(none.unwrap()), ErrorCode::BadRequest);
}

#[tokio::test(start_paused = true)]
async fn membership_refusals_and_failures() {
    let mut s = setup().await;
    let other = RoomId::new();
    s.table.add(other, UserId::new()); // exists, s.user not a member
    let send = |room: RoomId| json!({ "roomId": room, "clientMsgId": "m", "body": "hi" });
    assert_eq!(
        code(s.run("sendMessage", send(other)).await),
        ErrorCode::Forbidden
    );
    let nowhere = RoomId::new();
    assert_eq!(
        code(s.run("sendMessage", send(nowhere)).await),
        ErrorCode::NotFound
    );
    let read = json!({ "roomId": other, "seq": 1 });
    assert_eq!(
        code(s.run("markMessageRead", read).await),
        ErrorCode::Forbidden
    );
    let typing = json!({ "roomId": other, "typing": true });
    assert_eq!(code(s.run("typing", typing).await), ErrorCode::Forbidden);
    s.table.broken.store(true, Ordering::SeqCst);
    assert_eq!(
        code(s.run("sendMessage", send(s.room)).await),
        ErrorCode::Internal
    );
    assert!(drain(&mut s.wire.chat_in).is_empty());
    assert!(drain(&mut s.wire.chat_out).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_publish_is_an_internal_ack() {
    let mut s = setup().await;
    s.wire.fail(true);
    let send = json!({ "roomId": s.room, "clientMsgId": "m", "body": "hi" });
    assert_eq!(
        code(s.run("sendMessage", send.clone()).await),
        ErrorCode::Internal
    );
    let read = json!({ "roomId": s.room, "seq": 0 });
    assert_eq!(
        code(s.run("markMessageRead", read).await),
        ErrorCode::Internal
    );
    let typing = json!({ "roomId": s.room, "typing": true });
    assert_eq!(code(s.run("typing", typing).await), ErrorCode::Internal);
    s.wire.fail(false);
    assert!(s.run("sendMessage", send).await.is_ok());
    assert_eq!(drain(&mut s.wire.chat_in).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn mark_read_publishes_room_and_seq() {
    let mut s = setup().await;
    let reply = s
        .run("markMessageRead", json!({ "roomId": s.room, "seq": 42 }))
        .await;
    assert_eq!(reply.unwrap(), json!({ "ok": true }));
    let env = one(drain(&mut s.wire.chat_in));
    assert_eq!(env.kind, "markMessageRead");
    assert_eq!(env.user_id, Some(s.user));
    assert_eq!(env.payload_value(), json!({ "roomId": s.room, "seq": 42 }));
}

#[tokio::test(start_paused = true)]
async fn membership_answers_are_cached_briefly_and_dropped_on_room_removed() {
    let s = setup().await;
    let send = json!({ "roomId": s.room, "clientMsgId": "m", "body": "hi" });
    for _ in 0..5 {
        s.run("sendMessage", send.clone()).await.unwrap();
    }
    assert_eq!(s.asked(), 1);
    // Removed: the consumer's roomRemoved drops the entry at once.
    s.table.remove(s.room, s.user);
    s.cache.forget(s.room, s.user);
    assert_eq!(code(s.run("sendMessage", send).await), ErrorCode::Forbidden);
    assert_eq!(s.asked(), 2);
}

#[tokio::test(start_paused = true)]
async fn typing_relays_to_chat_out_and_is_rate_limited_per_socket() {
    let mut s = setup().await;
    let on = json!({ "roomId": s.room, "typing": true });
    for _ in 0..10 {
        assert_eq!(
            s.run("typing", on.clone()).await.unwrap(),
            json!({ "ok": true })
        );
    }
    assert_eq!(
        code(s.run("typing", on.clone()).await),
        ErrorCode::RateLimited
    );
    let relayed = one(drain(&mut s.wire.chat_out));
    assert_eq!(relayed.kind, "typing");
    assert_eq!(relayed.room_id, Some(s.room));
    assert_eq!(
        relayed.payload_value(),
        json!({ "roomId": s.room, "userId": s.user, "typing": true })
    );
    assert!(drain(&mut s.wire.chat_in).is_empty());
    // A rate-limited false relays nothing either.
    let off = json!({ "roomId": s.room, "typing": false });
    assert_eq!(
        code(s.run("typing", off.clone()).await),
        ErrorCode::RateLimited
    );
    assert!(drain(&mut s.wire.chat_out).is_empty());
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.run("typing", off).await.unwrap();
    assert_eq!(
        one(drain(&mut s.wire.chat_out)).payload_value()["typing"],
        false
    );
    // Another socket of the same user has its own bucket.
    s.commands.connected(ConnId(2));
    let reply = s.commands.run(ConnId(2), s.user, "typing", Some(on)).await;
    assert!(reply.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_disconnect_ends_typing_and_frees_the_socket() {
    let mut s = setup().await;
    s.run("typing", json!({ "roomId": s.room, "typing": true }))
        .await
        .unwrap();
    s.commands.disconnected(s.conn, s.user);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let out = drain(&mut s.wire.chat_out);
    let states: Vec<_> = out
        .iter()
        .map(|e| e.payload_value()["typing"].clone())
        .collect();
    assert_eq!(states, [json!(true), json!(false)]);
    // An event still in flight for the closed socket does nothing.
    let late = s
        .run("typing", json!({ "roomId": s.room, "typing": true }))
        .await;
    assert_eq!(code(late), ErrorCode::Internal);
    assert!(drain(&mut s.wire.chat_out).is_empty());
}

#[tokio::test]
async fn other_events_are_not_commands() {
    let s = setup().await;
    for event in ["joinRoom", "nope", "presenceChanged", "nodeHeartbeat"] {
        assert!(s.commands.run(s.conn, s.user, event, None).await.is_none());
    }
}
