-- The chat domain (issue #5), PostgreSQL flavour of migrations/sqlite/0002:
-- roles, read markers, DMs, replies, edits, deletes, reactions and presence.
-- Existing rooms become group rooms whose creator is the owner; everyone
-- else is a member.

-- When the user's last socket disconnected (NULL: never).
ALTER TABLE users ADD COLUMN last_seen_at BIGINT;

ALTER TABLE rooms ADD COLUMN kind TEXT NOT NULL DEFAULT 'group'
    CONSTRAINT rooms_kind CHECK (kind IN ('group', 'dm'));
-- A DM's two member ids, sorted and joined with ':' (NULL for a group room):
-- unique, so a pair has one DM however many calls race to open it (the
-- loser's INSERT … ON CONFLICT (dm_key) DO NOTHING waits, then inserts nothing).
ALTER TABLE rooms ADD COLUMN dm_key TEXT COLLATE "C";
CREATE UNIQUE INDEX rooms_dm_key ON rooms (dm_key);
-- The room list: a user's rooms, latest activity first.
CREATE INDEX rooms_by_activity ON rooms (last_activity_at DESC, id DESC);

ALTER TABLE room_members ADD COLUMN role TEXT NOT NULL DEFAULT 'member'
    CONSTRAINT room_members_role CHECK (role IN ('owner', 'admin', 'member'));
-- The highest seq this member has read; only ever moves forward.
ALTER TABLE room_members ADD COLUMN read_seq BIGINT NOT NULL DEFAULT 0;
UPDATE room_members m SET role = 'owner'
    FROM rooms r WHERE r.id = m.room_id AND r.created_by = m.user_id;
-- Posting moves the sender's marker to their message: start from there.
UPDATE room_members m SET read_seq = s.seq
    FROM (SELECT room_id, sender_id, max(seq) AS seq FROM messages GROUP BY room_id, sender_id) s
    WHERE s.room_id = m.room_id AND s.sender_id = m.user_id;
DROP INDEX room_members_by_user;
CREATE INDEX room_members_by_user ON room_members (user_id, room_id);

ALTER TABLE messages ADD COLUMN reply_to TEXT COLLATE "C" REFERENCES messages(id);
ALTER TABLE messages ADD COLUMN edited_at BIGINT;
-- Set once deleted; the body is then '' and the seq stays.
ALTER TABLE messages ADD COLUMN deleted_at BIGINT;

-- One row per user and emoji on a message. Emoji groups are shown in the
-- order of their first reaction (min(created_at)).
CREATE TABLE reactions (
    message_id TEXT COLLATE "C" NOT NULL REFERENCES messages(id),
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    emoji      TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

-- Whether the user's sockets on a realtime node are online, as of the
-- node's clock; a change not newer than changed_at is ignored.
CREATE TABLE presence (
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    node_id    TEXT COLLATE "C" NOT NULL,
    online     BOOLEAN NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, node_id)
);
CREATE INDEX presence_online_by_node ON presence (node_id) WHERE online;

-- Each realtime node's latest sign of life; silent ones are swept.
CREATE TABLE nodes (
    node_id TEXT COLLATE "C" PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
CREATE INDEX nodes_by_seen ON nodes (seen_at);
