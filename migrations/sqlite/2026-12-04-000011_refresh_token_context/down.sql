ALTER TABLE refresh_tokens DROP COLUMN auth_time;
ALTER TABLE refresh_tokens DROP COLUMN resource;
