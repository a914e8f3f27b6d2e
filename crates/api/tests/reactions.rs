//! Reactions: a set per (user, message, emoji); refusals change nothing.

mod common;

use axum::http::{Method, StatusCode};
use std::ops::Deref;

use common::{Cast, Member, assert_error, cast, pct};
use roomcast_core::{Kind, MessageId, validate};
use serde_json::{Value, json};

/// The cast's room with one message of alice's to react to.
struct Scene {
    cast: Cast,
    message: Value,
}

impl Deref for Scene {
    type Target = Cast;
    fn deref(&self) -> &Cast {
        &self.cast
    }
}

async fn scene() -> Scene {
    let cast = cast().await;
    let message = cast
        .w
        .post(&cast.owner, cast.room, "m1", "react to me")
        .await;
    cast.w.drain().await;
    Scene { cast, message }
}

impl Scene {
    fn path(&self, message: &str, emoji: &str) -> String {
        format!(
            "/v1/rooms/{}/messages/{message}/reactions/{}",
            self.room,
            pct(emoji)
        )
    }

    async fn react(&self, method: Method, who: &Member, emoji: &str) -> (StatusCode, Value) {
        let id = self.message["id"].as_str().unwrap().to_owned();
        self.w
            .call(method, &self.path(&id, emoji), Some(who), None)
            .await
    }

    async fn reactions(&self, who: &Member) -> Value {
        let (s, v) = self
            .w
            .call(
                Method::GET,
                &format!("/v1/rooms/{}/messages", self.room),
                Some(who),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        v["messages"][0]["reactions"].clone()
    }
}

#[tokio::test]
async fn adding_and_removing_is_a_set_and_each_change_is_announced_once() {
    let c = scene().await;
    let (s, v) = c.react(Method::PUT, &c.carol, "👍").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"changed": true})));
    let out = c.w.outbox().await;
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].kind.clone(), out[0].room_id),
        (Kind::ReactionAdded, Some(c.room))
    );
    assert_eq!(out[0].payload_value()["emoji"], "👍");
    assert_eq!(out[0].payload_value()["userId"], c.carol.id.to_string());
    assert_eq!(out[0].payload_value()["seq"], 1);
    c.w.drain().await;

    let (s, v) = c.react(Method::PUT, &c.carol, "👍").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"changed": false})));
    assert!(c.w.outbox().await.is_empty());

    assert_eq!(
        c.react(Method::PUT, &c.owner, "👍").await.1,
        json!({"changed": true})
    );
    assert_eq!(
        c.react(Method::PUT, &c.owner, "👩‍👩‍👧").await.1,
        json!({"changed": true})
    );
    assert_eq!(
        c.reactions(&c.carol).await,
        json!([
            {"emoji": "👍", "count": 2, "me": true},
            {"emoji": "👩‍👩‍👧", "count": 1, "me": false},
        ])
    );
    c.w.drain().await;

    let (s, v) = c.react(Method::DELETE, &c.carol, "👍").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"changed": true})));
    assert_eq!(c.w.outbox_kinds().await, vec![Kind::ReactionRemoved]);
    c.w.drain().await;
    let (s, v) = c.react(Method::DELETE, &c.carol, "👍").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"changed": false})));
    assert!(c.w.outbox().await.is_empty());
}

#[tokio::test]
async fn reactions_are_refused_to_outsiders_bad_emoji_and_deleted_messages() {
    let c = scene().await;
    c.react(Method::PUT, &c.carol, "👍").await;
    c.w.drain().await;
    let before = c.w.snapshot(c.room, &c.owner).await;

    for method in [Method::PUT, Method::DELETE] {
        assert_error(
            c.react(method.clone(), &c.erin, "👍").await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        for bad in ["smile", ":smile:", "👍 ", &"👍".repeat(17)] {
            assert_error(
                c.react(method.clone(), &c.carol, bad).await,
                StatusCode::BAD_REQUEST,
                "bad_request",
            );
        }
        let got =
            c.w.call(
                method.clone(),
                &c.path(&MessageId::new().to_string(), "👍"),
                Some(&c.carol),
                None,
            )
            .await;
        assert_error(got, StatusCode::NOT_FOUND, "not_found");
        let got =
            c.w.call(method.clone(), &c.path("nope", "👍"), Some(&c.carol), None)
                .await;
        assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    }
    assert_eq!(c.w.snapshot(c.room, &c.owner).await, before);

    let (s, _) =
        c.w.call(
            Method::DELETE,
            &format!(
                "/v1/rooms/{}/messages/{}",
                c.room,
                c.message["id"].as_str().unwrap()
            ),
            Some(&c.owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    c.w.drain().await;
    assert_error(
        c.react(Method::PUT, &c.carol, "🎉").await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert!(c.w.outbox().await.is_empty());
}

#[tokio::test]
async fn one_user_has_at_most_the_limit_of_emoji_on_a_message() {
    let c = scene().await;
    let emoji: Vec<String> = (0..=validate::MAX_REACTIONS_PER_USER)
        .map(|i| char::from_u32(0x1F600 + i as u32).unwrap().to_string())
        .collect();
    let (last, allowed) = emoji.split_last().unwrap();
    for e in allowed {
        assert_eq!(
            c.react(Method::PUT, &c.carol, e).await.1,
            json!({"changed": true})
        );
    }
    c.w.drain().await;
    assert_error(
        c.react(Method::PUT, &c.carol, last).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert!(c.w.outbox().await.is_empty());
}
