//! Stopping `roomcast api` (the shutdown token, as on SIGTERM): every
//! `chat.in` command the process was handed before or while it stops is
//! carried out once, and what it stored is published on `chat.out` before
//! [`Server::run`] returns.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::FutureExt;
use reqwest::StatusCode;
use roomcast::{Config, Role, Server, bind};
use roomcast_bus::{Bus, MemoryBus, Mode};
use roomcast_core::{Envelope, Kind, UserId};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const COMMANDS: usize = 200;

#[tokio::test]
async fn api_stop_carries_out_every_command_already_handed_over_and_publishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: format!("sqlite://{}/t.db", dir.path().display()),
        ..Config::default()
    };
    config.auth.jwt_secret = "a-test-secret-of-at-least-32-bytes!!".into();
    config.internal.secret = "the-internal-routes-secret".into();
    let topics = config.topics();
    let bus = Arc::new(MemoryBus::new());
    let mut out = bus
        .subscribe(
            &topics.chat_out,
            Mode::FanOut {
                node: "test".into(),
            },
        )
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let server = Server::build_with_bus(Role::Api, &config, bus.clone(), shutdown.clone())
        .await
        .unwrap();
    let listener = bind(config.listen).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(server.run(listener, None));

    let http = reqwest::Client::new();
    let v: Value = http
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"username": "alice", "password": "password-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = v["token"].as_str().unwrap().to_owned();
    let user: UserId = serde_json::from_value(v["user"]["id"].clone()).unwrap();
    let res = http
        .post(format!("{base}/v1/rooms"))
        .bearer_auth(&token)
        .json(&json!({"name": "stop", "memberIds": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let room = res.json::<Value>().await.unwrap()["room"]["id"].clone();

    // Commands as the realtime tier sends them; the stop comes right after,
    // while most of them are still waiting in the subscription.
    for i in 0..COMMANDS {
        let env = Envelope::to_user(
            Kind::SendMessage,
            user,
            json!({"roomId": room, "clientMsgId": format!("c{i}"), "body": format!("m{i}")}),
        );
        bus.publish(&topics.chat_in, &env.encode()).await.unwrap();
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let mut published = Vec::new();
    while let Some(Some(Ok(d))) = tokio::task::unconstrained(out.next()).now_or_never() {
        if d.envelope.kind == Kind::ReceiveMessage {
            published.push(
                d.envelope.payload_value()["clientMsgId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    let unique: HashSet<_> = published.iter().cloned().collect();
    assert_eq!(
        (published.len(), unique.len()),
        (COMMANDS, COMMANDS),
        "every command stored and published once before run returned"
    );
    let store = roomcast_store::open(&config.database_url).await.unwrap();
    assert!(
        store.outbox_pending(10).await.unwrap().is_empty(),
        "nothing left in the outbox"
    );
}
