//! Setting up a run through the real HTTP API: users registered, rooms
//! created with their members, and messages posted.

use std::sync::Arc;

use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::Client;
use serde_json::{Value, json};

/// One room and the tokens of its members.
pub struct RoomInfo {
    /// Room id.
    pub id: Arc<str>,
    /// Members' tokens; the first created the room.
    pub tokens: Vec<Arc<str>>,
}

/// All rooms of a run.
pub struct World {
    /// Rooms, indexed by room number.
    pub rooms: Vec<RoomInfo>,
}

impl World {
    /// The room and token connection `i` uses: rooms round-robin, and within a
    /// room its members round-robin.
    pub fn assignment(&self, i: usize) -> (usize, Arc<str>) {
        let r = i % self.rooms.len();
        let room = &self.rooms[r];
        let token = room.tokens[(i / self.rooms.len()) % room.tokens.len()].clone();
        (r, token)
    }
}

async fn call(
    http: &Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut req = http.post(&url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.with_context(|| format!("POST {url}"))?;
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {url}: {status} {v}");
    }
    Ok(v)
}

/// Register `rooms × users_per_room` users and create the rooms.
pub async fn build(
    http: &Client,
    base: &str,
    rooms: usize,
    users_per_room: usize,
    concurrency: usize,
) -> anyhow::Result<World> {
    let run = std::process::id()
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos());
    let names: Vec<String> = (0..rooms * users_per_room)
        .map(|u| format!("b{run:x}_{u}"))
        .collect();
    let users: Vec<(String, Arc<str>)> = futures::stream::iter(names)
        .map(|name| async move {
            let v = call(
                http,
                format!("{base}/v1/auth/register"),
                None,
                json!({ "username": name, "password": "bench-password" }),
            )
            .await?;
            let id = v["user"]["id"].as_str().context("user id")?.to_owned();
            let token: Arc<str> = v["token"].as_str().context("token")?.into();
            Ok::<_, anyhow::Error>((id, token))
        })
        .buffered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let rooms: Vec<RoomInfo> = futures::stream::iter(users.chunks(users_per_room).enumerate())
        .map(|(r, members)| async move {
            let ids: Vec<&str> = members[1..].iter().map(|(id, _)| id.as_str()).collect();
            let v = call(
                http,
                format!("{base}/v1/rooms"),
                Some(&members[0].1),
                json!({ "name": format!("bench room {r}"), "memberIds": ids }),
            )
            .await?;
            Ok::<_, anyhow::Error>(RoomInfo {
                id: v["room"]["id"].as_str().context("room id")?.into(),
                tokens: members.iter().map(|(_, t)| t.clone()).collect(),
            })
        })
        .buffered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    Ok(World { rooms })
}

/// Post one message to a room; the body is the bench body.
pub async fn post(
    http: &Client,
    base: &str,
    room: &RoomInfo,
    k: usize,
    body: String,
) -> anyhow::Result<()> {
    let token = &room.tokens[k % room.tokens.len()];
    call(
        http,
        format!("{base}/v1/rooms/{}/messages", room.id),
        Some(token),
        json!({ "clientMsgId": format!("m{k}"), "body": body }),
    )
    .await
    .map(|_| ())
}
