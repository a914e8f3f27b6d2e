//! The gateway through a real Socket.IO websocket: a served gateway on an
//! in-process bus, and a raw Engine.IO v4 / Socket.IO v5 client (only the
//! packets these tests use). Covers what the unit tests cannot: the
//! transport's connect/disconnect hooks, `leaveRoom`, `roomRemoved` taking the
//! user's sockets out of the room, and typing skipping the typer's sockets.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use roomcast_auth::Tokens;
use roomcast_bus::{Bus, MemoryBus, Mode, Subscription, Topics};
use roomcast_core::RoomAccess;
use roomcast_core::{Envelope, Kind, RoomId, UserId};
use roomcast_gateway::membership::MembershipError;
use roomcast_gateway::{ChatConfig, Gateway, GatewayDeps, Membership, SocketIoConfig};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// Longest wait for anything expected.
const WAIT: Duration = Duration::from_secs(5);

/// Members by (room, user).
#[derive(Default)]
struct Members(Mutex<HashSet<(RoomId, UserId)>>);

#[async_trait]
impl Membership for Members {
    async fn access(&self, room: RoomId, user: UserId) -> Result<RoomAccess, MembershipError> {
        let set = self.0.lock().unwrap();
        Ok(if set.contains(&(room, user)) {
            RoomAccess::Member {
                last_seq: 0,
                last_event_seq: 0,
            }
        } else if set.iter().any(|(r, _)| *r == room) {
            RoomAccess::NotMember
        } else {
            RoomAccess::NoRoom
        })
    }
}

struct Server {
    addr: SocketAddr,
    tokens: Arc<Tokens>,
    members: Arc<Members>,
    bus: Arc<MemoryBus>,
    chat_in: Subscription,
    shutdown: CancellationToken,
    gateway_tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn serve() -> Server {
    let bus = Arc::new(MemoryBus::new());
    let topics = Topics::default();
    let chat_in = bus
        .subscribe(&topics.chat_in, Mode::FanOut { node: "obs".into() })
        .await
        .unwrap();
    let tokens = Arc::new(Tokens::new(b"test secret", Duration::from_secs(600)));
    let members = Arc::new(Members::default());
    let shutdown = CancellationToken::new();
    let gateway = Gateway::start(
        GatewayDeps {
            tokens: tokens.clone(),
            membership: members.clone(),
            bus: bus.clone(),
            topics,
            socketio: SocketIoConfig::default(),
            node: "rt-test".into(),
            chat: ChatConfig::default(),
            guard: roomcast_gateway::GuardConfig::default(),
        },
        shutdown.clone(),
    )
    .await
    .unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "" }))
        .layer(gateway.layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .unwrap();
    });
    Server {
        addr,
        tokens,
        members,
        bus,
        chat_in,
        shutdown,
        gateway_tasks: gateway.tasks,
    }
}

impl Server {
    fn member(&self, room: RoomId, user: UserId) {
        self.members.0.lock().unwrap().insert((room, user));
    }

    async fn client(&self, user: UserId) -> Client {
        Client::connect(self.addr, &self.tokens.issue(user)).await
    }

    async fn publish_out(&self, env: &Envelope) {
        self.bus.publish("chat.out", &env.encode()).await.unwrap();
    }

    /// The next `chat.in` envelope of `kind`, skipping others.
    async fn next_in(&mut self, kind: Kind) -> Envelope {
        tokio::time::timeout(WAIT, async {
            loop {
                let env = self.chat_in.next().await.unwrap().unwrap().envelope;
                if env.kind == kind {
                    return env;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {kind} on chat.in"))
    }
}

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ack: u64,
    events: VecDeque<(String, Value)>,
}

impl Client {
    async fn connect(addr: SocketAddr, token: &str) -> Self {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut c = Self {
            ws,
            next_ack: 1,
            events: VecDeque::new(),
        };
        assert!(c.frame().await.starts_with('0'), "Engine.IO open");
        c.send(format!("40{}", json!({ "token": token }))).await;
        let connect = c.frame().await;
        assert!(connect.starts_with("40{"), "CONNECT accepted: {connect}");
        c
    }

    async fn send(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next text frame, answering pings.
    async fn frame(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .unwrap();
            match msg {
                Message::Text(t) if t.as_str() == "2" => self.send("3".into()).await,
                Message::Text(t) => return t.as_str().to_owned(),
                _ => {}
            }
        }
    }

    /// Emit `event` and wait for its ACK; events arriving meanwhile are kept.
    async fn call(&mut self, event: &str, data: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send(format!("42{id}{}", json!([event, data]))).await;
        let prefix = format!("43{id}[");
        loop {
            let f = self.frame().await;
            if let Some(rest) = f.strip_prefix(&prefix) {
                let args: Value = serde_json::from_str(&format!("[{rest}")).unwrap();
                return args[0].clone();
            }
            self.keep(&f);
        }
    }

    fn keep(&mut self, f: &str) {
        if let Some(rest) = f.strip_prefix("42") {
            let v: Value = serde_json::from_str(rest).unwrap();
            self.events
                .push_back((v[0].as_str().unwrap().to_owned(), v[1].clone()));
        }
    }

    /// The next event (from the kept ones first).
    async fn event(&mut self) -> (String, Value) {
        loop {
            if let Some(e) = self.events.pop_front() {
                return e;
            }
            let f = self.frame().await;
            self.keep(&f);
        }
    }

    async fn close(mut self) {
        self.ws.close(None).await.unwrap();
    }
}

/// A `receiveMessage`-shaped marker to `room`: once a socket sees it, it has
/// seen everything published to the room before it.
fn marker(room: RoomId, n: u64) -> Envelope {
    Envelope::to_room(Kind::ReceiveMessage, room, json!({ "marker": n }))
}

#[tokio::test]
async fn presence_is_counted_per_user_and_published_on_chat_in() {
    let mut s = serve().await;
    let beat = s.next_in(Kind::NodeHeartbeat).await;
    let node = beat.payload_value()["node"].as_str().unwrap().to_owned();
    assert!(
        node.starts_with("rt-test:"),
        "{node}: the node and its start time"
    );
    let u = UserId::new();
    let a = s.client(u).await;
    let on = s.next_in(Kind::PresenceChanged).await;
    assert_eq!(on.user_id, Some(u));
    assert_eq!(
        (&on.payload_value()["node"], &on.payload_value()["online"]),
        (&json!(node), &json!(true))
    );
    let b = s.client(u).await;
    a.close().await;
    // `b` is still connected: the next change is only when it goes too.
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.close().await;
    let off = s.next_in(Kind::PresenceChanged).await;
    assert_eq!(
        (off.user_id, &off.payload_value()["online"]),
        (Some(u), &json!(false))
    );
    assert!(off.payload_value()["at"].as_i64() > on.payload_value()["at"].as_i64());
}

#[tokio::test]
async fn send_message_is_acked_after_reaching_chat_in() {
    let mut s = serve().await;
    let (u, room) = (UserId::new(), RoomId::new());
    s.member(room, u);
    let mut c = s.client(u).await;
    let ack = c
        .call(
            "sendMessage",
            json!({ "roomId": room, "clientMsgId": "c1", "body": "hello" }),
        )
        .await;
    assert_eq!(ack, json!({ "ok": true, "clientMsgId": "c1" }));
    let env = s.next_in(Kind::SendMessage).await;
    assert_eq!(
        (env.user_id, &env.payload_value()["body"]),
        (Some(u), &json!("hello"))
    );
    let bad = c
        .call("markMessageRead", json!({ "roomId": room, "seq": -5 }))
        .await;
    assert_eq!(bad["error"]["code"], "bad_request");
    let other = RoomId::new();
    s.member(other, UserId::new());
    let no = c
        .call("markMessageRead", json!({ "roomId": other, "seq": 1 }))
        .await;
    assert_eq!(
        (&no["ok"], &no["error"]["code"]),
        (&json!(false), &json!("forbidden"))
    );
}

#[tokio::test]
async fn typing_reaches_the_room_except_the_typers_sockets_and_ends_on_disconnect() {
    let s = serve().await;
    let (typer, reader, room) = (UserId::new(), UserId::new(), RoomId::new());
    s.member(room, typer);
    s.member(room, reader);
    let mut t1 = s.client(typer).await;
    let mut t2 = s.client(typer).await;
    let mut r = s.client(reader).await;
    for c in [&mut t1, &mut t2, &mut r] {
        assert_eq!(
            c.call("joinRoom", json!({ "roomId": room })).await["ok"],
            true
        );
    }
    let ack = t1
        .call("typing", json!({ "roomId": room, "typing": true }))
        .await;
    assert_eq!(ack, json!({ "ok": true }));
    let (kind, payload) = r.event().await;
    assert_eq!(kind, "typing");
    assert_eq!(
        payload,
        json!({ "roomId": room, "userId": typer, "typing": true })
    );
    // The typer's other socket sees the marker but not the typing event.
    s.publish_out(&marker(room, 1)).await;
    assert_eq!(
        t2.event().await,
        ("receiveMessage".into(), json!({ "marker": 1 }))
    );
    assert_eq!(r.event().await.0, "receiveMessage");
    // Closing the typing socket relays typing:false.
    t1.close().await;
    let (kind, payload) = r.event().await;
    assert_eq!(
        (kind.as_str(), &payload["typing"]),
        ("typing", &json!(false))
    );
}

#[tokio::test]
async fn room_removed_takes_the_users_sockets_out_of_the_room_first() {
    let s = serve().await;
    let (gone, stays, room) = (UserId::new(), UserId::new(), RoomId::new());
    s.member(room, gone);
    s.member(room, stays);
    let mut g1 = s.client(gone).await;
    let mut g2 = s.client(gone).await;
    let mut k = s.client(stays).await;
    for c in [&mut g1, &mut g2, &mut k] {
        c.call("joinRoom", json!({ "roomId": room })).await;
        c.call("joinUser", json!({})).await;
    }
    // A socket of the removed user that never joined `user:<id>`, also in
    // another room.
    let other = RoomId::new();
    s.member(other, gone);
    let mut g3 = s.client(gone).await;
    g3.call("joinRoom", json!({ "roomId": room })).await;
    g3.call("joinRoom", json!({ "roomId": other })).await;
    let payload = json!({ "roomId": room, "userId": gone });
    let mut removed = Envelope::to_room(Kind::RoomRemoved, room, payload.clone());
    removed.user_id = Some(gone);
    s.publish_out(&removed).await;
    s.publish_out(&marker(room, 2)).await;
    // Each of the removed user's sockets: roomRemoved, and no room event after it.
    for g in [&mut g1, &mut g2] {
        assert_eq!(g.event().await, ("roomRemoved".into(), payload.clone()));
    }
    // The member who stays never sees roomRemoved, only the marker.
    assert_eq!(
        k.event().await,
        ("receiveMessage".into(), json!({ "marker": 2 }))
    );
    // The socket without `joinUser` left the room too (and got no roomRemoved).
    s.publish_out(&marker(other, 9)).await;
    assert_eq!(
        g3.event().await,
        ("receiveMessage".into(), json!({ "marker": 9 }))
    );
    let user_only = Envelope::to_user(Kind::RoomUpdated, gone, json!({ "n": 3 }));
    s.publish_out(&user_only).await;
    for g in [&mut g1, &mut g2] {
        assert_eq!(g.event().await, ("roomUpdated".into(), json!({ "n": 3 })));
    }
}

#[tokio::test]
async fn leave_room_stops_the_rooms_events_on_that_socket_only() {
    let s = serve().await;
    let (u, room) = (UserId::new(), RoomId::new());
    s.member(room, u);
    let mut a = s.client(u).await;
    let mut b = s.client(u).await;
    for c in [&mut a, &mut b] {
        c.call("joinRoom", json!({ "roomId": room })).await;
        c.call("joinUser", json!({})).await;
    }
    assert_eq!(
        a.call("leaveRoom", json!({ "roomId": room })).await,
        json!({ "ok": true })
    );
    let bad = a.call("leaveRoom", json!({})).await;
    assert_eq!(bad["error"]["code"], "bad_request");
    s.publish_out(&marker(room, 4)).await;
    s.publish_out(&Envelope::to_user(Kind::RoomUpdated, u, json!({ "n": 5 })))
        .await;
    assert_eq!(a.event().await, ("roomUpdated".into(), json!({ "n": 5 })));
    assert_eq!(
        b.event().await,
        ("receiveMessage".into(), json!({ "marker": 4 }))
    );
}

#[tokio::test]
async fn shutdown_publishes_the_nodes_users_offline_and_ends_the_tasks() {
    let mut s = serve().await;
    let u = UserId::new();
    let _c = s.client(u).await;
    let on = s.next_in(Kind::PresenceChanged).await;
    assert_eq!(on.payload_value()["online"], true);
    s.shutdown.cancel();
    let off = s.next_in(Kind::PresenceChanged).await;
    assert_eq!(
        (off.user_id, &off.payload_value()["online"]),
        (Some(u), &json!(false))
    );
    for t in std::mem::take(&mut s.gateway_tasks) {
        tokio::time::timeout(WAIT, t).await.unwrap().unwrap();
    }
}

/// One `roomUpdatedMany` becomes each member's own `roomUpdated` (their read
/// marker and unread count) on the sockets that joined `user:<id>`; sockets
/// that did not, and the room itself, get nothing; a malformed one is dropped.
#[tokio::test]
async fn room_updated_many_tells_each_member_their_own_view() {
    use roomcast_core::{Role, Room, RoomKind, RoomUpdates};
    let s = serve().await;
    let (a, b, c, room) = (UserId::new(), UserId::new(), UserId::new(), RoomId::new());
    for u in [a, b, c] {
        s.member(room, u);
    }
    let mut sa = s.client(a).await;
    sa.call("joinUser", json!({})).await;
    let mut sb = s.client(b).await;
    sb.call("joinRoom", json!({ "roomId": room })).await;

    let garbled = Envelope::to_room(Kind::RoomUpdatedMany, room, json!({ "reads": 1 }));
    s.publish_out(&garbled).await;
    let updates = RoomUpdates {
        room: Room {
            id: room,
            kind: RoomKind::Group,
            name: "general".into(),
            members: vec![a, b, c],
            roles: [(a, Role::Owner), (b, Role::Member), (c, Role::Member)].into(),
            last_seq: 3,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            last_activity_at: "2026-01-01T00:00:01.000Z".into(),
        },
        last_message: None,
        reads: [(a, 1), (b, 0), (c, 3)].into(),
    };
    let many = Envelope::to_room(
        Kind::RoomUpdatedMany,
        room,
        serde_json::to_value(&updates).unwrap(),
    );
    s.publish_out(&many).await;
    s.publish_out(&marker(room, 1)).await;

    let (event, view) = sa.event().await;
    assert_eq!(event, "roomUpdated");
    assert_eq!(view["id"], room.to_string());
    assert_eq!(view["readSeq"], 1);
    assert_eq!(view["unreadCount"], 2, "lastSeq 3 − readSeq 1");
    assert_eq!(view["members"].as_array().unwrap().len(), 3);
    assert!(
        view.get("reads").is_none(),
        "no one sees the others' markers"
    );
    // b joined the room but not `user:<b>`: only the room's own event.
    assert_eq!(
        sb.event().await,
        ("receiveMessage".into(), json!({ "marker": 1 }))
    );
}

#[tokio::test]
async fn an_envelope_of_an_unknown_kind_or_a_newer_version_is_skipped_and_the_consumer_goes_on() {
    let s = serve().await;
    let (u, room) = (UserId::new(), RoomId::new());
    s.member(room, u);
    let mut c = s.client(u).await;
    c.call("joinRoom", json!({ "roomId": room })).await;
    c.call("joinUser", json!({})).await;
    // From a newer node: a type this build does not know, and a known type
    // in a newer contract version. Several of each: only one log line each.
    for n in 0..3 {
        s.publish_out(&Envelope::to_room(
            Kind::parse("teleport"),
            room,
            json!({ "n": n }),
        ))
        .await;
        let mut newer = Envelope::to_user(Kind::RoomUpdated, u, json!({ "newer": n }));
        newer.v = roomcast_core::ENVELOPE_VERSION + 1;
        s.publish_out(&newer).await;
    }
    s.publish_out(&marker(room, 7)).await;
    assert_eq!(
        c.event().await,
        ("receiveMessage".into(), json!({ "marker": 7 })),
        "nothing skipped reached the socket, and the consumer went on"
    );
}
