-- PostgreSQL twin of ../sqlite/2026-12-02-000001_sessions/up.sql: the same schema step by step, so both
-- backends carry the same migration names and the provider completes them with the same code.
-- Browser sessions of the provider, one row each. The cookie holds a random 256-bit secret;
-- only its SHA-256 hash is stored (id_hash), so a copy of this table signs nobody in. public_id
-- is a separate random value: the `sid` claim of ID tokens and the key grants refer to.
CREATE TABLE sessions (
    id_hash TEXT NOT NULL PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time BIGINT NOT NULL,
    -- Space-separated authentication method references (RFC 8176), e.g. "pwd".
    amr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    client_addr TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    -- Absolute end, and the end if the session stays idle (moved on with last_seen_at).
    expires_at BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_idle_expires_at ON sessions (idle_expires_at);

-- The session (its public_id) a grant was issued in; NULL for grants older than sessions. Not a
-- foreign key: the grant outlives the session row, and ending a session finds its grants by it.
ALTER TABLE grants ADD COLUMN session_id TEXT;
CREATE INDEX grants_session ON grants (session_id);
