-- The audit log: security events, who and what, never a secret or a token.
CREATE TABLE audit_events (
    id        TEXT PRIMARY KEY NOT NULL,
    at        BIGINT NOT NULL,
    event     TEXT NOT NULL,
    user_id   TEXT,
    client_id TEXT,
    detail    TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (user_id);
CREATE INDEX audit_events_client ON audit_events (client_id);
