DROP TABLE audit_events;
ALTER TABLE clients DROP COLUMN requires_mfa;
DROP TABLE passkeys;
DROP TABLE recovery_codes;
DROP TABLE totp_credentials;
