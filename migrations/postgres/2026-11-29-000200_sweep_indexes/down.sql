DROP INDEX refresh_tokens_expires_at;
DROP INDEX access_tokens_expires_at;
DROP INDEX authorization_codes_expires_at;
