-- OAuth clients, grants (one per authorization), authorization codes,
-- refresh tokens and signing keys. Secrets are stored only as SHA-256 (hex).

CREATE TABLE clients (
    id                         TEXT PRIMARY KEY NOT NULL,
    name                       TEXT NOT NULL,
    client_type                TEXT NOT NULL,
    secret_hash                TEXT,
    redirect_uris              TEXT NOT NULL,
    allowed_scopes             TEXT NOT NULL,
    grant_types                TEXT NOT NULL,
    homepage_uri               TEXT,
    logo_uri                   TEXT,
    policy_uri                 TEXT,
    tos_uri                    TEXT,
    verified                   BOOLEAN NOT NULL DEFAULT FALSE,
    first_party                BOOLEAN NOT NULL DEFAULT FALSE,
    always_issue_refresh_token BOOLEAN NOT NULL DEFAULT FALSE,
    access_token_ttl_secs      BIGINT,
    owner_user_id              TEXT REFERENCES users (id) ON DELETE SET NULL,
    disabled                   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);

-- One row per authorization: a user's consent to a client (user_id set), or
-- a client's standing client-credentials grant (user_id NULL). Every token
-- carries its grant id; revoking the row revokes the whole family.
CREATE TABLE grants (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT REFERENCES users (id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX grants_user_client ON grants (user_id, client_id);
CREATE INDEX grants_client ON grants (client_id);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY NOT NULL,
    grant_id       TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    -- Whether redirect_uri was in the authorization request, so the token
    -- request must repeat it (RFC 6749 §4.1.3).
    redirect_uri_sent BOOLEAN NOT NULL,
    scope          TEXT NOT NULL,
    code_challenge TEXT,
    nonce          TEXT,
    auth_time      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    consumed_at    BIGINT
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash          TEXT PRIMARY KEY NOT NULL,
    grant_id            TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id           TEXT NOT NULL,
    parent_hash         TEXT,
    scope               TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    idle_expires_at     BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    rotated_at          BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_idle_expires_at ON refresh_tokens (idle_expires_at);

-- An authorization request waiting for the user's consent. The consent form
-- carries its id; only the SHA-256 of the id is stored, and the row is bound
-- to the user who saw the page (CS-02, CS-03).
CREATE TABLE pending_authorizations (
    id_hash           TEXT PRIMARY KEY NOT NULL,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id         TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri      TEXT NOT NULL,
    redirect_uri_sent BOOLEAN NOT NULL,
    scope             TEXT NOT NULL,
    state             TEXT,
    code_challenge    TEXT,
    nonce             TEXT,
    auth_time         BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL
);

-- Private keys are AES-256-GCM ciphertexts (base64 of nonce || ciphertext)
-- under the key-encryption key from configuration.
CREATE TABLE signing_keys (
    kid                   TEXT PRIMARY KEY NOT NULL,
    algorithm             TEXT NOT NULL,
    private_key_encrypted TEXT NOT NULL,
    public_jwk            TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    retired_at            BIGINT
);
