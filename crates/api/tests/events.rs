//! The room event log over HTTP (`GET /v1/rooms/{id}/events`) and the
//! realtime tier's internal route to it.

mod common;

use axum::http::{Method, StatusCode};
use common::{World, assert_error};
use serde_json::{Value, json};

fn seqs(v: &Value) -> Vec<i64> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventSeq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_member_reads_what_was_emitted_after_a_position() {
    let w = World::new().await;
    let [a, b, c] = w.users(["alice", "bob", "carol"]).await;
    let room = w.room(&a, &[&b]).await;
    w.drain().await;
    let m1 = w.post(&a, room, "m1", "one").await;
    w.post(&b, room, "m2", "two").await;
    let id = m1["id"].as_str().unwrap().to_owned();
    let (s, _) = w
        .call(
            Method::PATCH,
            &format!("/v1/rooms/{room}/messages/{id}"),
            Some(&a),
            Some(json!({"body": "one, edited"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let live: Vec<Value> = w
        .outbox()
        .await
        .into_iter()
        .filter(|e| e.event_seq.is_some())
        .map(|e| json!({"eventSeq": e.event_seq, "type": e.kind, "payload": e.payload}))
        .collect();
    assert_eq!(live.len(), 3);

    let path = format!("/v1/rooms/{room}/events");
    let (s, v) = w.call(Method::GET, &path, Some(&b), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"events": live, "lastEventSeq": 3, "recovered": true, "more": false})
    );
    let (_, v) = w
        .call(
            Method::GET,
            &format!("{path}?afterEventSeq=1&limit=1"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!((seqs(&v), &v["more"]), (vec![2], &json!(true)));
    let (_, v) = w
        .call(
            Method::GET,
            &format!("{path}?afterEventSeq=9"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!((seqs(&v), &v["recovered"]), (vec![], &json!(false)));

    let forbidden = w.call(Method::GET, &path, Some(&c), None).await;
    assert_error(forbidden, StatusCode::FORBIDDEN, "forbidden");
    for bad in ["afterEventSeq=-1", "afterEventSeq=x", "limit=0"] {
        let got = w
            .call(Method::GET, &format!("{path}?{bad}"), Some(&a), None)
            .await;
        assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    }
    let unauthenticated = w.call(Method::GET, &path, None, None).await;
    assert_error(unauthenticated, StatusCode::UNAUTHORIZED, "unauthorized");
}
