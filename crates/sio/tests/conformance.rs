//! The conformance server (`examples/sio-conformance.rs`), tested behaviour
//! by behaviour over raw websocket and long-polling clients.

mod support;

#[allow(dead_code, missing_docs)]
#[path = "../examples/sio-conformance.rs"]
mod conformance;

use std::net::SocketAddr;

use serde_json::{Value, json};
use support::{Polling, WAIT, Ws, error_code};

async fn start() -> SocketAddr {
    let (router, _io) = conformance::app();
    support::serve(router).await
}

// ---- Engine.IO: handshake and errors ----

#[tokio::test]
async fn websocket_handshake_has_the_reference_settings() {
    let addr = start().await;
    let (_ws, open) = Ws::open(addr).await;
    assert_eq!(open["sid"].as_str().map(str::len), Some(20));
    assert_eq!(open["upgrades"], json!([]));
    assert_eq!(open["pingInterval"], 300);
    assert_eq!(open["pingTimeout"], 200);
    assert_eq!(open["maxPayload"], 1_000_000);
}

#[tokio::test]
async fn polling_handshake_offers_the_websocket_upgrade() {
    let addr = start().await;
    let (sid, open) = Polling::new(addr).open().await;
    assert_eq!(sid.len(), 20);
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!(open["pingInterval"], 300);
}

#[tokio::test]
async fn bad_requests_get_the_protocol_errors() {
    let addr = start().await;
    let http = reqwest::Client::new();
    let get = |q: &'static str| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://{addr}/socket.io/?{q}"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), error_code(&r.text().await.unwrap()))
        }
    };
    assert_eq!(
        get("EIO=3&transport=polling").await,
        (400, (5, "Unsupported protocol version".into()))
    );
    assert_eq!(get("EIO=4").await, (400, (0, "Transport unknown".into())));
    assert_eq!(
        get("EIO=4&transport=flash").await,
        (400, (0, "Transport unknown".into()))
    );
    assert_eq!(
        get("EIO=4&transport=polling&sid=nope").await,
        (400, (1, "Session ID unknown".into()))
    );
    assert_eq!(
        get("EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA").await,
        (400, (1, "Session ID unknown".into()))
    );
    // A websocket request without the upgrade headers.
    assert_eq!(
        get("EIO=4&transport=websocket").await,
        (400, (3, "Bad request".into()))
    );
    let r = http
        .post(format!("http://{addr}/socket.io/?EIO=4&transport=polling"))
        .body("40")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), error_code(&r.text().await.unwrap()).0),
        (400, 2)
    );
    // Other paths are not Socket.IO's.
    let r = http
        .get(format!("http://{addr}/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

// ---- Engine.IO: heartbeat ----

#[tokio::test]
async fn pings_keep_coming_while_pongs_answer() {
    let addr = start().await;
    let (mut ws, _) = Ws::open(addr).await;
    ws.send("40").await;
    for _ in 0..4 {
        loop {
            match ws.next().await {
                Some(tokio_tungstenite::tungstenite::Message::Text(t)) if t.as_str() == "2" => {
                    break;
                }
                Some(_) => continue,
                None => panic!("closed while ponging"),
            }
        }
        ws.send("3").await;
    }
}

#[tokio::test]
async fn no_pong_closes_the_connection() {
    let addr = start().await;
    let (mut ws, _) = Ws::open(addr).await;
    ws.send("40").await;
    let started = tokio::time::Instant::now();
    let code = ws.closed().await;
    assert_eq!(code, Some(1000));
    // pingInterval + pingTimeout, plus the sweep's granularity.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn polling_gets_pings_too() {
    let addr = start().await;
    let polling = Polling::new(addr);
    let (sid, _) = polling.open().await;
    assert_eq!(polling.post(&sid, "40").await, (200, "ok".into()));
    let body = polling.get_data(&sid).await;
    assert!(body.starts_with("40{\"sid\":"), "{body}");
    let (status, body) = polling.get(&sid).await;
    assert_eq!((status, body.as_str()), (200, "2"));
}

#[tokio::test]
async fn no_connect_within_one_second_closes() {
    let addr = start().await;
    let (mut ws, _) = Ws::open(addr).await;
    let started = tokio::time::Instant::now();
    // Pings are answered, so only the connect timeout can end this.
    loop {
        match ws.next().await {
            Some(tokio_tungstenite::tungstenite::Message::Text(t)) if t.as_str() == "2" => {
                ws.send("3").await
            }
            Some(tokio_tungstenite::tungstenite::Message::Close(_)) | None => break,
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
}

// ---- Engine.IO: long-polling ----

#[tokio::test]
async fn concurrent_polls_are_refused_and_close_the_session() {
    let addr = start().await;
    let polling = Polling::new(addr);
    let (sid, _) = polling.open().await;
    polling.post(&sid, "40").await;
    polling.get_data(&sid).await; // the CONNECT reply and auth event
    // Two GETs at once: neither can complete until the second overlaps the
    // first, which closes the session; the parked one then answers close.
    let (a, b) = tokio::join!(polling.get(&sid), polling.get(&sid));
    let (refused, parked) = if a.0 == 400 { (a, b) } else { (b, a) };
    assert_eq!(error_code(&refused.1).0, 3);
    assert_eq!(
        (parked.0, parked.1.as_str()),
        (200, "1"),
        "the pending poll learns of the close"
    );
    assert_eq!(error_code(&polling.get(&sid).await.1).0, 1);
}

#[tokio::test]
async fn a_post_over_max_payload_is_refused() {
    let addr = start().await;
    let polling = Polling::new(addr);
    let (sid, _) = polling.open().await;
    let (status, _) = polling
        .post(&sid, format!("4{}", "x".repeat(1_000_001)))
        .await;
    assert_eq!(status, 413);
    assert_eq!(error_code(&polling.get(&sid).await.1).0, 1);
}

#[tokio::test]
async fn polling_carries_several_packets_per_request() {
    let addr = start().await;
    let polling = Polling::new(addr);
    let (sid, _) = polling.open().await;
    let body = "40\x1e42[\"message\",1]\x1e42[\"message\",2]";
    assert_eq!(polling.post(&sid, body).await, (200, "ok".into()));
    let mut packets = Vec::new();
    while packets.len() < 4 {
        packets.extend(
            polling
                .get_data(&sid)
                .await
                .split('\x1e')
                .map(str::to_owned),
        );
    }
    assert!(packets[0].starts_with("40{\"sid\":"));
    assert_eq!(packets[1], r#"42["auth",{}]"#);
    packets[2..].sort();
    assert_eq!(
        packets[2..],
        [r#"42["message-back",1]"#, r#"42["message-back",2]"#]
    );
}

#[tokio::test]
async fn polling_binary_is_base64() {
    let addr = start().await;
    let polling = Polling::new(addr);
    let (sid, _) = polling.open().await;
    polling.post(&sid, "40").await;
    polling.get_data(&sid).await;
    let body = "451-[\"message\",{\"_placeholder\":true,\"num\":0}]\x1ebAQIDBA==";
    assert_eq!(polling.post(&sid, body).await, (200, "ok".into()));
    let mut got = polling.get_data(&sid).await;
    if !got.contains('\x1e') {
        got = format!("{got}\x1e{}", polling.get_data(&sid).await);
    }
    assert_eq!(
        got,
        "451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]\x1ebAQIDBA=="
    );
}

#[tokio::test]
async fn polling_upgrades_to_websocket() {
    let addr = start().await;
    let polling = Polling::new(addr);
    let (sid, _) = polling.open().await;
    polling.post(&sid, "40").await;
    polling.get_data(&sid).await;
    // A GET is pending while the probe runs: it is answered with a noop.
    let pending = tokio::spawn({
        let (p, sid) = (Polling::new(addr), sid.clone());
        async move { p.get(&sid).await }
    });
    let mut ws = Ws::connect(addr, &format!("&sid={sid}")).await;
    ws.send("2probe").await;
    assert_eq!(ws.text().await, "3probe");
    let (status, body) = tokio::time::timeout(WAIT, pending).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert!(
        body == "6" || body.split('\x1e').all(|p| p == "2" || p == "6"),
        "{body}"
    );
    ws.send("5").await;
    ws.send(r#"42["message","over websocket"]"#).await;
    assert_eq!(ws.text().await, r#"42["message-back","over websocket"]"#);
    // Polling on an upgraded session is refused.
    assert_eq!(error_code(&polling.get(&sid).await.1).0, 3);
}

#[tokio::test]
async fn a_failed_probe_leaves_polling_working() {
    let addr = start().await;
    let polling = Polling::new(addr);
    let (sid, _) = polling.open().await;
    polling.post(&sid, "40").await;
    polling.get_data(&sid).await;
    let mut ws = Ws::connect(addr, &format!("&sid={sid}")).await;
    ws.send("2probe").await;
    assert_eq!(ws.text().await, "3probe");
    drop(ws);
    polling
        .post(&sid, "42[\"message\",\"still polling\"]")
        .await;
    assert_eq!(
        polling.get_data(&sid).await,
        r#"42["message-back","still polling"]"#
    );
}

// ---- Socket.IO ----

#[tokio::test]
async fn connect_emits_auth_with_the_handshake_auth() {
    let addr = start().await;
    let (mut ws, _) = Ws::open(addr).await;
    ws.send(r#"40{"token":"123"}"#).await;
    let reply = ws.text().await;
    let sid: Value = serde_json::from_str(reply.strip_prefix("40").unwrap()).unwrap();
    assert_eq!(sid["sid"].as_str().map(str::len), Some(20));
    assert_eq!(ws.text().await, r#"42["auth",{"token":"123"}]"#);
}

#[tokio::test]
async fn custom_namespace_connects_and_others_are_invalid() {
    let addr = start().await;
    let (mut ws, _) = Ws::open(addr).await;
    ws.send(r#"40/custom,{"token":"abc"}"#).await;
    assert!(ws.text().await.starts_with("40/custom,{\"sid\":"));
    assert_eq!(ws.text().await, r#"42/custom,["auth",{"token":"abc"}]"#);
    ws.send("40/random,").await;
    assert_eq!(
        ws.text().await,
        r#"44/random,{"message":"Invalid namespace"}"#
    );
    // The connection survives the refusal.
    ws.send("40").await;
    assert!(ws.text().await.starts_with("40{\"sid\":"));
}

#[tokio::test]
async fn message_is_echoed_with_all_its_arguments() {
    let addr = start().await;
    let mut ws = Ws::joined(addr).await;
    ws.send(r#"42["message",1,"2",{"3":[4]},null]"#).await;
    assert_eq!(
        ws.text().await,
        r#"42["message-back",1,"2",{"3":[4]},null]"#
    );
}

#[tokio::test]
async fn binary_message_is_echoed_with_its_attachments() {
    let addr = start().await;
    let mut ws = Ws::joined(addr).await;
    ws.send(r#"452-["message",{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]"#)
        .await;
    ws.send_binary(&[1, 2, 3]).await;
    ws.send_binary(&[4]).await;
    assert_eq!(
        ws.text().await,
        r#"452-["message-back",{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(ws.binary().await, [1, 2, 3]);
    assert_eq!(ws.binary().await, [4]);
}

#[tokio::test]
async fn message_with_ack_is_acked_with_the_same_arguments() {
    let addr = start().await;
    let mut ws = Ws::joined(addr).await;
    ws.send(r#"4212["message-with-ack",1,"2",{"3":[4]}]"#).await;
    assert_eq!(ws.text().await, r#"4312[1,"2",{"3":[4]}]"#);
    ws.send(r#"451-13["message-with-ack",{"_placeholder":true,"num":0}]"#)
        .await;
    ws.send_binary(&[9, 8]).await;
    assert_eq!(ws.text().await, r#"461-13[{"_placeholder":true,"num":0}]"#);
    assert_eq!(ws.binary().await, [9, 8]);
}

#[tokio::test]
async fn disconnect_then_reconnect_gets_a_new_socket() {
    let addr = start().await;
    let (mut ws, _) = Ws::open(addr).await;
    ws.send("40").await;
    let first = ws.text().await;
    ws.text().await;
    ws.send("41").await;
    ws.send("40").await;
    let second = ws.text().await;
    assert!(second.starts_with("40{\"sid\":"));
    assert_ne!(first, second);
}

#[tokio::test]
async fn protocol_violations_close_the_connection() {
    let addr = start().await;
    for bad in ["42[\"message\"]", "9", "4{", "40", "45-[\"x\"]"] {
        let (mut ws, _) = Ws::open(addr).await;
        if bad == "40" {
            // A second CONNECT to the same namespace.
            ws.send("40").await;
            ws.text().await;
            ws.text().await;
        }
        ws.send(bad).await;
        assert_eq!(ws.closed().await, Some(1002), "{bad}");
    }
}

#[tokio::test]
async fn a_websocket_message_over_max_payload_closes() {
    let addr = start().await;
    let mut ws = Ws::joined(addr).await;
    ws.send(&format!("42[\"message\",\"{}\"]", "x".repeat(1_000_001)))
        .await;
    assert_eq!(ws.closed().await, Some(1009));
}

#[tokio::test]
async fn a_client_close_ends_the_session() {
    let (router, io) = conformance::app();
    let addr = support::serve(router).await;
    let mut ws = Ws::joined(addr).await;
    assert_eq!(io.connected(), 1);
    ws.send("1").await;
    ws.closed().await;
    assert_eq!(io.connected(), 0);
    assert_eq!(io.sessions(), 0);
}
