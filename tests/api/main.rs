//! The integration suite: the real server over HTTP, on SQLite by default
//! and on PostgreSQL when TESSERA_TEST_DATABASE_URL is set.

#![expect(
    clippy::expect_used,
    reason = "test helpers fail loudly, with a message, when a fixture breaks"
)]

mod at_rest;
mod audit;
mod authorize;
mod bad_input;
mod browser;
mod cli;
mod csrf;
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
mod registration;
mod resource;
mod revocation;
mod sessions;
mod signup;
mod throttling;
mod token;
