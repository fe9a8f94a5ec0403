ALTER TABLE clients DROP COLUMN can_introspect;
