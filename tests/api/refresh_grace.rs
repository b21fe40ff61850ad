//! `tokens.refresh_token_reuse_grace_secs` (reliability finding 7, first
//! contact): within the window a client that lost the answer to a refresh
//! and retries it gets a fresh pair; past the window the same replay is
//! reuse and revokes the family (RT-02). Both sides of the boundary.

use diesel::prelude::*;
use serde_json::Value;
use tessera::domain::TokenDigest;
use tessera::storage::StorageError;
use tessera::storage::schema::refresh_tokens;

use crate::helpers::{TestApp, TestClient, confidential_client, spawn_app_with};

async fn refresh(app: &TestApp, client: &TestClient, token: &str) -> (u16, Value) {
    let response = app
        .token(
            client,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn with_grace() -> (TestApp, TestClient, String) {
    let app = spawn_app_with(|s| s.tokens.refresh_token_reuse_grace_secs = 30).await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let code = app
        .obtain_code(&client, "openid offline_access", None)
        .await;
    let tokens: Value = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let rt = tokens["refresh_token"].as_str().expect("RT").to_owned();
    (app, client, rt)
}

/// Moves a token's rotation `secs` into the past.
async fn rotated_ago(app: &TestApp, token: &str, secs: i64) {
    let digest = TokenDigest::of(token.as_bytes()).as_str().to_owned();
    app.db
        .run(move |conn| {
            diesel::update(refresh_tokens::table.find(digest))
                .set(refresh_tokens::rotated_at.eq(tessera::domain::now() - secs))
                .execute(conn)?;
            Ok::<_, StorageError>(())
        })
        .await
        .expect("update");
}

#[tokio::test]
async fn a_retry_within_the_window_gets_a_fresh_pair_and_the_lost_one_dies() {
    let (app, client, rt1) = with_grace().await;
    let (status, lost) = refresh(&app, &client, &rt1).await;
    assert_eq!(status, 200);
    let rt2 = lost["refresh_token"].as_str().expect("RT2").to_owned();
    // The answer never reached the client: it retries with RT1.
    let (status, retried) = refresh(&app, &client, &rt1).await;
    assert_eq!(status, 200, "the retry succeeds: {retried}");
    let rt3 = retried["refresh_token"].as_str().expect("RT3").to_owned();
    assert_ne!(rt3, rt2);
    assert!(retried["access_token"].is_string());
    // The pair it never saw is dead; the new one works.
    let (status, _) = refresh(&app, &client, &rt2).await;
    assert_eq!(status, 400, "the lost successor was rotated away");
    let (status, _) = refresh(&app, &client, &rt3).await;
    assert_eq!(status, 200, "the family lives on");
}

#[tokio::test]
async fn a_replay_past_the_window_is_reuse_and_revokes_the_family() {
    let (app, client, rt1) = with_grace().await;
    let (status, second) = refresh(&app, &client, &rt1).await;
    assert_eq!(status, 200);
    let rt2 = second["refresh_token"].as_str().expect("RT2").to_owned();
    rotated_ago(&app, &rt1, 31).await;
    let (status, body) = refresh(&app, &client, &rt1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(&app, &client, &rt2).await;
    assert_eq!(status, 400, "RT-02: the family was revoked");
}

#[tokio::test]
async fn a_replay_within_the_window_after_the_successor_was_used_fails_without_revoking() {
    let (app, client, rt1) = with_grace().await;
    let (_, second) = refresh(&app, &client, &rt1).await;
    let rt2 = second["refresh_token"].as_str().expect("RT2").to_owned();
    let (status, third) = refresh(&app, &client, &rt2).await;
    assert_eq!(status, 200, "the client moved on");
    let rt3 = third["refresh_token"].as_str().expect("RT3").to_owned();
    let (status, body) = refresh(&app, &client, &rt1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(&app, &client, &rt3).await;
    assert_eq!(status, 200, "inside the window nothing was revoked");
}
