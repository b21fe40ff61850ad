DROP INDEX grants_revoked_at;
DROP TABLE revoked_access_tokens;
ALTER TABLE clients DROP COLUMN introspection_audience;
