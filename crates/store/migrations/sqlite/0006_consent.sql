-- Consent to be added to rooms (issue #16).
--
-- `users.add_policy`: who may add the user to a room without asking,
-- 'anyone' or 'invite'; NULL while the user has not chosen, and then the
-- server's `rooms.default_add_policy` applies.
ALTER TABLE users ADD COLUMN add_policy TEXT
    CHECK (add_policy IN ('anyone', 'invite'));

-- A pending invitation: one per room and invitee, deleted when accepted or
-- declined. The invitee is not a member until they accept.
CREATE TABLE invitations (
    room_id    TEXT NOT NULL REFERENCES rooms(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    inviter_id TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
-- A user's invitations, newest first.
CREATE INDEX invitations_by_user ON invitations (user_id, created_at);
