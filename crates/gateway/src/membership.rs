//! How the gateway learns whether a user may join a room.
//!
//! [`Membership`] is a trait so the split deployment can answer it without the
//! API's database ([`HttpMembership`]). In `roomcast serve` the store answers
//! it directly (the `roomcast` crate's `StoreMembership`: this crate does not
//! depend on the store).

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_core::{
    ErrorBody, ErrorCode, RoomAccess, RoomEvents, RoomId, RoomList, SessionId, UserId,
};

/// A membership check that could not be answered (database or API unreachable).
#[derive(Debug, thiserror::Error)]
#[error("membership check failed: {0}")]
pub struct MembershipError(pub String);

/// Answers "what is `user` to `room`?".
#[async_trait]
pub trait Membership: Send + Sync + 'static {
    /// The caller's access to a room, with the room's latest seq for members.
    async fn access(&self, room: RoomId, user: UserId) -> Result<RoomAccess, MembershipError>;
    /// The room's logged events after position `after`, at most `limit`, as
    /// `user` (a member) reads them (see `Store::room_events`): what a
    /// rejoin replays when this node's buffer does not reach back. The
    /// default has no event log: such a rejoin is answered `internal`, and a
    /// plain join's ACK carries no `eventSeq`.
    async fn events(
        &self,
        _room: RoomId,
        _user: UserId,
        _after: i64,
        _limit: i64,
    ) -> Result<RoomEvents, MembershipError> {
        Err(MembershipError("no room event log here".into()))
    }

    /// The first page (at most `limit`) of `user`'s room list, as `GET
    /// /v1/rooms` answers it: what `joinUser {rooms: true}` and a recovered
    /// session's refresh send. The default cannot say.
    async fn rooms(&self, _user: UserId, _limit: i64) -> Result<RoomList, MembershipError> {
        Err(MembershipError("no room list here".into()))
    }

    /// May a token of `user` in login `session` connect: does the user
    /// exist, and is the session live? ([`crate::admission`].) The default
    /// cannot say, and says yes.
    async fn admit(
        &self,
        _user: UserId,
        _session: Option<SessionId>,
    ) -> Result<Admitted, MembershipError> {
        Ok(Admitted::Yes)
    }
}

/// The answer of [`Membership::admit`] (defined in core: the API tier's
/// internal route answers it too).
pub use roomcast_core::Admitted;

/// A membership answer as a socket command sees it: a member's room seq, or
/// the error to ACK (`forbidden`, `not_found`, or `internal` when the check
/// failed; the failure is logged).
pub fn member_seq(answer: Result<RoomAccess, MembershipError>) -> Result<i64, ErrorBody> {
    match answer {
        Ok(RoomAccess::Member { last_seq, .. }) => Ok(last_seq),
        Ok(RoomAccess::NotMember) => Err(ErrorBody::new(
            ErrorCode::Forbidden,
            "you are not a member of this room",
        )),
        Ok(RoomAccess::NoRoom) => Err(ErrorBody::new(ErrorCode::NotFound, "no such room")),
        Err(e) => {
            tracing::error!(error = %e, "membership check failed");
            Err(ErrorBody::new(ErrorCode::Internal, "internal error"))
        }
    }
}

/// Membership from the API tier's internal route (the split deployment): the
/// realtime node holds no database connection.
///
/// Each check is one `GET {api_url}/internal/v1/access` with a fresh service
/// token, bounded by [`HTTP_TIMEOUT`], asked again on a new connection (up
/// to [`SEND_ATTEMPTS`] in all) when its connection fails before an answer,
/// as during an API deploy. Answers are not cached: `joinRoom` needs
/// the room's latest seq as of the join, and a removed member must not pass.
pub struct HttpMembership {
    http: reqwest::Client,
    /// For asking again: no pooled connection, so a retry never lands on
    /// another idle connection to the node that just went away.
    fresh: reqwest::Client,
    api_url: String,
    tokens: Arc<roomcast_auth::ServiceTokens>,
    node: String,
}

/// An error with its causes (reqwest's own text names none).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Tries per internal request whose connection failed before an answer
/// (each to whichever API node the load balancer picks).
pub const SEND_ATTEMPTS: u32 = 3;

/// Longest wait for one membership answer.
pub const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl HttpMembership {
    /// Ask the API's internal listener at `api_url` (e.g.
    /// `http://api.internal:3001`), as service `node`.
    pub fn new(api_url: &str, tokens: Arc<roomcast_auth::ServiceTokens>, node: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(HTTP_TIMEOUT)
                .build()
                .expect("a plain HTTP client builds"),
            fresh: reqwest::Client::builder()
                .timeout(HTTP_TIMEOUT)
                .pool_max_idle_per_host(0)
                .build()
                .expect("a plain HTTP client builds"),
            api_url: api_url.trim_end_matches('/').to_owned(),
            tokens,
            node: node.to_owned(),
        }
    }
}

impl HttpMembership {
    /// `GET {api_url}{path}?{query}` with a fresh service token, as JSON.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, MembershipError> {
        let unavailable = |e: String| MembershipError(format!("API {}: {e}", self.api_url));
        let mut attempt = 1;
        let res = loop {
            let client = if attempt == 1 {
                &self.http
            } else {
                &self.fresh
            };
            let sent = client
                .get(format!("{}{path}", self.api_url))
                .query(query)
                .bearer_auth(self.tokens.issue(&self.node))
                .send()
                .await;
            match sent {
                Ok(res) => break res,
                // The request never got an answer (an API node going away
                // under a deploy closed the connection): a GET may be asked
                // again, on a new connection, which the load balancer sends
                // to another node.
                Err(e) if attempt < SEND_ATTEMPTS && !e.is_timeout() => attempt += 1,
                Err(e) => return Err(unavailable(chain(&e))),
            }
        };
        if !res.status().is_success() {
            return Err(unavailable(format!("status {}", res.status())));
        }
        res.json().await.map_err(|e| unavailable(e.to_string()))
    }
}

#[async_trait]
impl Membership for HttpMembership {
    async fn access(&self, room: RoomId, user: UserId) -> Result<RoomAccess, MembershipError> {
        let query = [("roomId", room.to_string()), ("userId", user.to_string())];
        self.get("/internal/v1/access", &query).await
    }

    async fn events(
        &self,
        room: RoomId,
        user: UserId,
        after: i64,
        limit: i64,
    ) -> Result<RoomEvents, MembershipError> {
        let query = [
            ("roomId", room.to_string()),
            ("userId", user.to_string()),
            ("afterEventSeq", after.to_string()),
            ("limit", limit.to_string()),
        ];
        self.get("/internal/v1/events", &query).await
    }

    async fn rooms(&self, user: UserId, limit: i64) -> Result<RoomList, MembershipError> {
        let query = [("userId", user.to_string()), ("limit", limit.to_string())];
        self.get("/internal/v1/rooms", &query).await
    }

    async fn admit(
        &self,
        user: UserId,
        session: Option<SessionId>,
    ) -> Result<Admitted, MembershipError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            admit: Admitted,
        }
        let mut query = vec![("userId", user.to_string())];
        if let Some(session) = session {
            query.push(("sessionId", session.to_string()));
        }
        let answer: Answer = self.get("/internal/v1/admit", &query).await?;
        Ok(answer.admit)
    }
}

#[cfg(test)]
mod tests {

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// An API whose first `drop_first` connections close before answering
    /// (a node going away mid-deploy), then answers `not_member`.
    async fn flaky_api(drop_first: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for n in 0.. {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                if n < drop_first {
                    drop(sock);
                    continue;
                }
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = r#"{"access":"not_member"}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            }
        });
        url
    }

    fn membership(url: &str) -> HttpMembership {
        let tokens = Arc::new(roomcast_auth::ServiceTokens::new(b"secret"));
        HttpMembership::new(url, tokens, "rt-test")
    }

    #[tokio::test]
    async fn a_connection_closed_before_the_answer_is_asked_again() {
        let url = flaky_api(SEND_ATTEMPTS as usize - 1).await;
        let answer = membership(&url).access(RoomId::new(), UserId::new()).await;
        assert!(matches!(answer, Ok(RoomAccess::NotMember)), "{answer:?}");
    }

    #[tokio::test]
    async fn it_gives_up_after_its_attempts() {
        let url = flaky_api(SEND_ATTEMPTS as usize).await;
        let answer = membership(&url).access(RoomId::new(), UserId::new()).await;
        assert!(answer.is_err(), "{answer:?}");
    }
}
