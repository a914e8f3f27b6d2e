-- Tables written at every post stay small (issue #15).
--
-- `rooms`: a post moves its room's `last_seq`, `last_activity_at` and
-- `last_event_seq`. With `last_activity_at` indexed, no such update could be
-- a heap-only (HOT) update: every post left a dead row version and an index
-- entry behind, and every later look-up of the room by id walked them
-- (until a VACUUM, which this server may not run often, or at all). The room
-- list reads a user's rooms through `room_members_by_user` and sorts those,
-- so the index is not needed; without it, and with room on each page for
-- new versions, updates are HOT and pages prune themselves on access.
DROP INDEX rooms_by_activity;
ALTER TABLE rooms SET (fillfactor = 50);

-- `outbox`: a queue, every row inserted once and deleted once. The store
-- vacuums it itself after every few thousand deletions (see
-- `SqlStore::outbox_done`); where autovacuum runs, it may also come early.
ALTER TABLE outbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0
);
