DROP INDEX grants_session;
ALTER TABLE grants DROP COLUMN session_id;
DROP TABLE sessions;
