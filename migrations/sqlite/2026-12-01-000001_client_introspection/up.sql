-- A client registered as a resource server may introspect the access tokens of other clients
-- (RFC 7662 §4). Off for every existing client: introspection shows a client its own tokens only.
ALTER TABLE clients ADD COLUMN can_introspect BOOLEAN NOT NULL DEFAULT FALSE;
