-- roomcast schema, SQLite flavour. Ids are UUIDv7 text; times are Unix milliseconds.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE rooms (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    created_by       TEXT NOT NULL REFERENCES users(id),
    -- Sequence number of the latest message; the next message gets last_seq + 1.
    last_seq         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL
);

CREATE TABLE room_members (
    room_id   TEXT NOT NULL REFERENCES rooms(id),
    user_id   TEXT NOT NULL REFERENCES users(id),
    -- Joining order within the room.
    position  INTEGER NOT NULL,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_by_user ON room_members (user_id);

CREATE TABLE messages (
    id            TEXT PRIMARY KEY,
    room_id       TEXT NOT NULL REFERENCES rooms(id),
    seq           INTEGER NOT NULL,
    sender_id     TEXT NOT NULL REFERENCES users(id),
    body          TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (room_id, seq),
    UNIQUE (room_id, sender_id, client_msg_id)
);

-- Transactional outbox: written in the same transaction as the change it
-- announces, published to the bus by the relay, deleted once published.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    topic      TEXT NOT NULL,
    envelope   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
