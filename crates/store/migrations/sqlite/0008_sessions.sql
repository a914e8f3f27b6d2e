-- Login sessions (issue #16): one row per login, renewed by its refresh
-- token. A refresh token names its session and generation; only the hash
-- of the current generation's secret is stored (`refresh_hash`). Presenting
-- an earlier generation is reuse of a rotated token: the session is
-- revoked. A session is over once `revoked_at` is set or `expires_at` has
-- passed.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id),
    refresh_hash  TEXT NOT NULL,
    generation    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
-- A user's sessions (log out everywhere, a password change).
CREATE INDEX sessions_by_user ON sessions (user_id);
