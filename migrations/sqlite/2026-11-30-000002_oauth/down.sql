DROP TABLE pending_authorizations;
DROP TABLE signing_keys;
DROP TABLE refresh_tokens;
DROP TABLE authorization_codes;
DROP TABLE grants;
DROP TABLE clients;
