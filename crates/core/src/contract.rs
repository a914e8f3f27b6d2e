//! The tier contract, typed: each `chat.out` event ([`crate::ChatOut`], in
//! [`crate::chat_out`]) and each `chat.in` command ([`ChatIn`]) is one
//! variant, built and encoded into its [`Envelope`] once by its producer and
//! decoded from it once by its consumer, so the tiers `match` on variants
//! instead of comparing event names, and each command is checked in one
//! place ([`Check`]).
//!
//! # Versions and unknown kinds
//! Every envelope carries `v`, the contract version it was written for
//! ([`ENVELOPE_VERSION`]; absent means 1). A consumer that receives a newer
//! version, or a `type` it does not know, gets a [`Skip`] back: it logs it
//! once per kind ([`SkipLog`]) and acks it. So during a rolling upgrade with
//! mixed versions no consumer wedges on an envelope it cannot read; the
//! newer nodes handle what the older ones skip.
//!
//! # `chat.out` payloads
//! What the realtime tier passes through to clients (a message, a room view,
//! …) stays in [`Envelope::payload`] as the JSON text the store encoded;
//! [`crate::Route`] carries only what routing needs: targets, the log
//! position, and the parsed `roomUpdatedMany` (which the realtime tier turns
//! into per-member views).

use std::collections::HashSet;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::chat_out::parse;
use crate::envelope::{Envelope, raw};
use crate::ids::UserId;
use crate::kind::Kind;
use crate::validate;
use crate::wire::{MarkMessageRead, SendMessage};

/// The contract version this build writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

/// Longest accepted realtime node name, in bytes.
pub const MAX_NODE_BYTES: usize = 128;

/// Why an envelope is skipped (logged once per kind, acked).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Written for a newer contract than this build reads.
    #[error("envelope version {0} is newer than {ENVELOPE_VERSION}")]
    NewerVersion(u32),
    /// A `type` this build does not know.
    #[error("unknown envelope type {0:?}")]
    UnknownKind(String),
    /// A known `type` without what it needs (a target, a payload field, …).
    #[error("malformed {kind}: {why}")]
    Malformed {
        /// The envelope's `type`.
        kind: String,
        /// What is wrong.
        why: String,
    },
}

impl Skip {
    pub(crate) fn malformed(env: &Envelope, why: impl Into<String>) -> Self {
        Self::Malformed {
            kind: env.kind.to_string(),
            why: why.into(),
        }
    }
}

/// The rules a command's payload must pass, wherever it arrives (a socket,
/// HTTP, `chat.in`).
pub trait Check {
    /// Why this command is refused, if it is (a message fit for the client).
    fn check(&self) -> Result<(), String>;
}

impl Check for SendMessage {
    fn check(&self) -> Result<(), String> {
        validate::client_msg_id(&self.client_msg_id)?;
        validate::body(&self.body)
    }
}

impl Check for MarkMessageRead {
    fn check(&self) -> Result<(), String> {
        if self.seq < 0 {
            return Err("seq must be 0 or more".into());
        }
        Ok(())
    }
}

/// Payload of `presenceChanged`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceChanged {
    /// The realtime node.
    pub node: String,
    /// First socket connected (`true`) or last one gone (`false`).
    pub online: bool,
    /// The node's clock, Unix ms.
    pub at: i64,
}

/// Payload of `nodeHeartbeat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHeartbeat {
    /// The realtime node.
    pub node: String,
    /// The node's clock, Unix ms.
    pub at: i64,
}

fn node_name(node: &str) -> Result<(), String> {
    if node.is_empty() || node.len() > MAX_NODE_BYTES {
        return Err(format!("node must be 1 to {MAX_NODE_BYTES} bytes"));
    }
    Ok(())
}

impl Check for PresenceChanged {
    fn check(&self) -> Result<(), String> {
        node_name(&self.node)
    }
}

impl Check for NodeHeartbeat {
    fn check(&self) -> Result<(), String> {
        node_name(&self.node)
    }
}

/// A `chat.in` command, decoded and checked. The user is the envelope's
/// `userId`, set by the realtime tier from the verified socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatIn {
    /// `sendMessage`: post a message.
    SendMessage {
        /// The sender.
        user: UserId,
        /// What to post.
        cmd: SendMessage,
    },
    /// `markMessageRead`: move the user's read marker.
    MarkMessageRead {
        /// The reader.
        user: UserId,
        /// Where to.
        cmd: MarkMessageRead,
    },
    /// `presenceChanged`: the user's first socket on a node came or its last went.
    PresenceChanged {
        /// The user.
        user: UserId,
        /// Which node, which way, when.
        cmd: PresenceChanged,
    },
    /// `nodeHeartbeat`: a realtime node is alive.
    NodeHeartbeat(NodeHeartbeat),
}

/// A newer contract version is a [`Skip`].
pub(crate) fn version(env: &Envelope) -> Result<(), Skip> {
    if env.v > ENVELOPE_VERSION {
        return Err(Skip::NewerVersion(env.v));
    }
    Ok(())
}

/// The payload, decoded and checked.
fn payload<T: Check + serde::de::DeserializeOwned>(env: &Envelope) -> Result<T, Skip> {
    let p: T = parse(env)?;
    p.check().map_err(|why| Skip::malformed(env, why))?;
    Ok(p)
}

/// The envelope's `userId`; none is [`Skip::Malformed`].
pub(crate) fn user(env: &Envelope) -> Result<UserId, Skip> {
    env.user_id
        .ok_or_else(|| Skip::malformed(env, "no userId in the envelope"))
}

impl ChatIn {
    /// Decode a `chat.in` envelope.
    pub fn decode(env: &Envelope) -> Result<Self, Skip> {
        version(env)?;
        Ok(match &env.kind {
            Kind::SendMessage => Self::SendMessage {
                user: user(env)?,
                cmd: payload(env)?,
            },
            Kind::MarkMessageRead => Self::MarkMessageRead {
                user: user(env)?,
                cmd: payload(env)?,
            },
            Kind::PresenceChanged => Self::PresenceChanged {
                user: user(env)?,
                cmd: payload(env)?,
            },
            Kind::NodeHeartbeat => Self::NodeHeartbeat(payload(env)?),
            other => return Err(Skip::UnknownKind(other.to_string())),
        })
    }

    /// Its envelope (the user as `userId`), the payload encoded here, once.
    pub fn envelope(&self) -> Envelope {
        let (kind, user, payload) = match self {
            Self::SendMessage { user, cmd } => (Kind::SendMessage, Some(*user), raw(cmd)),
            Self::MarkMessageRead { user, cmd } => (Kind::MarkMessageRead, Some(*user), raw(cmd)),
            Self::PresenceChanged { user, cmd } => (Kind::PresenceChanged, Some(*user), raw(cmd)),
            Self::NodeHeartbeat(cmd) => (Kind::NodeHeartbeat, None, raw(cmd)),
        };
        Envelope::new(kind, None, user, payload)
    }
}

/// Logs each kind of [`Skip`] once per process (per topic), so a flood of
/// envelopes from a newer node costs one log line, not one per envelope.
#[derive(Debug, Default)]
pub struct SkipLog {
    seen: Mutex<HashSet<String>>,
}

impl SkipLog {
    /// Record `skip` of `env` on `topic`; `true` the first time its kind
    /// (type and version) is seen, when it is also logged.
    pub fn skipped(&self, topic: &str, env: &Envelope, skip: &Skip) -> bool {
        let key = format!("{}/{}", env.kind, env.v);
        let first = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        if first {
            tracing::warn!(topic, id = %env.id, kind = %env.kind, v = env.v, reason = %skip,
                "envelope skipped and acked (logged once per kind)");
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RoomId;
    use serde_json::json;

    fn command(kind: Kind, payload: serde_json::Value) -> Envelope {
        Envelope::to_user(kind, UserId::new(), payload)
    }

    #[test]
    fn commands_decode_with_their_checks() {
        let room = RoomId::new();
        let send = command(
            Kind::SendMessage,
            json!({"roomId": room, "clientMsgId": "c1", "body": "hi"}),
        );
        assert!(matches!(
            ChatIn::decode(&send),
            Ok(ChatIn::SendMessage { cmd, .. }) if cmd.room_id == room && cmd.body == "hi"
        ));
        let empty = command(
            Kind::SendMessage,
            json!({"roomId": room, "clientMsgId": "c1", "body": "  "}),
        );
        assert!(matches!(
            ChatIn::decode(&empty),
            Err(Skip::Malformed { .. })
        ));
        let back = command(Kind::MarkMessageRead, json!({"roomId": room, "seq": -1}));
        assert!(matches!(ChatIn::decode(&back), Err(Skip::Malformed { .. })));
        let beat = Envelope::to_room(Kind::NodeHeartbeat, room, json!({"node": "", "at": 1}));
        assert!(matches!(ChatIn::decode(&beat), Err(Skip::Malformed { .. })));
        let mut anonymous = send.clone();
        anonymous.user_id = None;
        assert!(matches!(
            ChatIn::decode(&anonymous),
            Err(Skip::Malformed { .. })
        ));
    }

    #[test]
    fn commands_round_trip_through_their_envelopes() {
        let user = UserId::new();
        let cmds = [
            ChatIn::SendMessage {
                user,
                cmd: SendMessage {
                    room_id: RoomId::new(),
                    client_msg_id: "c1".into(),
                    body: "hi".into(),
                    reply_to: None,
                },
            },
            ChatIn::MarkMessageRead {
                user,
                cmd: MarkMessageRead {
                    room_id: RoomId::new(),
                    seq: 4,
                },
            },
            ChatIn::PresenceChanged {
                user,
                cmd: PresenceChanged {
                    node: "n1".into(),
                    online: true,
                    at: 9,
                },
            },
            ChatIn::NodeHeartbeat(NodeHeartbeat {
                node: "n1".into(),
                at: 9,
            }),
        ];
        for cmd in cmds {
            let env = Envelope::from_bytes(&cmd.envelope().encode().bytes).unwrap();
            assert_eq!(ChatIn::decode(&env), Ok(cmd));
        }
    }

    #[test]
    fn unknown_kinds_and_newer_versions_are_skipped() {
        let env = command(Kind::parse("teleport"), json!({}));
        assert_eq!(
            ChatIn::decode(&env),
            Err(Skip::UnknownKind("teleport".into()))
        );
        let mut newer = command(Kind::SendMessage, json!({}));
        newer.v = ENVELOPE_VERSION + 1;
        assert_eq!(
            ChatIn::decode(&newer),
            Err(Skip::NewerVersion(ENVELOPE_VERSION + 1))
        );
        let log = SkipLog::default();
        let skip = Skip::UnknownKind("teleport".into());
        assert!(
            log.skipped("chat.out", &env, &skip),
            "logged the first time"
        );
        assert!(!log.skipped("chat.out", &env, &skip), "not again");
        assert!(log.skipped("chat.out", &newer, &Skip::NewerVersion(2)));
    }
}
