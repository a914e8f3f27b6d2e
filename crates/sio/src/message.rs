//! Socket.IO packets encoded once into queueable [`Frame`]s.
//!
//! A [`Message`] is the Engine.IO text packet (`4` + the Socket.IO packet)
//! followed by its binary attachments, each a [`bytes::Bytes`]. Cloning a
//! message or queueing it to many connections copies no payload bytes: a
//! room broadcast serialises its JSON once whatever the room's size.

use serde_json::Value;

use crate::codec::socket::{PacketType, encode_into};
use crate::engine::outbox::Frame;
use crate::handler::Payload;

/// An encoded Socket.IO packet and its attachments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    frames: Vec<Frame>,
}

impl Message {
    /// An EVENT (BINARY_EVENT with attachments) `[event, ...args]`, asking
    /// for ack `ack_id` if given.
    pub fn event(nsp: &str, event: &str, payload: &Payload, ack_id: Option<u64>) -> Self {
        let mut json = String::with_capacity(64);
        json.push('[');
        json.push_str(&Value::String(event.to_owned()).to_string());
        for arg in &payload.args {
            json.push(',');
            json.push_str(&arg.to_string());
        }
        json.push(']');
        let kind = if payload.attachments.is_empty() {
            PacketType::Event
        } else {
            PacketType::BinaryEvent
        };
        Self::build(kind, nsp, ack_id, payload, &json)
    }

    /// An EVENT `[event, arg]` whose one argument is already JSON text
    /// (`arg` is written as it is: it must be valid JSON, which the caller
    /// holds as a [`serde_json::value::RawValue`], say). A payload passed
    /// through from elsewhere is then never parsed or encoded again.
    pub fn event_raw(nsp: &str, event: &str, arg: &str) -> Self {
        let name = Value::String(event.to_owned()).to_string();
        let mut json = String::with_capacity(name.len() + arg.len() + 3);
        json.push('[');
        json.push_str(&name);
        json.push(',');
        json.push_str(arg);
        json.push(']');
        Self::build(PacketType::Event, nsp, None, &Payload::empty(), &json)
    }

    /// An ACK (BINARY_ACK with attachments) answering `id` with `[...args]`.
    pub fn ack(nsp: &str, id: u64, payload: &Payload) -> Self {
        let json = Value::Array(payload.args.clone()).to_string();
        let kind = if payload.attachments.is_empty() {
            PacketType::Ack
        } else {
            PacketType::BinaryAck
        };
        Self::build(kind, nsp, Some(id), payload, &json)
    }

    /// The CONNECT reply `{"sid": sid}`, with `"pid"` when the server
    /// offers connection state recovery.
    pub fn connect(nsp: &str, sid: &str, pid: Option<&str>) -> Self {
        let json = match pid {
            Some(pid) => serde_json::json!({ "sid": sid, "pid": pid }),
            None => serde_json::json!({ "sid": sid }),
        }
        .to_string();
        Self::build(PacketType::Connect, nsp, None, &Payload::empty(), &json)
    }

    /// This EVENT with one more argument last, `arg` (a connection state
    /// recovery offset, which the client reads from the last argument):
    /// the text frame is copied once, attachments are shared. `None` if the
    /// packet has no argument list (a CONNECT, a DISCONNECT).
    pub fn with_last_arg(&self, arg: &str) -> Option<Self> {
        let (first, rest) = self.frames.split_first()?;
        let text = first.data.strip_suffix(b"]")?;
        let plain = arg
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        let arg = if plain {
            format!("\"{arg}\"")
        } else {
            Value::String(arg.to_owned()).to_string()
        };
        let mut out = Vec::with_capacity(text.len() + arg.len() + 2);
        out.extend_from_slice(text);
        // `[` then nothing: the event had no arguments (not even a name).
        if !text.ends_with(b"[") {
            out.push(b',');
        }
        out.extend_from_slice(arg.as_bytes());
        out.push(b']');
        let mut frames = Vec::with_capacity(self.frames.len());
        frames.push(Frame::text(out));
        frames.extend(rest.iter().cloned());
        Some(Self { frames })
    }

    /// A CONNECT_ERROR `{"message": message}`.
    pub fn connect_error(nsp: &str, message: &str) -> Self {
        Self::connect_error_data(nsp, message, None)
    }

    /// A CONNECT_ERROR `{"message": message, "data": data}` (`data` left
    /// out when `None`).
    pub fn connect_error_data(nsp: &str, message: &str, data: Option<&Value>) -> Self {
        let json = match data {
            Some(data) => serde_json::json!({ "message": message, "data": data }),
            None => serde_json::json!({ "message": message }),
        }
        .to_string();
        Self::build(
            PacketType::ConnectError,
            nsp,
            None,
            &Payload::empty(),
            &json,
        )
    }

    /// A DISCONNECT from the server.
    pub fn disconnect(nsp: &str) -> Self {
        let mut text = String::from("4");
        encode_into(&mut text, PacketType::Disconnect, nsp, None, 0, None);
        Self {
            frames: vec![Frame::text(text)],
        }
    }

    fn build(kind: PacketType, nsp: &str, id: Option<u64>, payload: &Payload, json: &str) -> Self {
        let mut text = String::with_capacity(json.len() + nsp.len() + 8);
        text.push('4');
        encode_into(
            &mut text,
            kind,
            nsp,
            id,
            payload.attachments.len(),
            Some(json),
        );
        let mut frames = Vec::with_capacity(1 + payload.attachments.len());
        frames.push(Frame::text(text));
        frames.extend(payload.attachments.iter().cloned().map(Frame::binary));
        Self { frames }
    }

    /// The frames to queue, text first.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    fn texts(m: &Message) -> Vec<&[u8]> {
        m.frames().iter().map(|f| &f.data[..]).collect()
    }

    #[test]
    fn a_raw_argument_is_written_as_it_is() {
        let raw = Message::event_raw("/", "hi", r#"{ "a":1 }"#);
        assert_eq!(texts(&raw), [&br#"42["hi",{ "a":1 }]"#[..]]);
        let same = Message::event("/", "hi", &Payload::json(json!({"a": 1})), None);
        let raw = Message::event_raw("/", "hi", r#"{"a":1}"#);
        assert_eq!(raw, same);
        let ns = Message::event_raw("/admin", "x", "2");
        assert_eq!(texts(&ns), [&br#"42/admin,["x",2]"#[..]]);
    }

    #[test]
    fn events_and_acks() {
        let p = Payload::json(json!({"a": 1}));
        assert_eq!(
            texts(&Message::event("/", "hi", &p, None)),
            [&br#"42["hi",{"a":1}]"#[..]]
        );
        assert_eq!(
            texts(&Message::event("/custom", "hi", &p, Some(7))),
            [&br#"42/custom,7["hi",{"a":1}]"#[..]]
        );
        assert_eq!(texts(&Message::ack("/", 3, &p)), [&br#"433[{"a":1}]"#[..]]);
        assert_eq!(
            texts(&Message::event("/", "e", &Payload::empty(), None)),
            [&br#"42["e"]"#[..]]
        );
    }

    #[test]
    fn an_offset_is_appended_as_the_last_argument() {
        let p = Payload::json(json!({"a": 1}));
        let m = Message::event("/", "hi", &p, None);
        let tailed = m.with_last_arg("r:1").unwrap();
        assert_eq!(texts(&tailed), [&br#"42["hi",{"a":1},"r:1"]"#[..]]);
        let bin = Message::event(
            "/",
            "up",
            &Payload::empty().with_binary(Bytes::from_static(&[7])),
            None,
        );
        let tailed = bin.with_last_arg("o\"q").unwrap();
        assert_eq!(
            texts(&tailed),
            [
                &br#"451-["up",{"_placeholder":true,"num":0},"o\"q"]"#[..],
                &[7][..]
            ]
        );
        assert_eq!(Message::connect("/", "s", None).with_last_arg("x"), None);
    }

    #[test]
    fn binary_events_carry_attachments() {
        let p = Payload::empty().with_binary(Bytes::from_static(&[1, 2]));
        let m = Message::event("/", "up", &p, None);
        assert_eq!(
            texts(&m),
            [
                &br#"451-["up",{"_placeholder":true,"num":0}]"#[..],
                &[1, 2][..]
            ]
        );
        assert!(m.frames()[1].binary);
        let a = Message::ack("/x", 2, &p);
        assert_eq!(texts(&a)[0], br#"461-/x,2[{"_placeholder":true,"num":0}]"#);
    }

    #[test]
    fn connect_packets() {
        assert_eq!(
            texts(&Message::connect("/", "abc", None)),
            [&br#"40{"sid":"abc"}"#[..]]
        );
        assert_eq!(
            texts(&Message::connect("/", "abc", Some("p"))),
            [&br#"40{"pid":"p","sid":"abc"}"#[..]]
        );
        assert_eq!(
            texts(&Message::connect_error("/custom", "Invalid namespace")),
            [&br#"44/custom,{"message":"Invalid namespace"}"#[..]]
        );
        assert_eq!(texts(&Message::disconnect("/custom")), [&b"41/custom,"[..]]);
        assert_eq!(texts(&Message::disconnect("/")), [&b"41"[..]]);
    }
}
