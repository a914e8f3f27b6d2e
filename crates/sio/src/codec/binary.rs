//! Binary attachments of Socket.IO packets.
//!
//! A `BINARY_EVENT` or `BINARY_ACK` carries its binary arguments out of
//! band: the JSON holds `{"_placeholder":true,"num":n}` where the n-th
//! attachment goes, and the attachments follow as that many binary
//! Engine.IO messages. This crate keeps the placeholders in the JSON and
//! hands the attachments beside it (see [`crate::Payload`]), so an echo
//! re-sends the same JSON and the same attachment bytes untouched.
//!
//! [`Reassembly`] collects the attachments of one packet on one
//! connection, bounded in count and bytes.

use bytes::Bytes;
use serde_json::Value;

use super::DecodeError;
use super::socket::Packet;

/// Most attachments one packet may announce.
pub const MAX_ATTACHMENTS: usize = 1024;

/// The placeholder for attachment `num`.
pub fn placeholder(num: usize) -> Value {
    serde_json::json!({ "_placeholder": true, "num": num })
}

/// The attachment index if `value` is a placeholder.
pub fn placeholder_num(value: &Value) -> Option<u64> {
    let obj = value.as_object()?;
    if obj.get("_placeholder")?.as_bool()? {
        obj.get("num")?.as_u64()
    } else {
        None
    }
}

/// Check that every placeholder in `value` points below `attachments`,
/// iteratively (a deep document cannot overflow the stack).
pub fn check_placeholders(value: &Value, attachments: usize) -> Result<(), DecodeError> {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(o) => {
                if o.contains_key("_placeholder") {
                    match placeholder_num(v) {
                        Some(n) if (n as usize) < attachments && n <= usize::MAX as u64 => {}
                        Some(n) => return Err(DecodeError::Placeholder(n)),
                        None => stack.extend(o.values()),
                    }
                } else {
                    stack.extend(o.values());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A packet with all its attachments.
pub type Complete = (Packet, Vec<Bytes>);

/// The attachments still expected on one connection.
#[derive(Debug, Default)]
pub struct Reassembly {
    pending: Option<Box<(Packet, Vec<Bytes>, usize)>>,
}

impl Reassembly {
    /// Whether a binary packet is waiting for attachments.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Take a decoded text packet: complete at once unless it announces
    /// attachments.
    pub fn on_packet(&mut self, packet: Packet) -> Result<Option<Complete>, DecodeError> {
        if self.pending.is_some() {
            return Err(DecodeError::PendingAttachments);
        }
        if !packet.kind.is_binary() {
            return Ok(Some((packet, Vec::new())));
        }
        if packet.attachments > MAX_ATTACHMENTS {
            return Err(DecodeError::Attachments);
        }
        if let Some(data) = &packet.data {
            check_placeholders(data, packet.attachments)?;
        }
        if packet.attachments == 0 {
            return Ok(Some((packet, Vec::new())));
        }
        let bins = Vec::with_capacity(packet.attachments);
        self.pending = Some(Box::new((packet, bins, 0)));
        Ok(None)
    }

    /// Take a binary message; `max_bytes` bounds the attachments of one packet.
    pub fn on_binary(
        &mut self,
        data: Bytes,
        max_bytes: usize,
    ) -> Result<Option<Complete>, DecodeError> {
        let Some(pending) = self.pending.as_mut() else {
            return Err(DecodeError::UnexpectedBinary);
        };
        let (packet, bins, total) = &mut **pending;
        *total += data.len();
        if *total > max_bytes {
            self.pending = None;
            return Err(DecodeError::TooLarge);
        }
        bins.push(data);
        if bins.len() < packet.attachments {
            return Ok(None);
        }
        Ok(self.pending.take().map(|b| {
            let (packet, bins, _) = *b;
            (packet, bins)
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn placeholders_are_recognised() {
        assert_eq!(placeholder_num(&placeholder(3)), Some(3));
        assert_eq!(
            placeholder_num(&json!({"_placeholder": false, "num": 1})),
            None
        );
        assert_eq!(placeholder_num(&json!({"num": 1})), None);
        assert_eq!(placeholder_num(&json!([1])), None);
    }

    #[test]
    fn out_of_range_placeholders_are_rejected() {
        let v = json!(["a", {"x": [placeholder(0), placeholder(1)]}]);
        assert_eq!(check_placeholders(&v, 2), Ok(()));
        assert_eq!(check_placeholders(&v, 1), Err(DecodeError::Placeholder(1)));
    }

    #[test]
    fn reassembles_the_protocol_example() {
        let mut r = Reassembly::default();
        let packet = Packet::decode(
            r#"52-["hello",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        );
        assert_eq!(r.on_packet(packet.clone().unwrap()), Ok(None));
        assert!(r.is_pending());
        assert!(r.on_packet(Packet::decode(r#"2["x"]"#).unwrap()).is_err());
        assert_eq!(r.on_binary(Bytes::from_static(&[1]), 100), Ok(None));
        let done = r
            .on_binary(Bytes::from_static(&[2, 3]), 100)
            .unwrap()
            .unwrap();
        assert_eq!(done.0, packet.unwrap());
        assert_eq!(
            done.1,
            vec![Bytes::from_static(&[1]), Bytes::from_static(&[2, 3])]
        );
        assert!(!r.is_pending());
    }

    #[test]
    fn bounds_and_stray_binaries() {
        let mut r = Reassembly::default();
        assert_eq!(
            r.on_binary(Bytes::new(), 10),
            Err(DecodeError::UnexpectedBinary)
        );
        r.on_packet(Packet::decode(r#"51-["a",{"_placeholder":true,"num":0}]"#).unwrap())
            .unwrap();
        assert_eq!(
            r.on_binary(Bytes::from(vec![0; 11]), 10),
            Err(DecodeError::TooLarge)
        );
        assert!(!r.is_pending());
        let many = Packet::decode(&format!("5{}-[\"a\"]", MAX_ATTACHMENTS + 1)).unwrap();
        assert_eq!(r.on_packet(many), Err(DecodeError::Attachments));
        let zero = Packet::decode(r#"50-["a"]"#).unwrap();
        assert!(matches!(r.on_packet(zero), Ok(Some(_))));
    }
}
