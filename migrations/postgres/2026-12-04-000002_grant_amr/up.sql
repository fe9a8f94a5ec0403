-- PostgreSQL twin of ../sqlite/2026-12-04-000002_grant_amr/up.sql.
-- How the user signed in for a grant (`amr`, space separated RFC 8176 values, and the `acr`
-- reached), copied from the session into the grant and its code, so ID tokens from the code
-- and from every refresh say the same. Grants from before count as password sign-ins.
ALTER TABLE grants ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE grants ADD COLUMN acr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE authorization_codes ADD COLUMN acr TEXT NOT NULL DEFAULT 'pwd';
