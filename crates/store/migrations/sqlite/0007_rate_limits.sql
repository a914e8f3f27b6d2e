-- Rate limits kept in the database (issue #16): one row per key with its
-- GCRA "theoretical arrival time" (Unix ms); a row whose `tat` has passed
-- is the same as no row, and is pruned. (`roomcast serve` is one process
-- and keeps its buckets in memory; the table exists in both schemas so
-- both stores keep one set of rules.)
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat INTEGER NOT NULL
);
