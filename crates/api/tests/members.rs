//! Membership: add, remove, leave, roles — who may, who may not, and that a
//! refusal changes nothing.

mod common;

use axum::http::{Method, StatusCode};
use common::{Cast, Member, World, assert_error, cast};
use roomcast_core::{Kind, RoomId, UserId};
use serde_json::{Value, json};

impl Cast {
    fn path(&self, rest: &str) -> String {
        format!("/v1/rooms/{}{rest}", self.room)
    }

    async fn add(&self, who: &Member, ids: Value) -> (StatusCode, Value) {
        self.w
            .call(
                Method::POST,
                &self.path("/members"),
                Some(who),
                Some(json!({"userIds": ids})),
            )
            .await
    }

    async fn remove(&self, who: &Member, user: UserId) -> (StatusCode, Value) {
        self.w
            .call(
                Method::DELETE,
                &self.path(&format!("/members/{user}")),
                Some(who),
                None,
            )
            .await
    }

    async fn role(&self, who: &Member, user: UserId, role: &str) -> (StatusCode, Value) {
        self.w
            .call(
                Method::PUT,
                &self.path(&format!("/members/{user}/role")),
                Some(who),
                Some(json!({"role": role})),
            )
            .await
    }

    async fn leave(&self, who: &Member) -> (StatusCode, Value) {
        self.w
            .call(Method::POST, &self.path("/leave"), Some(who), None)
            .await
    }

    async fn snapshot(&self) -> Value {
        self.w.snapshot(self.room, &self.owner).await
    }
}

fn members(v: &Value) -> Vec<UserId> {
    v["room"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn owners_and_admins_add_members_and_every_member_hears_of_it() {
    let c = cast().await;
    let (s, v) = c.add(&c.owner, json!([c.erin.id])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(members(&v).contains(&c.erin.id));
    assert_eq!(v["room"]["roles"][c.erin.id.to_string()], "member");
    assert_eq!(v["room"]["readSeq"], 0, "answered as the caller sees it");
    let told: Vec<_> =
        c.w.outbox()
            .await
            .iter()
            .map(|e| (e.kind.clone(), e.user_id))
            .collect();
    assert_eq!(
        told.len(),
        5,
        "roomUpdated to each of the 5 members: {told:?}"
    );
    assert!(told.iter().all(|(k, _)| *k == Kind::RoomUpdated));
    assert!(
        told.iter().any(|(_, u)| *u == Some(c.erin.id)),
        "the new member too"
    );
    c.w.drain().await;

    // Adding existing members changes nothing.
    let (s, _) = c.add(&c.owner, json!([c.erin.id, c.carol.id])).await;
    assert_eq!(s, StatusCode::OK);
    assert!(c.w.outbox().await.is_empty());

    // An admin may add too.
    let frank = c.w.user("frank").await;
    let (s, v) = c.add(&c.admin, json!([frank.id])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(members(&v).contains(&frank.id));
}

#[tokio::test]
async fn adding_is_refused_to_members_outsiders_and_bad_input() {
    let c = cast().await;
    let before = c.snapshot().await;
    let frank = c.w.user("frank").await;
    for who in [&c.carol, &c.erin] {
        assert_error(
            c.add(who, json!([frank.id])).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    let too_many: Vec<UserId> = (0..1001).map(|_| UserId::new()).collect();
    for ids in [
        json!([]),
        json!(too_many),
        json!(["not-an-id"]),
        json!("x"),
        json!([frank.id, UserId::new()]),
    ] {
        assert_error(
            c.add(&c.owner, ids).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
    assert_eq!(c.snapshot().await, before, "nothing changed");

    let got =
        c.w.call(
            Method::POST,
            &format!("/v1/rooms/{}/members", RoomId::new()),
            Some(&c.owner),
            Some(json!({"userIds": [frank.id]})),
        )
        .await;
    assert_error(got, StatusCode::NOT_FOUND, "not_found");

    // A removed member is an outsider.
    assert_eq!(c.remove(&c.owner, c.dave.id).await.0, StatusCode::OK);
    assert_error(
        c.add(&c.dave, json!([frank.id])).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
}

#[tokio::test]
async fn removing_tells_the_removed_first_then_the_rest() {
    let c = cast().await;
    let (s, v) = c.remove(&c.owner, c.carol.id).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!members(&v).contains(&c.carol.id));
    let out = c.w.outbox().await;
    assert_eq!(out[0].kind, Kind::RoomRemoved);
    assert_eq!(
        (out[0].room_id, out[0].user_id),
        (Some(c.room), Some(c.carol.id))
    );
    assert_eq!(out[0].payload_value()["userId"], c.carol.id.to_string());
    let rest: Vec<_> = out[1..]
        .iter()
        .map(|e| (e.kind.as_str(), e.user_id.unwrap()))
        .collect();
    assert_eq!(rest.len(), 3, "{rest:?}");
    assert!(
        rest.iter()
            .all(|(k, u)| *k == "roomUpdated" && *u != c.carol.id)
    );

    // The removed member is now refused everywhere.
    let got =
        c.w.call(Method::GET, &c.path(""), Some(&c.carol), None)
            .await;
    assert_error(got, StatusCode::FORBIDDEN, "forbidden");
    let got =
        c.w.call(
            Method::POST,
            &c.path("/messages"),
            Some(&c.carol),
            Some(json!({"clientMsgId": "x", "body": "still here?"})),
        )
        .await;
    assert_error(got, StatusCode::FORBIDDEN, "forbidden");

    // An admin removes a member.
    let (s, v) = c.remove(&c.admin, c.dave.id).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!members(&v).contains(&c.dave.id));
}

#[tokio::test]
async fn removing_is_refused_by_rank() {
    let c = cast().await;
    let before = c.snapshot().await;
    // (actor, target): a member removes nobody; an admin removes neither the
    // owner nor an admin; nobody removes the owner; outsiders nothing.
    let cases = [
        (&c.carol, c.dave.id),
        (&c.carol, c.admin.id),
        (&c.admin, c.owner.id),
        (&c.erin, c.carol.id),
    ];
    for (who, target) in cases {
        assert_error(
            c.remove(who, target).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    // A second admin may not remove the first.
    assert_eq!(
        c.role(&c.owner, c.carol.id, "admin").await.0,
        StatusCode::OK
    );
    c.w.drain().await;
    let before_admins = c.snapshot().await;
    assert_error(
        c.remove(&c.carol, c.admin.id).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(c.snapshot().await, before_admins);
    assert_ne!(before, before_admins);

    // Not a member: 404; bad ids: 400.
    assert_error(
        c.remove(&c.owner, c.erin.id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let got =
        c.w.call(
            Method::DELETE,
            &c.path("/members/nope"),
            Some(&c.owner),
            None,
        )
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    let got =
        c.w.call(
            Method::DELETE,
            &format!("/v1/rooms/x/members/{}", c.carol.id),
            Some(&c.owner),
            None,
        )
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(c.snapshot().await, before_admins);
}

#[tokio::test]
async fn leaving_answers_204_by_either_route() {
    let c = cast().await;
    let (s, v) = c.leave(&c.carol).await;
    assert_eq!((s, v), (StatusCode::NO_CONTENT, Value::Null));
    let out = c.w.outbox().await;
    assert_eq!(out[0].kind, Kind::RoomRemoved);
    assert_eq!(out[0].user_id, Some(c.carol.id));

    let (s, v) = c.remove(&c.dave, c.dave.id).await;
    assert_eq!(
        (s, v),
        (StatusCode::NO_CONTENT, Value::Null),
        "DELETE of oneself is leaving"
    );
    let (_, v) =
        c.w.call(Method::GET, &c.path(""), Some(&c.owner), None)
            .await;
    assert_eq!(members(&v), vec![c.owner.id, c.admin.id]);

    // Leaving again, or never having been in: refused.
    assert_error(c.leave(&c.carol).await, StatusCode::FORBIDDEN, "forbidden");
    assert_error(c.leave(&c.erin).await, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn the_owner_leaves_only_an_empty_room() {
    let c = cast().await;
    let before = c.snapshot().await;
    assert_error(c.leave(&c.owner).await, StatusCode::CONFLICT, "conflict");
    assert_error(
        c.remove(&c.owner, c.owner.id).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_eq!(c.snapshot().await, before);

    for m in [&c.admin, &c.carol, &c.dave] {
        assert_eq!(c.leave(m).await.0, StatusCode::NO_CONTENT);
    }
    assert_eq!(c.leave(&c.owner).await.0, StatusCode::NO_CONTENT);
    let (_, v) =
        c.w.call(Method::GET, "/v1/rooms", Some(&c.owner), None)
            .await;
    assert_eq!(v["rooms"], json!([]));
}

#[tokio::test]
async fn the_owner_makes_and_unmakes_admins() {
    let c = cast().await;
    let (s, v) = c.role(&c.owner, c.carol.id, "admin").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["room"]["roles"][c.carol.id.to_string()], "admin");
    assert_eq!(c.w.outbox_kinds().await, vec![Kind::RoomUpdated; 4]);
    c.w.drain().await;

    let (s, _) = c.role(&c.owner, c.carol.id, "admin").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        c.w.outbox().await.is_empty(),
        "the same role again changes nothing"
    );

    let (s, v) = c.role(&c.owner, c.carol.id, "member").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["room"]["roles"][c.carol.id.to_string()], "member");
}

#[tokio::test]
async fn roles_are_refused_to_all_but_the_owner_and_checked() {
    let c = cast().await;
    let before = c.snapshot().await;
    for who in [&c.admin, &c.carol, &c.erin] {
        assert_error(
            c.role(who, c.dave.id, "admin").await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    for role in ["owner", "king", ""] {
        assert_error(
            c.role(&c.owner, c.dave.id, role).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
    let got =
        c.w.call(
            Method::PUT,
            &c.path(&format!("/members/{}/role", c.dave.id)),
            Some(&c.owner),
            Some(json!({})),
        )
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    assert_error(
        c.role(&c.owner, c.erin.id, "admin").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(c.snapshot().await, before);
}

#[tokio::test]
async fn a_dms_membership_never_changes() {
    let w = World::new().await;
    let [a, b, c] = w.users(["alice", "bob", "carol"]).await;
    let (_, v) = w.dm(&a, b.id).await;
    let dm: RoomId = v["room"]["id"].as_str().unwrap().parse().unwrap();
    w.drain().await;
    let before = w.snapshot(dm, &a).await;
    let path = format!("/v1/rooms/{dm}");
    let got = w
        .call(
            Method::POST,
            &format!("{path}/members"),
            Some(&a),
            Some(json!({"userIds": [c.id]})),
        )
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    let got = w
        .call(
            Method::DELETE,
            &format!("{path}/members/{}", b.id),
            Some(&a),
            None,
        )
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    let got = w
        .call(Method::POST, &format!("{path}/leave"), Some(&a), None)
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(w.snapshot(dm, &a).await, before);
}
