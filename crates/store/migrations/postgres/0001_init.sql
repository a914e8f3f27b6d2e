-- roomcast schema, PostgreSQL flavour: the same tables as migrations/sqlite.
-- Ids are UUIDv7 text (byte-ordered: COLLATE "C"); times are Unix milliseconds.

CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
-- Usernames are unique regardless of case; lookups use lower(username) too.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

CREATE TABLE rooms (
    id               TEXT COLLATE "C" PRIMARY KEY,
    name             TEXT NOT NULL,
    created_by       TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    -- Sequence number of the latest message; the next message gets last_seq + 1.
    -- Posting updates this row first, so its row lock serialises the posts to
    -- one room across every process sharing the database.
    last_seq         BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    last_activity_at BIGINT NOT NULL
);

CREATE TABLE room_members (
    room_id   TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    user_id   TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    -- Joining order within the room.
    position  BIGINT NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_by_user ON room_members (user_id);

CREATE TABLE messages (
    id            TEXT COLLATE "C" PRIMARY KEY,
    room_id       TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    seq           BIGINT NOT NULL,
    sender_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    body          TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT messages_room_seq UNIQUE (room_id, seq),
    CONSTRAINT messages_client_msg_id UNIQUE (room_id, sender_id, client_msg_id)
);

-- Transactional outbox: written in the same transaction as the change it
-- announces, published to the bus by the relay, deleted once published.
CREATE TABLE outbox (
    id         BIGSERIAL PRIMARY KEY,
    topic      TEXT NOT NULL,
    envelope   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
