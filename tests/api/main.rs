//! The integration suite: the real server over HTTP, on SQLite by default
//! and on PostgreSQL when TESSERA_TEST_DATABASE_URL is set.

#![expect(
    clippy::expect_used,
    reason = "test helpers fail loudly, with a message, when a fixture breaks"
)]

mod at_rest;
mod audit;
mod authorize;
mod authorize_review;
mod bad_input;
mod browser;
mod cli;
mod csrf;
mod db_partition;
mod hash_memory;
mod headers;
mod health;
mod helpers;
mod instances;
mod keys;
mod login;
mod logs;
mod metadata;
mod migrations;
mod oauth2_client;
mod oauth_flow;
mod observability;
mod oidc;
mod open_redirect;
mod reflection;
mod refresh_grace;
mod registration;
mod registry_safety;
mod resource;
mod revocation;
mod revocation_race;
mod sessions;
mod signup;
mod slow_clients;
mod throttling;
mod token;
mod token_state;
