//! The application API: authentication, rooms, broadcasts (once, except a
//! room), moving a room's sockets, server-to-client acks, the slow-consumer
//! policy, shutdown. Waits are bounded by timeouts or driven by signals.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use roomcast_sio::{
    Ack, Config, Conn, ConnectInfo, DisconnectReason, Event, Handler, Payload, SocketIo,
};
use serde_json::{Value, json};
use support::{WAIT, Ws};
use tokio::sync::mpsc;

struct Rooms {
    disconnects: mpsc::UnboundedSender<(String, DisconnectReason)>,
}

#[async_trait::async_trait]
impl Handler for Rooms {
    type Data = String;

    fn authenticate(&self, info: ConnectInfo<'_>) -> Result<String, roomcast_sio::Refusal> {
        match info.auth.and_then(|a| a["user"].as_str()) {
            Some(user) => Ok(user.to_owned()),
            None => Err("no user".into()),
        }
    }

    fn on_connect(&self, conn: &Conn<String>) {
        conn.join(format!("user:{}", conn.user()));
    }

    async fn on_event(&self, conn: Conn<String>, event: Event, ack: Option<Ack>) {
        let arg = event.payload.first().cloned().unwrap_or(Value::Null);
        match event.name.as_str() {
            "join" => conn.join(arg.as_str().unwrap_or_default()),
            "leave" => conn.leave(arg.as_str().unwrap_or_default()),
            "ask" => {
                let timeout = Duration::from_millis(arg.as_u64().unwrap_or(1000));
                let answer = match conn
                    .emit_with_ack("question", &Payload::json(json!(1)), timeout)
                    .await
                {
                    Ok(p) => p.first().cloned().unwrap_or(Value::Null),
                    Err(e) => json!(e.to_string()),
                };
                let _ = conn.emit("answer", &Payload::json(answer));
            }
            "flood" => {
                let big = Payload::empty().with_binary(Bytes::from(vec![7u8; 256 * 1024]));
                let mut sent = 0;
                while conn.emit("big", &big).is_ok() {
                    sent += 1;
                }
                let _ = sent;
            }
            "kick-me" => conn.disconnect(),
            _ => {}
        }
        if let Some(ack) = ack {
            let _ = ack.send(&Payload::json(
                json!({"ok": true, "rooms": conn.rooms().len()}),
            ));
        }
    }

    fn on_disconnect(&self, conn: &Conn<String>, reason: DisconnectReason) {
        let _ = self.disconnects.send((conn.user().clone(), reason));
    }
}

struct Server {
    io: SocketIo<Rooms>,
    addr: std::net::SocketAddr,
    disconnects: mpsc::UnboundedReceiver<(String, DisconnectReason)>,
}

async fn start(config: Config) -> Server {
    let (tx, disconnects) = mpsc::unbounded_channel();
    let io = SocketIo::new(config, Arc::new(Rooms { disconnects: tx }));
    // axum::serve: the boxed-`Upgraded` websocket path (conformance tests use
    // roomcast_sio::serve, the `TcpStream` one).
    let addr =
        support::serve_axum(axum::Router::new().route_service("/socket.io/", io.service())).await;
    Server {
        io,
        addr,
        disconnects,
    }
}

impl Server {
    async fn disconnected(&mut self) -> (String, DisconnectReason) {
        tokio::time::timeout(WAIT, self.disconnects.recv())
            .await
            .expect("no disconnect in time")
            .unwrap()
    }
}

/// Connect as `user` and join `rooms` (each acked, so joined on return).
async fn user(addr: std::net::SocketAddr, user: &str, rooms: &[&str]) -> Ws {
    let (mut ws, _) = Ws::open(addr).await;
    ws.send(&format!(r#"40{{"user":"{user}"}}"#)).await;
    assert!(ws.text().await.starts_with("40{\"sid\":"));
    for (i, room) in rooms.iter().enumerate() {
        ws.send(&format!(r#"42{i}["join","{room}"]"#)).await;
        assert!(ws.text().await.starts_with(&format!("43{i}[")));
    }
    ws
}

#[tokio::test]
async fn authentication_refusal_is_a_connect_error() {
    let s = start(Config::default()).await;
    let (mut ws, _) = Ws::open(s.addr).await;
    ws.send("40").await;
    assert_eq!(ws.text().await, r#"44{"message":"no user"}"#);
    ws.send(r#"40{"user":"ann"}"#).await;
    assert!(ws.text().await.starts_with("40{\"sid\":"));
}

#[tokio::test]
async fn an_event_right_after_connect_is_never_lost() {
    let s = start(Config::default()).await;
    for _ in 0..20 {
        let (mut ws, _) = Ws::open(s.addr).await;
        // CONNECT and an event in one breath, before reading the reply.
        ws.send(r#"40{"user":"eve"}"#).await;
        ws.send(r#"427["join","r"]"#).await;
        assert!(ws.text().await.starts_with("40{\"sid\":"));
        assert_eq!(ws.text().await, r#"437[{"ok":true,"rooms":2}]"#);
    }
}

#[tokio::test]
async fn room_broadcasts_reach_members_only_and_can_exclude_a_room() {
    let s = start(Config::default()).await;
    let mut alice = user(s.addr, "alice", &["room:1"]).await;
    let mut bob = user(s.addr, "bob", &["room:1"]).await;
    let mut carol = user(s.addr, "carol", &[]).await;

    assert_eq!(s.io.emit("room:1", "news", &Payload::json(json!("hi"))), 2);
    assert_eq!(alice.text().await, r#"42["news","hi"]"#);
    assert_eq!(bob.text().await, r#"42["news","hi"]"#);

    assert_eq!(
        s.io.emit_except("room:1", "user:alice", "news", &Payload::json(json!(2))),
        1
    );
    assert_eq!(bob.text().await, r#"42["news",2]"#);

    // Carol got neither: the next thing she (and everyone) sees is this.
    assert_eq!(s.io.emit_all("all", &Payload::empty()), 3);
    for ws in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(ws.text().await, r#"42["all"]"#);
    }
    assert_eq!(s.io.emit("room:none", "x", &Payload::empty()), 0);
}

#[tokio::test]
async fn broadcasts_and_leaves_can_pick_sockets_by_their_data() {
    let s = start(Config::default()).await;
    // Carol never joined `user:carol`: the filter goes by the socket's data.
    let mut alice = user(s.addr, "alice", &["room:1"]).await;
    let mut carol = user(s.addr, "carol", &["room:1"]).await;
    let keep = |u: &String| u.as_str() != "carol";
    assert_eq!(
        s.io.emit_where("room:1", keep, "news", &Payload::json(json!(1))),
        1
    );
    assert_eq!(alice.text().await, r#"42["news",1]"#);

    s.io.leave_where("room:1", |u: &String| u.as_str() == "alice");
    assert_eq!(s.io.emit("room:1", "m", &Payload::empty()), 1);
    assert_eq!(carol.text().await, r#"42["m"]"#);
    assert_eq!(s.io.of("/").unwrap().room_len("room:1"), 1);
}

#[tokio::test]
async fn every_socket_of_a_user_leaves_and_joins_rooms_together() {
    let s = start(Config::default()).await;
    let mut a1 = user(s.addr, "alice", &["room:1"]).await;
    let mut a2 = user(s.addr, "alice", &["room:1"]).await;
    let mut bob = user(s.addr, "bob", &["room:1"]).await;
    let root = s.io.of("/").unwrap();
    assert_eq!(root.room_len("user:alice"), 2);

    s.io.room_leave("user:alice", "room:1");
    assert_eq!(root.room_len("room:1"), 1);
    assert_eq!(s.io.emit("room:1", "m", &Payload::empty()), 1);
    assert_eq!(bob.text().await, r#"42["m"]"#);

    s.io.room_join("user:alice", "room:2");
    assert_eq!(s.io.emit("room:2", "m2", &Payload::empty()), 2);
    assert_eq!(a1.text().await, r#"42["m2"]"#);
    assert_eq!(a2.text().await, r#"42["m2"]"#);
    assert_eq!(root.sockets_in("room:2").len(), 2);
}

#[tokio::test]
async fn leaving_rooms_and_disconnecting_cleans_up() {
    let mut s = start(Config::default()).await;
    let mut ws = user(s.addr, "dan", &["a", "b"]).await;
    ws.send(r#"429["leave","a"]"#).await;
    assert_eq!(ws.text().await, r#"439[{"ok":true,"rooms":2}]"#);
    let root = s.io.of("/").unwrap();
    assert_eq!((root.room_len("a"), root.room_len("b")), (0, 1));
    ws.inner.close(None).await.unwrap();
    assert_eq!(
        s.disconnected().await,
        ("dan".to_owned(), DisconnectReason::TransportClose)
    );
    assert_eq!(
        (root.room_len("b"), root.room_len("user:dan"), root.len()),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn server_to_client_acks() {
    let s = start(Config::default()).await;
    let mut ws = user(s.addr, "ack", &[]).await;
    ws.send(r#"42["ask",2000]"#).await;
    let question = ws.text().await;
    let id = question
        .strip_prefix("42")
        .and_then(|q| q.strip_suffix(r#"["question",1]"#))
        .unwrap();
    ws.send(&format!(r#"43{id}["yes"]"#)).await;
    assert_eq!(ws.text().await, r#"42["answer","yes"]"#);

    ws.send(r#"42["ask",50]"#).await;
    assert!(ws.text().await.ends_with(r#"["question",1]"#));
    assert_eq!(ws.text().await, r#"42["answer","ack timed out"]"#);
}

#[tokio::test]
async fn server_namespace_disconnect_tells_the_client() {
    let mut s = start(Config::default()).await;
    let mut ws = user(s.addr, "kim", &[]).await;
    ws.send(r#"42["kick-me"]"#).await;
    assert_eq!(ws.text().await, "41");
    assert_eq!(
        s.disconnected().await.1,
        DisconnectReason::ServerNamespaceDisconnect
    );
    assert_eq!(s.io.connected(), 0);
    assert_eq!(s.io.sessions(), 1, "the connection itself stays open");
}

#[tokio::test]
async fn a_slow_consumer_is_closed_not_silently_skipped() {
    let config = Config {
        max_buffer_size: 8,
        max_payload: 1_000_000,
        ..Config::default()
    };
    let mut s = start(config).await;
    let ws = user(s.addr, "slow", &[]).await;
    // The client stops reading; the server floods it until its queue is full.
    let mut ws = ws;
    ws.send(r#"42["flood"]"#).await;
    assert_eq!(
        s.disconnected().await,
        ("slow".to_owned(), DisconnectReason::Overflow)
    );
    assert_eq!(s.io.sessions(), 0);
    assert_eq!(s.io.emit("user:slow", "x", &Payload::empty()), 0);
}

#[tokio::test]
async fn close_disconnects_everyone_so_they_reconnect() {
    let mut s = start(Config::default()).await;
    let mut a = user(s.addr, "a", &[]).await;
    let mut b = user(s.addr, "b", &[]).await;
    s.io.close();
    assert_eq!(s.io.sessions(), 0);
    assert_eq!(a.closed().await, Some(1001));
    assert_eq!(b.closed().await, Some(1001));
    let mut reasons = vec![s.disconnected().await, s.disconnected().await];
    reasons.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        reasons,
        [
            ("a".to_owned(), DisconnectReason::ServerShutdown),
            ("b".to_owned(), DisconnectReason::ServerShutdown)
        ]
    );
}

#[tokio::test]
async fn binary_broadcast_is_one_encoding_for_all() {
    let s = start(Config::default()).await;
    let mut a = user(s.addr, "a", &["r"]).await;
    let mut b = user(s.addr, "b", &["r"]).await;
    let payload = Payload::json(json!({"k": 1})).with_binary(Bytes::from_static(b"\x00\x01"));
    assert_eq!(s.io.emit("r", "bin", &payload), 2);
    for ws in [&mut a, &mut b] {
        assert_eq!(
            ws.text().await,
            r#"451-["bin",{"k":1},{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(ws.binary().await, [0, 1]);
    }
}

#[tokio::test]
async fn websocket_only_refuses_polling() {
    let s = start(Config {
        polling: false,
        ..Config::default()
    })
    .await;
    let r = reqwest::get(format!(
        "http://{}/socket.io/?EIO=4&transport=polling",
        s.addr
    ))
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(support::error_code(&r.text().await.unwrap()).0, 0);
    user(s.addr, "still-ws", &[]).await;
}

#[tokio::test]
async fn polling_clients_get_broadcasts() {
    let s = start(Config::default()).await;
    let polling = support::Polling::new(s.addr);
    let (sid, _) = polling.open().await;
    assert_eq!(polling.post(&sid, r#"40{"user":"pat"}"#).await.0, 200);
    assert!(polling.get_data(&sid).await.starts_with("40{\"sid\":"));
    assert_eq!(s.io.emit("user:pat", "hey", &Payload::json(json!(1))), 1);
    assert_eq!(polling.get_data(&sid).await, r#"42["hey",1]"#);
}

#[tokio::test]
async fn serve_returns_once_shutdown_completes() {
    let listener = roomcast_sio::listen(([127, 0, 0, 1], 0).into()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(roomcast_sio::serve(listener, axum::Router::new(), async {
        let _ = stopped.await;
    }));
    let r = reqwest::get(format!("http://{addr}/nothing"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
