-- The expiry columns the sweeper deletes by: each batch reads the oldest expired rows through
-- these indexes instead of scanning the tables.
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
