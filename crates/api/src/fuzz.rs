//! Fuzzing entry point for the HTTP request bodies, shared by the `cargo
//! fuzz` target `http_bodies` (`crates/api/fuzz`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`), so CI replays the corpus on stable Rust.
//!
//! The first byte picks the request type, the rest is the body (or the
//! query string, for the routes that take one, or a reaction's emoji), decoded as the route's
//! extractor decodes it, then checked as its handler checks it before it
//! touches the store. Nothing may panic.

use roomcast_core::{Check, Role, SendMessage, validate};

use crate::auth::Credentials;
use crate::members::{AddMembers, SetRole};
use crate::messages::{EditMessage, History, PostMessage};
use crate::reads::MarkRead;
use crate::rooms::{CreateRoom, OpenDm, Rename, RoomsQuery, page_limit};

/// How many request types the first byte chooses among.
pub const TYPES: u8 = 17;

/// One request body (or query string) of the type chosen by `data[0]`.
pub fn bodies(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % TYPES {
        0 => {
            if let Ok(c) = serde_json::from_slice::<Credentials>(body) {
                let _ = validate::username(&c.username);
                let _ = validate::password(&c.password);
            }
        }
        1 => {
            if let Ok(c) = serde_json::from_slice::<CreateRoom>(body) {
                let _ = validate::room_name(&c.name);
                let _ = c.member_ids.len() > validate::MAX_ROOM_MEMBERS;
            }
        }
        2 => {
            if let Ok(r) = serde_json::from_slice::<Rename>(body) {
                let _ = validate::room_name(&r.name);
            }
        }
        3 => {
            let _ = serde_json::from_slice::<OpenDm>(body);
        }
        4 => {
            if let Ok(p) = serde_json::from_slice::<PostMessage>(body) {
                let cmd = SendMessage {
                    room_id: roomcast_core::RoomId::new(),
                    client_msg_id: p.client_msg_id,
                    body: p.body,
                    reply_to: p.reply_to,
                };
                let _ = cmd.check();
            }
        }
        5 => {
            if let Ok(e) = serde_json::from_slice::<EditMessage>(body) {
                let _ = validate::body(&e.body);
            }
        }
        6 => {
            let _ = serde_json::from_slice::<AddMembers>(body);
        }
        7 => {
            if let Ok(r) = serde_json::from_slice::<SetRole>(body) {
                let _ = Role::parse(&r.role);
            }
        }
        8 => {
            let _ = serde_json::from_slice::<MarkRead>(body);
        }
        9 => {
            if let Ok(q) = query::<History>(body) {
                let _ = q.page();
                let _ = page_limit(q.limit, validate::DEFAULT_PAGE, validate::MAX_PAGE);
            }
        }
        10 => {
            if let Ok(q) = query::<RoomsQuery>(body) {
                let _ = page_limit(
                    q.limit,
                    validate::DEFAULT_ROOM_PAGE,
                    validate::MAX_ROOM_PAGE,
                );
            }
        }
        11 => {
            if let Ok(q) = query::<crate::events::EventsQuery>(body) {
                let _ = crate::events::page(q.after_event_seq, q.limit);
            }
        }
        12 => {
            let _ = serde_json::from_slice::<crate::invitations::UpdateSettings>(body);
        }
        13 => {
            if let Ok(q) = query::<crate::invitations::InvitationsQuery>(body) {
                let _ = page_limit(
                    q.limit,
                    crate::invitations::DEFAULT_PAGE,
                    crate::invitations::MAX_PAGE,
                );
            }
        }
        14 => {
            if let Ok(r) = serde_json::from_slice::<crate::sessions::Refresh>(body) {
                let _ = roomcast_auth::RefreshToken::parse(&r.refresh_token);
            }
        }
        15 => {
            if let Ok(c) = serde_json::from_slice::<crate::sessions::ChangePassword>(body) {
                let _ = validate::password(&c.new_password);
                let _ = c.current_password.len() > validate::MAX_PASSWORD_BYTES;
            }
        }
        // A reaction's `{emoji}` path segment.
        _ => {
            if let Ok(emoji) = std::str::from_utf8(body) {
                let _ = validate::emoji(emoji);
            }
        }
    }
}

/// A query string decoded as axum's `Query` decodes it.
fn query<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, ()> {
    let text = std::str::from_utf8(raw).map_err(drop)?;
    let uri: axum::http::Uri = format!("/?{text}").parse().map_err(drop)?;
    axum::extract::Query::<T>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(drop)
}
