//! Table definitions matching `migrations/`. Kept in step with both
//! migration trees; `tests/api/migrations.rs` checks the columns exist.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        email -> Nullable<Text>,
        display_name -> Nullable<Text>,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        auth_time -> BigInt,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    throttles (key) {
        key -> Text,
        failures -> Integer,
        window_started_at -> BigInt,
        last_failure_at -> BigInt,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, sessions, throttles);

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        client_type -> Text,
        secret_hash -> Nullable<Text>,
        redirect_uris -> Text,
        allowed_scopes -> Text,
        grant_types -> Text,
        homepage_uri -> Nullable<Text>,
        logo_uri -> Nullable<Text>,
        policy_uri -> Nullable<Text>,
        tos_uri -> Nullable<Text>,
        verified -> Bool,
        first_party -> Bool,
        always_issue_refresh_token -> Bool,
        access_token_ttl_secs -> Nullable<BigInt>,
        owner_user_id -> Nullable<Text>,
        disabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        introspection_audience -> Nullable<Text>,
        post_logout_redirect_uris -> Text,
        description -> Nullable<Text>,
        previous_secret_hash -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<BigInt>,
        registration_token_hash -> Nullable<Text>,
        token_endpoint_auth_method -> Nullable<Text>,
    }
}

diesel::table! {
    registration_tokens (token_hash) {
        token_hash -> Text,
        uses_left -> Integer,
        expires_at -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        grant_id -> Text,
        expires_at -> BigInt,
        revoked_at -> BigInt,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        client_id -> Text,
        scope -> Text,
        created_at -> BigInt,
        last_used_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        redirect_uri_sent -> Bool,
        scope -> Text,
        code_challenge -> Nullable<Text>,
        nonce -> Nullable<Text>,
        auth_time -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        resource -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        parent_hash -> Nullable<Text>,
        scope -> Text,
        created_at -> BigInt,
        idle_expires_at -> BigInt,
        absolute_expires_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        resource -> Nullable<Text>,
        auth_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        private_key_encrypted -> Text,
        public_jwk -> Text,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
        activates_at -> BigInt,
    }
}

diesel::table! {
    pending_authorizations (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        redirect_uri_sent -> Bool,
        scope -> Text,
        state -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        nonce -> Nullable<Text>,
        auth_time -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        resource -> Nullable<Text>,
    }
}

diesel::table! {
    authorization_resumes (id_hash) {
        id_hash -> Text,
        query -> Text,
        session_hash -> Nullable<Text>,
        browser_hash -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::joinable!(grants -> clients (client_id));
diesel::joinable!(authorization_codes -> grants (grant_id));
diesel::joinable!(refresh_tokens -> grants (grant_id));
diesel::allow_tables_to_appear_in_same_query!(
    clients,
    grants,
    authorization_codes,
    refresh_tokens,
    signing_keys,
    users
);

diesel::table! {
    audit_events (id) {
        id -> Text,
        at -> BigInt,
        event -> Text,
        user_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    known_browsers (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}
