-- PostgreSQL twin of ../sqlite/2026-12-01-000001_client_introspection/up.sql: the same schema step by step, so both
-- backends carry the same migration names and the provider completes them with the same code.
-- A client registered as a resource server may introspect the access tokens of other clients
-- (RFC 7662 §4). Off for every existing client: introspection shows a client its own tokens only.
ALTER TABLE clients ADD COLUMN can_introspect BOOLEAN NOT NULL DEFAULT FALSE;
