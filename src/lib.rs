//! tessera: an OAuth 2 / OpenID Connect authorization server.

pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod oauth;
pub mod startup;
pub mod storage;
pub mod telemetry;
