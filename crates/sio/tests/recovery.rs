//! Connection state recovery at the protocol layer: the `pid` in CONNECT
//! replies, a CONNECT that brings one back decided by `Handler::recover`
//! before the reply, the restore running right after it, and per-socket
//! last arguments on broadcasts (`emit_each`). What an offset means is the
//! application's; this handler accepts `resume:<room>`.

mod support;

use std::sync::Arc;

use roomcast_sio::{Ack, Config, Conn, ConnectInfo, Event, Handler, Payload, Restore, SocketIo};
use serde_json::{Value, json};
use support::Ws;

struct Resumable;

#[async_trait::async_trait]
impl Handler for Resumable {
    type Data = String;

    fn authenticate(&self, info: ConnectInfo<'_>) -> Result<String, roomcast_sio::Refusal> {
        info.auth
            .and_then(|a| a["user"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| "no user".into())
    }

    async fn recover(&self, data: &String, _pid: &str, offset: &str) -> Option<Restore<String>> {
        let room = offset.strip_prefix("resume:")?.to_owned();
        let user = data.clone();
        Some(Box::new(move |conn: &Conn<String>| {
            conn.join(room.clone());
            let payload = Payload::json(json!(user)).with(json!(format!("resume:{room}")));
            let _ = conn.emit("replayed", &payload);
        }))
    }

    async fn on_event(&self, conn: Conn<String>, event: Event, ack: Option<Ack>) {
        if event.name == "join" {
            conn.join(
                event
                    .payload
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
        }
        if let Some(ack) = ack {
            let _ = ack.send(&Payload::json(json!({"ok": true})));
        }
    }
}

async fn start(recovery: bool) -> (SocketIo<Resumable>, std::net::SocketAddr) {
    let config = Config {
        recovery,
        ..Config::default()
    };
    let io = SocketIo::new(config, Arc::new(Resumable));
    let addr =
        support::serve_axum(axum::Router::new().route_service("/socket.io/", io.service())).await;
    (io, addr)
}

/// CONNECT with `auth`; the reply's JSON.
async fn connect(addr: std::net::SocketAddr, auth: Value) -> (Ws, Value) {
    let (mut ws, _) = Ws::open(addr).await;
    ws.send(&format!("40{auth}")).await;
    let reply = ws.text().await;
    let json = reply.strip_prefix("40").expect("a CONNECT reply");
    (ws, serde_json::from_str(json).expect("JSON"))
}

#[tokio::test]
async fn a_session_is_continued_when_the_handler_recovers_it() {
    let (io, addr) = start(true).await;
    let (_first, reply) = connect(addr, json!({"user": "ann"})).await;
    let pid = reply["pid"].as_str().expect("a pid is offered").to_owned();
    assert_eq!(pid.len(), 20);
    assert_ne!(reply["sid"], reply["pid"]);

    // Back with the pid and an offset the handler takes: same pid, then the
    // restore's emit, then live broadcasts to the room it rejoined.
    let auth = json!({"user": "ann", "pid": pid, "offset": "resume:r1"});
    let (mut ws, reply) = connect(addr, auth).await;
    assert_eq!(reply["pid"], json!(pid), "recovered: the same pid");
    assert_eq!(ws.text().await, r#"42["replayed","ann","resume:r1"]"#);
    let sent = io.emit_each(
        "r1",
        |_| true,
        "news",
        &Payload::json(json!({"n": 1})),
        |user| Some(format!("{user}@2")),
    );
    assert_eq!(sent, 1);
    assert_eq!(ws.text().await, r#"42["news",{"n":1},"ann@2"]"#);

    // An offset the handler refuses, or a malformed pid: a fresh session.
    let auth = json!({"user": "ann", "pid": pid, "offset": "nope"});
    let (_ws, reply) = connect(addr, auth).await;
    assert!(reply["pid"].is_string());
    assert_ne!(reply["pid"], json!(pid), "a fresh session");
    let auth = json!({"user": "ann", "pid": "short", "offset": "resume:r2"});
    let (_ws, reply) = connect(addr, auth).await;
    assert_ne!(reply["pid"], json!("short"));
    assert_eq!(io.room_len("r2"), 0, "nothing restored");
    // The token's refusal comes first, recovery or not.
    let (mut ws, _) = Ws::open(addr).await;
    ws.send(&format!(r#"40{{"pid":"{pid}","offset":"resume:r1"}}"#))
        .await;
    assert_eq!(ws.text().await, r#"44{"message":"no user"}"#);
}

#[tokio::test]
async fn without_recovery_there_is_no_pid_and_no_recovery() {
    let (io, addr) = start(false).await;
    let (_ws, reply) = connect(addr, json!({"user": "bob"})).await;
    assert_eq!(reply.get("pid"), None);
    let auth = json!({"user": "bob", "pid": "aaaaaaaaaaaaaaaaaaaa", "offset": "resume:r1"});
    let (mut ws, reply) = connect(addr, auth).await;
    assert_eq!(reply.get("pid"), None);
    assert_eq!(io.room_len("r1"), 0);
    // Plain broadcasts carry no extra argument when `last` gives none.
    ws.send(r#"420["join","r3"]"#).await;
    assert_eq!(ws.text().await, r#"430[{"ok":true}]"#);
    io.emit_each("r3", |_| true, "x", &Payload::json(json!(1)), |_| None);
    assert_eq!(ws.text().await, r#"42["x",1]"#);
}
