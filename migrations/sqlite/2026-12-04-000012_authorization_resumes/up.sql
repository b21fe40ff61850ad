-- An authorization request parked while the browser signs in (review F13):
-- the sign-in page returns to /oauth2/authorize?resume=<id>, so `state` and
-- `nonce` of any allowed length survive and `prompt` is kept (F7). Only the
-- SHA-256 of the id is stored. `session_hash` is the session that was
-- present when the request was parked: a request that asked for a fresh
-- sign-in (prompt=login, max_age) needs another one. `browser_hash` binds
-- the row to the browser that parked it (a cookie of its own): a leaked
-- resume link is useless in any other browser.
CREATE TABLE authorization_resumes (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    query        TEXT NOT NULL,
    session_hash TEXT,
    browser_hash TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX authorization_resumes_expiry ON authorization_resumes (expires_at);
-- Pending consents are bounded per user: the oldest go first (review F9).
CREATE INDEX pending_authorizations_user ON pending_authorizations (user_id, created_at);
-- And pruned by expiry.
CREATE INDEX pending_authorizations_expiry ON pending_authorizations (expires_at);
