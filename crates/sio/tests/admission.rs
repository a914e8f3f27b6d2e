//! [`Handler::admit`]: an asynchronous check after `authenticate` and before
//! the CONNECT reply. A refusal is a CONNECT_ERROR with its data; while
//! checks are pending, a client's CONNECTs past four are refused at once.

mod support;

use std::sync::Arc;

use roomcast_sio::{Ack, Config, Conn, ConnectInfo, Event, Handler, Payload, Refusal, SocketIo};
use serde_json::{Value, json};
use support::Ws;
use tokio::sync::{mpsc, watch};

/// Admits `alice` at once, refuses `ghost`, and holds `slow` until `gate`
/// opens (telling `entered` each time a check starts).
struct Gatekeeper {
    gate: watch::Receiver<bool>,
    entered: mpsc::UnboundedSender<()>,
}

#[async_trait::async_trait]
impl Handler for Gatekeeper {
    type Data = String;

    fn authenticate(&self, info: ConnectInfo<'_>) -> Result<String, Refusal> {
        Ok(info
            .auth
            .and_then(|a| a["user"].as_str())
            .unwrap_or_default()
            .to_owned())
    }

    fn admits(&self, user: &String) -> bool {
        // "known" is admitted from an answer held: no check.
        user != "known"
    }

    async fn admit(&self, user: &String) -> Result<(), Refusal> {
        match user.as_str() {
            "ghost" => Err(Refusal::with_data(
                "no such user",
                json!({"code": "unknown_user"}),
            )),
            "slow" => {
                let _ = self.entered.send(());
                let mut gate = self.gate.clone();
                let _ = gate.wait_for(|open| *open).await;
                Ok(())
            }
            "known" => panic!("asked about a user admits() said needs no check"),
            _ => Ok(()),
        }
    }

    async fn on_event(&self, _: Conn<String>, _: Event, ack: Option<Ack>) {
        if let Some(ack) = ack {
            let _ = ack.send(&Payload::json(json!({"ok": true})));
        }
    }
}

async fn start() -> (
    std::net::SocketAddr,
    watch::Sender<bool>,
    mpsc::UnboundedReceiver<()>,
) {
    let (entered, rx) = mpsc::unbounded_channel();
    let (gate, gate_rx) = watch::channel(false);
    let handler = Gatekeeper {
        gate: gate_rx,
        entered,
    };
    let io = SocketIo::new(Config::default(), Arc::new(handler));
    let addr = support::serve(axum::Router::new().route_service("/socket.io/", io.service())).await;
    // The server lives as long as the test's runtime.
    std::mem::forget(io);
    (addr, gate, rx)
}

#[tokio::test]
async fn a_refused_admission_is_a_connect_error_with_its_data() {
    let (addr, _, _) = start().await;
    let (mut ws, _) = Ws::open(addr).await;
    ws.send(r#"40{"user":"ghost"}"#).await;
    let reply = ws.text().await;
    let body: Value =
        serde_json::from_str(reply.strip_prefix("44").expect("CONNECT_ERROR")).unwrap();
    assert_eq!(
        body,
        json!({"message": "no such user", "data": {"code": "unknown_user"}})
    );

    // The session stays open: an admitted CONNECT on it succeeds.
    ws.send(r#"40{"user":"alice"}"#).await;
    assert!(ws.text().await.starts_with("40{\"sid\":"));
}

#[tokio::test]
async fn a_connect_that_needs_no_check_is_decided_without_one() {
    let (addr, _, _) = start().await;
    let (mut ws, _) = Ws::open(addr).await;
    // `admit` would panic for "known" (and its reply never come).
    ws.send(r#"40{"user":"known"}"#).await;
    assert!(ws.text().await.starts_with("40{\"sid\":"));
}

#[tokio::test]
async fn connects_past_four_pending_checks_are_refused_at_once() {
    let (addr, gate, mut entered) = start().await;
    let (mut ws, _) = Ws::open(addr).await;
    for _ in 0..4 {
        ws.send(r#"40{"user":"slow"}"#).await;
    }
    for _ in 0..4 {
        entered.recv().await.unwrap();
    }
    ws.send(r#"40{"user":"slow"}"#).await;
    let busy = ws.text().await;
    assert!(
        busy.starts_with("44") && busy.contains("too many CONNECTs"),
        "{busy}"
    );

    // Once the checks end, the namespace is joined once and works.
    gate.send(true).unwrap();
    assert!(ws.text().await.starts_with("40{\"sid\":"));
    ws.send(r#"421["ping"]"#).await;
    let mut next = ws.text().await;
    while !next.starts_with("431") {
        assert!(!next.starts_with("40"), "a second CONNECT reply: {next}");
        next = ws.text().await;
    }
    assert_eq!(next, r#"431[{"ok":true}]"#);
}
