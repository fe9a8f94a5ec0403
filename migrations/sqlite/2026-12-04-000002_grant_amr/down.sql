ALTER TABLE authorization_codes DROP COLUMN acr;
ALTER TABLE authorization_codes DROP COLUMN amr;
ALTER TABLE grants DROP COLUMN acr;
ALTER TABLE grants DROP COLUMN amr;
