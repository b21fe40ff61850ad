-- RFC 8707 resource indicators: the audiences an authorization request
-- named, space-separated, carried from the consent page to the code.
ALTER TABLE pending_authorizations ADD COLUMN resource TEXT;
ALTER TABLE authorization_codes ADD COLUMN resource TEXT;
