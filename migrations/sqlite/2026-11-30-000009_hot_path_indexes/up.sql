-- Introspection asks whether a grant has any denylisted access token.
CREATE INDEX revoked_access_tokens_grant ON revoked_access_tokens (grant_id);
