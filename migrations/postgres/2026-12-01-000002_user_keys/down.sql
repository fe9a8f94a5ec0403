DROP INDEX users_email_key_unique;
DROP INDEX users_username_key_unique;
ALTER TABLE users DROP COLUMN email_key;
ALTER TABLE users DROP COLUMN username_key;
