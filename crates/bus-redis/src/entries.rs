//! Decoding stream replies (`XREAD`, `XREADGROUP`, `XAUTOCLAIM`, `XREVRANGE`)
//! into `Entry` values, tolerating anything a foreign writer may have put in
//! a stream.
//!
//! The replies are walked by hand rather than through the client's typed
//! replies, because a typed reply fails as a whole when one entry is odd (a
//! binary field name, a deleted entry's nil body): one bad entry would then
//! stall a reader forever. Here an odd entry becomes an `Entry` whose
//! envelope is an error naming what is wrong; the reader logs it and skips it
//! (acking it in a queue group), so it is never delivered and never loops.

use redis::Value;
use roomcast_core::Envelope;

/// The one field of an entry: the envelope's JSON
/// (`XADD key MAXLEN ~ n * envelope <json>`).
pub const FIELD: &str = "envelope";

/// One stream entry: its id, and its envelope or why it has none.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Stream id (`<ms>-<seq>`), used to resume reading and to ack.
    pub id: String,
    /// The decoded envelope, or a description of what is wrong with the entry.
    pub envelope: Result<Envelope, String>,
}

/// Entries of an `XREAD`/`XREADGROUP` reply for a single stream (`Nil`, the
/// reply of a block that timed out, is no entries). RESP2 replies are
/// `[[key, entries]]`, RESP3 replies `{key: entries}`.
pub(crate) fn read_reply(reply: Value) -> Vec<Entry> {
    match reply {
        Value::Array(streams) => streams
            .into_iter()
            .flat_map(|s| match s {
                Value::Array(mut pair) if pair.len() == 2 => {
                    entry_list(pair.pop().unwrap_or_default())
                }
                _ => Vec::new(),
            })
            .collect(),
        Value::Map(streams) => streams
            .into_iter()
            .flat_map(|(_, e)| entry_list(e))
            .collect(),
        _ => Vec::new(),
    }
}

/// Entries of an `XAUTOCLAIM` reply, and the cursor to continue from
/// (`"0-0"` once the whole pending list was scanned).
pub(crate) fn autoclaim_reply(reply: Value) -> (String, Vec<Entry>) {
    let Value::Array(parts) = reply else {
        return ("0-0".into(), Vec::new());
    };
    let mut parts = parts.into_iter();
    let cursor = parts.next().and_then(text).unwrap_or_else(|| "0-0".into());
    let entries = parts.next().map(entry_list).unwrap_or_default();
    (cursor, entries)
}

/// The id of the newest entry in an `XREVRANGE key + - COUNT 1` reply.
pub(crate) fn newest_id(reply: Value) -> Option<String> {
    entry_list(reply).into_iter().next().map(|e| e.id)
}

/// A list of `[id, [field, value, …]]` entries. An entry without a readable
/// id cannot be acked or resumed from and is left out.
fn entry_list(list: Value) -> Vec<Entry> {
    let Value::Array(items) = list else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else {
                return None;
            };
            let mut pair = pair.into_iter();
            let id = pair.next().and_then(text)?;
            let envelope = decode(pair.next().unwrap_or_default());
            Some(Entry { id, envelope })
        })
        .collect()
}

/// The envelope carried by an entry's field list.
fn decode(fields: Value) -> Result<Envelope, String> {
    let pairs: Vec<(Value, Value)> = match fields {
        Value::Array(flat) => {
            let mut it = flat.into_iter();
            std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
        }
        Value::Map(pairs) => pairs,
        Value::Nil => return Err("entry deleted from the stream".into()),
        other => return Err(format!("unexpected entry body {other:?}")),
    };
    let body = pairs
        .into_iter()
        .find(|(k, _)| bytes(k) == Some(FIELD.as_bytes()))
        .map(|(_, v)| v)
        .ok_or_else(|| format!("no `{FIELD}` field"))?;
    let raw = bytes(&body).ok_or_else(|| format!("`{FIELD}` is not a string"))?;
    Envelope::from_bytes(raw).map_err(|e| format!("`{FIELD}` is not an envelope: {e}"))
}

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_core::{Kind, RoomId};

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    fn entry(id: &str, fields: Value) -> Value {
        Value::Array(vec![bulk(id.as_bytes()), fields])
    }

    fn good() -> (Envelope, Value) {
        let env = Envelope::to_room(Kind::parse("t"), RoomId::new(), serde_json::json!({"n": 1}));
        let fields = Value::Array(vec![bulk(FIELD.as_bytes()), bulk(&env.encode().bytes)]);
        (env, fields)
    }

    #[test]
    fn a_resp2_read_reply_yields_its_entries_in_order() {
        let (env, fields) = good();
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"k"),
            Value::Array(vec![entry("1-0", fields.clone()), entry("2-0", fields)]),
        ])]);
        let got = read_reply(reply);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].id, "1-0");
        assert_eq!(got[1].id, "2-0");
        assert_eq!(got[1].envelope.as_ref().unwrap(), &env);
    }

    #[test]
    fn a_resp3_read_reply_and_a_timed_out_block_are_understood() {
        let (_, fields) = good();
        let reply = Value::Map(vec![(bulk(b"k"), Value::Array(vec![entry("3-1", fields)]))]);
        assert_eq!(read_reply(reply)[0].id, "3-1");
        assert!(read_reply(Value::Nil).is_empty());
    }

    #[test]
    fn odd_entries_become_errors_not_failures_of_the_whole_reply() {
        let (_, fields) = good();
        let list = Value::Array(vec![
            entry("1-0", Value::Array(vec![bulk(b"\xff\xfe"), bulk(b"x")])),
            entry(
                "2-0",
                Value::Array(vec![bulk(FIELD.as_bytes()), bulk(b"{oops")]),
            ),
            entry("3-0", Value::Nil),
            entry(
                "4-0",
                Value::Array(vec![bulk(FIELD.as_bytes()), Value::Int(3)]),
            ),
            Value::Int(7),
            entry("5-0", fields),
        ]);
        let got = read_reply(Value::Array(vec![Value::Array(vec![bulk(b"k"), list])]));
        let ids: Vec<_> = got.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1-0", "2-0", "3-0", "4-0", "5-0"]);
        assert!(
            got[0]
                .envelope
                .as_ref()
                .unwrap_err()
                .contains("no `envelope`")
        );
        assert!(
            got[1]
                .envelope
                .as_ref()
                .unwrap_err()
                .contains("not an envelope")
        );
        assert!(got[2].envelope.as_ref().unwrap_err().contains("deleted"));
        assert!(
            got[3]
                .envelope
                .as_ref()
                .unwrap_err()
                .contains("not a string")
        );
        assert!(got[4].envelope.is_ok());
    }

    #[test]
    fn autoclaim_replies_give_the_cursor_and_the_claimed_entries() {
        let (_, fields) = good();
        let reply = Value::Array(vec![
            bulk(b"7-0"),
            Value::Array(vec![entry("5-0", fields)]),
            Value::Array(vec![bulk(b"4-0")]),
        ]);
        let (cursor, got) = autoclaim_reply(reply);
        assert_eq!(cursor, "7-0");
        assert_eq!(got.len(), 1);
        assert_eq!(autoclaim_reply(Value::Nil).0, "0-0");
    }

    #[test]
    fn the_newest_id_comes_from_a_revrange_reply() {
        let (_, fields) = good();
        assert_eq!(
            newest_id(Value::Array(vec![entry("9-2", fields)])).as_deref(),
            Some("9-2")
        );
        assert_eq!(newest_id(Value::Array(vec![])), None);
    }
}
