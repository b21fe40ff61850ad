ALTER TABLE authorization_codes DROP COLUMN resource;
ALTER TABLE pending_authorizations DROP COLUMN resource;
