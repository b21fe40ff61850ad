//! Discovery, JWKS and CORS (AZ-05, CO-02).

use serde_json::Value;

use crate::helpers::spawn_app;

// SECURITY-CASES AZ-05
#[tokio::test]
async fn the_metadata_document_says_exactly_what_tessera_does() {
    let app = spawn_app().await;
    let response = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("JSON");
    assert_eq!(doc["issuer"], app.address.as_str());
    assert_eq!(
        doc["token_endpoint"],
        format!("{}/oauth2/token", app.address)
    );
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{}/oauth2/authorize", app.address)
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    let grants = doc["grant_types_supported"].to_string();
    assert!(!grants.contains("password") && !grants.contains("implicit"));
    assert!(
        doc["scopes_supported"]
            .as_array()
            .expect("list")
            .iter()
            .any(|s| s == "openid")
    );
}

#[tokio::test]
async fn an_https_issuer_advertises_only_https_endpoints() {
    let https = crate::helpers::spawn_app_with(|s| {
        s.server.issuer = "https://auth.example.com".parse().expect("URL");
    })
    .await;
    let doc: Value = https
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .expect("JSON");
    for key in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
    ] {
        assert!(
            doc[key]
                .as_str()
                .expect("string")
                .starts_with("https://auth.example.com"),
            "{key}"
        );
    }
}

#[tokio::test]
async fn the_jwks_publishes_public_keys_only_with_caching() {
    let app = spawn_app().await;
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .expect("ASCII")
            .contains("max-age=")
    );
    let jwks: Value = response.json().await.expect("JSON");
    let key = &jwks["keys"][0];
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].is_string());
    assert!(key.get("d").is_none(), "no private part");
}

// SECURITY-CASES CO-02
#[tokio::test]
async fn api_endpoints_allow_any_origin_without_credentials() {
    let app = spawn_app().await;
    for path in [
        "/oauth2/token",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
    ] {
        let preflight = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://spa.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .expect("OPTIONS");
        assert!(
            preflight.status().is_success(),
            "{path}: {}",
            preflight.status()
        );
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
        let allowed = preflight.headers()["access-control-allow-headers"]
            .to_str()
            .expect("ASCII")
            .to_ascii_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
        assert!(
            !preflight
                .headers()
                .contains_key("access-control-allow-credentials")
        );
    }
    let token = app
        .client
        .post(app.url("/oauth2/token"))
        .header("origin", "https://spa.example")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST");
    assert_eq!(
        token.headers()["access-control-allow-origin"],
        "*",
        "errors carry CORS too"
    );
    assert!(
        !token
            .headers()
            .contains_key("access-control-allow-credentials")
    );
    let jwks = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .header("origin", "https://x.example")
        .send()
        .await
        .expect("GET");
    assert_eq!(jwks.headers()["access-control-allow-origin"], "*");
}

// SECURITY-CASES CO-01
#[tokio::test]
async fn the_authorization_endpoint_never_answers_cors() {
    let app = spawn_app().await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/oauth2/authorize"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("OPTIONS");
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let get = app
        .client
        .get(app.url("/oauth2/authorize"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("GET");
    assert!(!get.headers().contains_key("access-control-allow-origin"));
}
