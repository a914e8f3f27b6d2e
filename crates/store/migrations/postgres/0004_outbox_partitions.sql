-- Outbox partitions (issue #15). Each row carries the ordering hash of its
-- envelope (FNV-1a of its room id, else its user id, 31 bits): partition p
-- of n holds the rows with okey % n = p, so a room's rows stay in one
-- partition, in id order. Rows queued before this migration get -1 and are
-- given their hash when the store opens (and, during a rolling upgrade from
-- such a version, at every relay renewal: the partial index keeps that look
-- cheap however long the backlog).
ALTER TABLE outbox ADD COLUMN okey BIGINT NOT NULL DEFAULT -1;
CREATE INDEX outbox_unhashed ON outbox (id) WHERE okey < 0;

-- Settings fixed per database: `outbox_partitions` is written by the first
-- process that opens the database, so all processes partition alike.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
