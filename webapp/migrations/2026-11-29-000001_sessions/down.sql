DROP TABLE seen_logout_tokens;
DROP TABLE sessions;
