//! The audit log records security events and never a secret.

use serde_json::Value;

use crate::helpers::{PASSWORD, confidential_client, spawn_app};

#[tokio::test]
async fn security_events_are_audited_without_secrets() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    assert_eq!(app.login("alice", "a wrong password").await.status(), 401);
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
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
    let refresh = tokens["refresh_token"].as_str().expect("RT").to_owned();
    let _ = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    let reuse = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(reuse.status(), 400);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["audit", "list", "--json"])
        .env("TESSERA__DATABASE__URL", &app.settings.database.url)
        .env("RUST_LOG", "warn")
        .env_remove("TESSERA_ENV")
        .output()
        .expect("tessera runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let names: Vec<&str> = events
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for expected in [
        "user.created",
        "sign_in.failed",
        "sign_in.succeeded",
        "client.registered",
        "consent.granted",
        "grant.revoked",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let reuse_event = events
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["event"] == "grant.revoked")
        .expect("revocation");
    assert!(
        reuse_event["detail"]
            .as_str()
            .expect("detail")
            .contains("refresh token reused")
    );
    let text = String::from_utf8_lossy(&output.stdout);
    for secret in [
        PASSWORD,
        "a wrong password",
        refresh.as_str(),
        code.as_str(),
        client.secret.as_deref().expect("secret"),
    ] {
        assert!(!text.contains(secret), "a secret reached the audit log");
    }
}
