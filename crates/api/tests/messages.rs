//! Messages: post, history, edit, delete — answers, events and refusals.

mod common;

use axum::http::{Method, StatusCode};
use common::{Cast, Member, assert_error, cast};
use roomcast_core::{Kind, MessageId, RoomId};
use serde_json::{Value, json};

impl Cast {
    fn messages(&self) -> String {
        format!("/v1/rooms/{}/messages", self.room)
    }

    fn message(&self, m: &Value) -> String {
        format!("{}/{}", self.messages(), m["id"].as_str().unwrap())
    }

    async fn send(&self, who: &Member, body: Value) -> (StatusCode, Value) {
        self.w
            .call(Method::POST, &self.messages(), Some(who), Some(body))
            .await
    }

    async fn history(&self, who: &Member, query: &str) -> (StatusCode, Value) {
        self.w
            .call(
                Method::GET,
                &format!("{}?{query}", self.messages()),
                Some(who),
                None,
            )
            .await
    }

    async fn edit(&self, who: &Member, m: &Value, body: &str) -> (StatusCode, Value) {
        self.w
            .call(
                Method::PATCH,
                &self.message(m),
                Some(who),
                Some(json!({"body": body})),
            )
            .await
    }

    async fn delete(&self, who: &Member, m: &Value) -> (StatusCode, Value) {
        self.w
            .call(Method::DELETE, &self.message(m), Some(who), None)
            .await
    }

    async fn snapshot(&self) -> Value {
        self.w.snapshot(self.room, &self.owner).await
    }
}

fn seqs(v: &Value) -> Vec<i64> {
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn posting_stores_once_and_tells_the_room_then_each_member() {
    let c = cast().await;
    let (s, v) = c
        .send(&c.carol, json!({"clientMsgId": "c-1", "body": "hi"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let m = &v["message"];
    assert_eq!(
        (&m["seq"], &m["body"], &m["clientMsgId"]),
        (&json!(1), &json!("hi"), &json!("c-1"))
    );
    assert_eq!(m["senderId"], c.carol.id.to_string());
    assert_eq!(m["roomId"], c.room.to_string());
    let kinds = c.w.outbox_kinds().await;
    assert_eq!(kinds[0], Kind::ReceiveMessage);
    assert_eq!(kinds[1..], vec![Kind::RoomUpdated; 4]);
    c.w.drain().await;

    // The same clientMsgId again: 200, the stored message, nothing queued.
    let (s, again) = c
        .send(&c.carol, json!({"clientMsgId": "c-1", "body": "other"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["message"], *m);
    assert!(c.w.outbox().await.is_empty());

    // A reply.
    let (s, r) = c
        .send(
            &c.owner,
            json!({"clientMsgId": "c-2", "body": "yo", "replyTo": m["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["message"]["replyTo"], m["id"]);
    assert_eq!(r["message"]["seq"], 2);
}

#[tokio::test]
async fn posting_is_refused_to_outsiders_and_bad_input() {
    let c = cast().await;
    let first = c.w.post(&c.owner, c.room, "m1", "first").await;
    let other_room = c.w.room(&c.owner, &[]).await;
    let elsewhere = c.w.post(&c.owner, other_room, "o1", "elsewhere").await;
    c.w.drain().await;
    let before = c.snapshot().await;

    let ok = json!({"clientMsgId": "x", "body": "hi"});
    assert_error(
        c.send(&c.erin, ok.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    for body in [
        json!({"clientMsgId": "x", "body": ""}),
        json!({"clientMsgId": "x", "body": "  \n "}),
        json!({"clientMsgId": "x", "body": "é".repeat(4001)}),
        json!({"clientMsgId": "", "body": "hi"}),
        json!({"clientMsgId": "x".repeat(129), "body": "hi"}),
        json!({"body": "hi"}),
        json!({"clientMsgId": "x"}),
        json!({"clientMsgId": "x", "body": "hi", "replyTo": "nope"}),
        json!({"clientMsgId": "x", "body": "hi", "replyTo": elsewhere["id"]}),
        json!([1, 2]),
    ] {
        assert_error(
            c.send(&c.carol, body).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
    assert_eq!(c.snapshot().await, before, "nothing stored");
    assert_eq!(first["seq"], 1);

    let got =
        c.w.call(
            Method::POST,
            &format!("/v1/rooms/{}/messages", RoomId::new()),
            Some(&c.carol),
            Some(ok.clone()),
        )
        .await;
    assert_error(got, StatusCode::NOT_FOUND, "not_found");
    let got =
        c.w.call(
            Method::POST,
            "/v1/rooms/1/messages",
            Some(&c.carol),
            Some(ok.clone()),
        )
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");

    // Removed: an outsider again.
    c.w.remove(&c.owner, c.room, &c.carol).await;
    assert_error(
        c.send(&c.carol, ok).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
}

#[tokio::test]
async fn history_pages_after_or_before_a_seq_ascending() {
    let c = cast().await;
    for i in 1..=5 {
        c.w.post(&c.owner, c.room, &format!("m{i}"), &format!("n{i}"))
            .await;
    }
    let cases = [
        ("", vec![1, 2, 3, 4, 5]),
        ("afterSeq=0", vec![1, 2, 3, 4, 5]),
        ("afterSeq=2&limit=2", vec![3, 4]),
        ("afterSeq=5", vec![]),
        ("beforeSeq=4&limit=2", vec![2, 3]),
        ("beforeSeq=1", vec![]),
        ("beforeSeq=100&limit=3", vec![3, 4, 5]),
        ("limit=1000", vec![1, 2, 3, 4, 5]),
    ];
    for (q, want) in cases {
        let (s, v) = c.history(&c.carol, q).await;
        assert_eq!(s, StatusCode::OK, "{q}: {v}");
        assert_eq!(seqs(&v), want, "{q}");
    }
}

#[tokio::test]
async fn bad_history_queries_and_outsiders_are_refused() {
    let c = cast().await;
    c.w.post(&c.owner, c.room, "m1", "n1").await;
    for q in [
        "afterSeq=1&beforeSeq=3",
        "afterSeq=-1",
        "beforeSeq=-1",
        "limit=0",
        "limit=-5",
        "afterSeq=x",
        "limit=1.5",
    ] {
        assert_error(
            c.history(&c.carol, q).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
    assert_error(
        c.history(&c.erin, "").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let got =
        c.w.call(
            Method::GET,
            &format!("/v1/rooms/{}/messages", RoomId::new()),
            Some(&c.carol),
            None,
        )
        .await;
    assert_error(got, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn only_the_sender_edits_and_an_edit_is_announced_once() {
    let c = cast().await;
    let m = c.w.post(&c.carol, c.room, "m1", "typo").await;
    c.w.drain().await;
    let (s, v) = c.edit(&c.carol, &m, "fixed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["message"]["body"], &v["message"]["seq"]),
        (&json!("fixed"), &json!(1))
    );
    assert!(v["message"]["editedAt"].is_string());
    let out = c.w.outbox().await;
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].kind.clone(), out[0].room_id),
        (Kind::MessageUpdated, Some(c.room))
    );
    assert_eq!(out[0].payload_value()["body"], "fixed");
    c.w.drain().await;

    let (s, _) = c.edit(&c.carol, &m, "fixed").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        c.w.outbox().await.is_empty(),
        "the same body again changes nothing"
    );

    let before = c.snapshot().await;
    for who in [&c.owner, &c.admin, &c.erin] {
        assert_error(
            c.edit(who, &m, "mine now").await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    for body in ["", "   ", &"x".repeat(4001)] {
        assert_error(
            c.edit(&c.carol, &m, body).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
    assert_eq!(c.snapshot().await, before);
}

#[tokio::test]
async fn edits_of_missing_or_deleted_messages_are_refused() {
    let c = cast().await;
    let m = c.w.post(&c.carol, c.room, "m1", "hello").await;
    let unknown = json!({"id": MessageId::new().to_string()});
    assert_error(
        c.edit(&c.carol, &unknown, "x").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let got =
        c.w.call(
            Method::PATCH,
            &format!("{}/not-an-id", c.messages()),
            Some(&c.carol),
            Some(json!({"body": "x"})),
        )
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");

    // The message addressed through another room the caller is in: not there.
    let other = c.w.room(&c.carol, &[]).await;
    let got =
        c.w.call(
            Method::PATCH,
            &format!("/v1/rooms/{other}/messages/{}", m["id"].as_str().unwrap()),
            Some(&c.carol),
            Some(json!({"body": "x"})),
        )
        .await;
    assert_error(got, StatusCode::NOT_FOUND, "not_found");

    assert_eq!(c.delete(&c.carol, &m).await.0, StatusCode::OK);
    c.w.drain().await;
    let before = c.snapshot().await;
    assert_error(
        c.edit(&c.carol, &m, "back").await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_eq!(c.snapshot().await, before);
}

#[tokio::test]
async fn senders_and_managers_delete_and_a_delete_is_announced_once() {
    let c = cast().await;
    let own = c.w.post(&c.carol, c.room, "m1", "mine").await;
    let by_admin = c.w.post(&c.carol, c.room, "m2", "admin deletes").await;
    let by_owner = c.w.post(&c.carol, c.room, "m3", "owner deletes").await;
    c.w.drain().await;

    let (s, v) = c.delete(&c.carol, &own).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["message"]["body"], &v["message"]["seq"]),
        (&json!(""), &json!(1))
    );
    assert!(v["message"]["deletedAt"].is_string());
    let out = c.w.outbox().await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, Kind::MessageDeleted);
    c.w.drain().await;

    let (s, again) = c.delete(&c.carol, &own).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["message"]["deletedAt"], v["message"]["deletedAt"]);
    assert!(
        c.w.outbox().await.is_empty(),
        "deleting again changes nothing"
    );

    assert_eq!(c.delete(&c.admin, &by_admin).await.0, StatusCode::OK);
    assert_eq!(c.delete(&c.owner, &by_owner).await.0, StatusCode::OK);
    let (_, h) = c.history(&c.carol, "").await;
    assert_eq!(seqs(&h), vec![1, 2, 3], "seqs stay");
    assert!(
        h["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["body"] == "")
    );
}

#[tokio::test]
async fn deleting_is_refused_to_other_members_and_outsiders() {
    let c = cast().await;
    let admins = c.w.post(&c.admin, c.room, "m1", "admin's").await;
    c.w.drain().await;
    let before = c.snapshot().await;
    for who in [&c.carol, &c.erin] {
        assert_error(
            c.delete(who, &admins).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    let unknown = json!({"id": MessageId::new().to_string()});
    assert_error(
        c.delete(&c.owner, &unknown).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(c.snapshot().await, before);
}
