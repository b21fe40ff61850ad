-- A client that is a resource server may introspect tokens whose audience is
-- this value (RFC 7662 §4: only authorised callers learn about a token).
ALTER TABLE clients ADD COLUMN introspection_audience TEXT;

-- Access tokens revoked one by one (RFC 7009). Access tokens are not stored
-- when issued; only a revoked one's jti is, until it would have expired.
CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    grant_id   TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);
CREATE INDEX grants_revoked_at ON grants (revoked_at);
