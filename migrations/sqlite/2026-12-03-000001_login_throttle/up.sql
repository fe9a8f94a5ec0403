-- Login throttle counters, shared by every provider process on the database: one row per
-- account key and per client address key, with the attempts counted in its current window and
-- the end of that window. Rows past their end are ignored and swept, so the table holds at most
-- the keys that tried to sign in within one window.
CREATE TABLE login_throttle (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX login_throttle_expires_at ON login_throttle (expires_at);
