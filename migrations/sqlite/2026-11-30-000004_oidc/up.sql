-- OpenID Connect RP-initiated logout: where a client may send the browser
-- after signing out (exact strings, one per line).
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
