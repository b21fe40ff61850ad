//! `/metrics` in Prometheus format.

use crate::helpers::{confidential_client, spawn_app};

#[tokio::test]
async fn metrics_count_requests_tokens_and_sign_ins_without_leaking_paths() {
    let app = spawn_app().await;
    let client = app.register(confidential_client()).await;
    assert_eq!(
        app.token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "profile")]
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        app.token(&client, &[("grant_type", "password")])
            .await
            .status(),
        400
    );
    app.create_user("alice", crate::helpers::PASSWORD).await;
    assert_eq!(app.login("alice", "wrong password").await.status(), 401);
    let _ = app
        .get("/oauth2/introspect?token=super-secret-token-value")
        .await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("text/plain")
    );
    let text = response.text().await.expect("body");
    assert!(
        text.contains(
            "tessera_http_requests_total{method=\"POST\",route=\"/oauth2/token\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("tessera_http_request_duration_seconds_bucket{method=\"POST\",route=\"/oauth2/token\",status=\"200\",le=\"+Inf\"} 1"));
    assert!(text.contains("tessera_tokens_issued_total{grant_type=\"client_credentials\"} 1"));
    assert!(text.contains("tessera_token_errors_total{error=\"unsupported_grant_type\"} 1"));
    assert!(text.contains("tessera_sign_ins_total{outcome=\"failure\"} 1"));
    assert!(text.contains("tessera_db_pool_connections{state=\"idle\"}"));
    assert!(
        !text.contains("super-secret-token-value"),
        "routes are patterns, never raw paths"
    );

    // A refresh-token reuse is counted, with its revocation reason.
    app.signed_in("bob").await;
    let code = app
        .obtain_code(&client, "openid offline_access", None)
        .await;
    let tokens: serde_json::Value = app
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
    let _ = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    let text = app.get("/metrics").await.text().await.expect("body");
    assert!(
        text.contains("tessera_refresh_reuse_detected_total 1"),
        "{text}"
    );
    assert!(text.contains("tessera_grants_revoked_total{reason=\"refresh_reuse\"} 1"));
}

#[tokio::test]
async fn a_separate_metrics_listener_keeps_metrics_off_the_main_one() {
    let app =
        crate::helpers::spawn_app_with(|s| s.server.metrics_listen = "127.0.0.1:0".to_owned())
            .await;
    let port = app.metrics_port.expect("a metrics port");
    assert_eq!(
        app.get("/metrics").await.status(),
        404,
        "not on the public listener"
    );
    let scraped = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("GET");
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped
            .text()
            .await
            .expect("body")
            .contains("tessera_http_requests_total")
    );
}

// Reliability finding 4: any token is a valid HTTP method, so made-up ones
// must not each become a series.
#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let app = crate::helpers::spawn_app().await;
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).expect("token");
        let _ = app
            .client
            .request(method, app.url(&format!("/nowhere/{i}")))
            .send()
            .await
            .expect("request");
    }
    let text = app.get("/metrics").await.text().await.expect("body");
    assert!(!text.contains("MADEUP"), "{text}");
    assert!(
        text.contains("method=\"OTHER\",route=\"unmatched\""),
        "{text}"
    );
    assert!(!text.contains("/nowhere"), "raw paths never become labels");
}
