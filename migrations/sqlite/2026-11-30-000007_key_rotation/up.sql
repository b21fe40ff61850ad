-- Key rotation: a new key is published (JWKS) before it starts signing at
-- `activates_at`; the key it replaces stays published until every token it
-- signed has expired, then `retired_at` is set and it leaves the JWKS.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT NOT NULL DEFAULT 0;
