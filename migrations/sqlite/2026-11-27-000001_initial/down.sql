DROP TABLE consents;
DROP TABLE refresh_tokens;
DROP TABLE access_tokens;
DROP TABLE authorization_codes;
DROP TABLE grants;
DROP TABLE signing_keys;
DROP TABLE clients;
DROP TABLE users;
