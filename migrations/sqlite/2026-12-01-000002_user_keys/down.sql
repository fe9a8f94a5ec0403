DROP INDEX users_email_key;
DROP INDEX users_username_key;
ALTER TABLE users DROP COLUMN email_key;
ALTER TABLE users DROP COLUMN username_key;
