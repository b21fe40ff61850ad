-- Browsers that signed in to an account before (OWASP "device cookie"): a
-- failed sign-in from elsewhere does not lock them out (LG-02). Only the
-- SHA-256 of the cookie's 256-bit token is stored.
CREATE TABLE known_browsers (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX known_browsers_user_id ON known_browsers (user_id);
CREATE INDEX known_browsers_expires_at ON known_browsers (expires_at);
