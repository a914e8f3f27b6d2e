//! The room event log as clients and the realtime tier read it back: a page
//! of logged events after a position, and whether that page continues the
//! reader's stream without a gap (issue #7).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::kind::Kind;

/// One logged room event, exactly as it was emitted live.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomEvent {
    /// Its position in the room's log.
    pub event_seq: i64,
    /// The Socket.IO event (`receiveMessage`, `messageUpdated`, …).
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The event's argument (its `eventSeq` included), as the JSON text the
    /// store encoded: emitted as it is.
    pub payload: Box<RawValue>,
}

impl RoomEvent {
    /// The payload parsed (for inspection; replay emits the text).
    pub fn payload_value(&self) -> Value {
        serde_json::from_str(self.payload.get()).unwrap_or(Value::Null)
    }
}

impl PartialEq for RoomEvent {
    fn eq(&self, other: &Self) -> bool {
        self.event_seq == other.event_seq
            && self.kind == other.kind
            && self.payload.get() == other.payload.get()
    }
}

/// The events of a room after a position (`GET /v1/rooms/{id}/events`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomEvents {
    /// Oldest first, consecutive positions.
    pub events: Vec<RoomEvent>,
    /// The room's latest position when read.
    pub last_event_seq: i64,
    /// Whether `events` starts right after the position asked for, so the
    /// reader misses nothing. `false` when retention has pruned part of the
    /// gap, or when the position asked for is ahead of the room's log (a
    /// store that was reset): the reader must then reload through REST.
    pub recovered: bool,
    /// Whether more events follow the last one returned (ask again from it).
    pub more: bool,
}

impl RoomEvents {
    /// The page for a reader at `after`, given the room's `last` position,
    /// the rows found after `after` (at most `limit`), oldest first.
    pub fn new(after: i64, last: i64, events: Vec<RoomEvent>, limit: i64) -> Self {
        let recovered = match events.first() {
            _ if after > last => false,
            Some(first) => first.event_seq == after + 1,
            None => after == last,
        };
        let more = recovered
            && events.len() as i64 >= limit
            && events.last().is_some_and(|e| e.event_seq < last);
        Self {
            events: if recovered { events } else { Vec::new() },
            last_event_seq: last,
            recovered,
            more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64) -> RoomEvent {
        RoomEvent {
            event_seq: seq,
            kind: Kind::ReceiveMessage,
            payload: serde_json::value::to_raw_value(&serde_json::json!({ "eventSeq": seq }))
                .unwrap(),
        }
    }

    #[test]
    fn a_page_recovers_only_without_a_gap() {
        let full = RoomEvents::new(3, 5, vec![ev(4), ev(5)], 10);
        assert!(full.recovered && !full.more);
        assert_eq!(full.events.len(), 2);
        let up_to_date = RoomEvents::new(5, 5, vec![], 10);
        assert!(up_to_date.recovered && up_to_date.events.is_empty());
        let pruned = RoomEvents::new(1, 5, vec![ev(4), ev(5)], 10);
        assert!(!pruned.recovered && pruned.events.is_empty());
        let all_pruned = RoomEvents::new(1, 5, vec![], 10);
        assert!(!all_pruned.recovered);
        let ahead = RoomEvents::new(9, 5, vec![], 10);
        assert!(!ahead.recovered);
        let paged = RoomEvents::new(0, 5, vec![ev(1), ev(2)], 2);
        assert!(paged.recovered && paged.more);
    }

    #[test]
    fn wire_shape() {
        let v = serde_json::to_value(RoomEvents::new(0, 1, vec![ev(1)], 10)).unwrap();
        assert_eq!(v["events"][0]["type"], "receiveMessage");
        assert_eq!(v["events"][0]["eventSeq"], 1);
        assert_eq!(v["lastEventSeq"], 1);
        assert_eq!(v["recovered"], true);
        assert_eq!(v["more"], false);
    }
}
