-- Tables written at every post stay small (issue #15). A post moves its
-- room's `last_activity_at`; with that column indexed, every post also
-- deleted and inserted an index entry. The room list reads a user's rooms
-- through `room_members_by_user` and sorts those, so the index is not
-- needed.
DROP INDEX rooms_by_activity;
