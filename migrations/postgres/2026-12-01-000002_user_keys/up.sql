-- PostgreSQL twin of ../sqlite/2026-12-01-000002_user_keys/up.sql: the same schema step by step, so both
-- backends carry the same migration names and the provider completes them with the same code.
-- Usernames and e-mail addresses are unique whatever their case or Unicode form: each gets a
-- comparison key (NFKC, then lower case; computed by the provider), unique, while the value as
-- typed stays for display. An empty e-mail address has no key (NULL), so any number may be empty.
--
-- Usernames were always ASCII, so lower() gives their key exactly; e-mail addresses beyond
-- ASCII are re-keyed by the provider right after this migration, in the same transaction. The
-- provider checks existing rows for collisions before applying it and refuses to start, naming
-- them, so the unique indexes below never fail on an upgrade.
ALTER TABLE users ADD COLUMN username_key TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email_key TEXT;
UPDATE users SET username_key = lower(username), email_key = NULLIF(lower(trim(email)), '');
-- Named apart from SQLite's: PostgreSQL already calls the UNIQUE constraint of the username
-- column users_username_key. The provider tells the two apart by "email_key" in the name.
CREATE UNIQUE INDEX users_username_key_unique ON users (username_key);
CREATE UNIQUE INDEX users_email_key_unique ON users (email_key);
