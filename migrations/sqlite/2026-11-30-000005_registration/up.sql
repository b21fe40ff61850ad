-- Self-service registration: a description for the consent page, the
-- previous secret kept for an overlap after rotation, the RFC 7592
-- registration access token (SHA-256), and initial access tokens for
-- `registration.mode = "token"`.
ALTER TABLE clients ADD COLUMN description TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT;

CREATE TABLE registration_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    uses_left  INTEGER NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
