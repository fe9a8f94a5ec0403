-- PostgreSQL twin of ../sqlite/2026-12-04-000001_second_factor_audit/up.sql: the same schema step by step, so both
-- backends carry the same migration names and the provider completes them with the same code.
-- TOTP (RFC 6238), one per user: the secret is enrolled unconfirmed and becomes a factor once
-- a first code proves the authenticator has it. last_used_step is the highest time step already
-- accepted, so a code is never accepted twice.
CREATE TABLE totp_credentials (
    user_id TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    confirmed_at BIGINT,
    last_used_step BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

-- Recovery codes: shown once, stored as hashes, each usable once.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- WebAuthn credentials (passkeys): id is the credential id (base64url), passkey the stored
-- credential state as JSON (public key, counter).
CREATE TABLE passkeys (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- Applications that accept only sign-ins with a second factor.
ALTER TABLE clients ADD COLUMN requires_mfa BOOLEAN NOT NULL DEFAULT FALSE;

-- Security events. Not foreign keys: an event outlives the user, client or key it names.
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    user_id TEXT,
    username TEXT NOT NULL DEFAULT '',
    client_id TEXT,
    client_addr TEXT NOT NULL DEFAULT '',
    actor TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user_at ON audit_events (user_id, at);
CREATE INDEX audit_events_kind_at ON audit_events (kind, at);
