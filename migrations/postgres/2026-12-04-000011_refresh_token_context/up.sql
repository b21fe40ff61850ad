-- What a refresh-token family carries from its authorization: the RFC 8707
-- resources granted (space-separated; a refresh may narrow them, never widen
-- them) and the time the user authenticated (OIDC Core §12.2 `auth_time`).
-- NULL on rows written before this migration: no resource named, and the
-- grant's creation time as before.
ALTER TABLE refresh_tokens ADD COLUMN resource TEXT;
ALTER TABLE refresh_tokens ADD COLUMN auth_time BIGINT;
