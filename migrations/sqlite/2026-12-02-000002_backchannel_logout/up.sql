-- OpenID Connect Back-Channel Logout 1.0: where an application is told that a session ended.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;

-- Logout tokens waiting to be posted (status 'pending') or given up on ('failed'). Written in
-- the transaction that ends the session; a background worker sends them off the request path
-- and deletes each once delivered. The token is signed by the worker when it sends (kept in
-- `token` for the last attempt): a retry after a backoff must not post a token past its `exp`,
-- and the command line, which holds no signing keys, ends sessions too.
CREATE TABLE logout_deliveries (
    id TEXT NOT NULL PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    uri TEXT NOT NULL,
    subject TEXT NOT NULL,
    sid TEXT,
    token TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX logout_deliveries_due ON logout_deliveries (status, next_attempt_at);
CREATE INDEX logout_deliveries_client ON logout_deliveries (client_id);
