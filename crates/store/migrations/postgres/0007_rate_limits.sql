-- Rate limits shared by every API node (issue #16): the login limits, so an
-- attacker gains nothing by spreading guesses over nodes. One row per key
-- with its GCRA "theoretical arrival time" (Unix ms); a row whose `tat` has
-- passed is the same as no row, and is pruned. UNLOGGED: the state is
-- worth nothing after a crash (the buckets start full again).
CREATE UNLOGGED TABLE rate_limits (
    key TEXT COLLATE "C" PRIMARY KEY,
    tat BIGINT NOT NULL
);
