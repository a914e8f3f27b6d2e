-- The room event log (issue #7): every persisted room-scoped event
-- (receiveMessage, messageUpdated, messageDeleted, reactionAdded,
-- reactionRemoved, messageReadUpdate) gets a per-room, gap-free position
-- `event_seq`, assigned in the transaction that stores it, and is kept here
-- for replay until retention (count and age) prunes it.

-- The position of the room's latest event; the next gets last_event_seq + 1.
ALTER TABLE rooms ADD COLUMN last_event_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE room_events (
    room_id    TEXT NOT NULL REFERENCES rooms(id),
    event_seq  BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    -- The event's payload as emitted (JSON, `eventSeq` included).
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, event_seq)
);
-- Age-based pruning.
CREATE INDEX room_events_by_age ON room_events (created_at);
