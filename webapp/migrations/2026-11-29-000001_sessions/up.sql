-- The web app's sessions: the cookie carries a random id, only its SHA-256 is stored here.
CREATE TABLE sessions (
    id_hash TEXT NOT NULL PRIMARY KEY,
    sub TEXT NOT NULL,
    sid TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX sessions_by_sub ON sessions (sub);
CREATE INDEX sessions_by_sid ON sessions (sid);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- The jti of every accepted logout token, kept until the token would be refused anyway.
CREATE TABLE seen_logout_tokens (
    jti TEXT NOT NULL PRIMARY KEY,
    keep_until BIGINT NOT NULL
);
CREATE INDEX seen_logout_tokens_by_expiry ON seen_logout_tokens (keep_until);
