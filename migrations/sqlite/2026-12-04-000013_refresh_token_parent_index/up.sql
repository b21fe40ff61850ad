-- A retried refresh within the grace window looks up the rotated token's
-- unused successor by its parent.
CREATE INDEX refresh_tokens_parent ON refresh_tokens (parent_hash);
