//! The authorization code flow end to end over HTTP, tokens verified with
//! the published JWKS the way a resource server would.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::helpers::{TestApp, confidential_client, pkce_pair, public_client, spawn_app};

/// Verifies an access token against `/.well-known/jwks.json`.
pub async fn verify_with_jwks(app: &TestApp, token: &str) -> Value {
    let jwks: JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("JWKS");
    let header = jsonwebtoken::decode_header(token).expect("JWT header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 typ");
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let key = DecodingKey::from_jwk(jwk).expect("usable JWK");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[app.address.as_str()]);
    validation.set_audience(&[app.address.as_str()]);
    validation.validate_nbf = true;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the token verifies")
        .claims
}

#[tokio::test]
async fn a_user_approves_an_app_which_exchanges_the_code_for_verifiable_tokens() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let (verifier, challenge) = pkce_pair();
    let code = app
        .obtain_code(&client, "openid profile offline_access", Some(&challenge))
        .await;

    let response = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "offline_access openid profile");
    let expires_in = body["expires_in"].as_i64().expect("expires_in");
    assert!(
        expires_in > 0 && expires_in <= 600,
        "OP-06: access tokens live at most 10 minutes"
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 43),
        "offline_access gives a refresh token"
    );

    let claims = verify_with_jwks(&app, body["access_token"].as_str().expect("access token")).await;
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["scope"], "offline_access openid profile");
    assert!(
        claims["gid"].as_str().is_some(),
        "access tokens carry their grant"
    );
    assert!(claims["jti"].as_str().is_some());
    assert!(
        claims["sub"].as_str().is_some_and(|s| s.len() == 36),
        "sub is the user id"
    );
}

#[tokio::test]
async fn a_public_client_uses_pkce_and_its_loopback_redirect_on_any_port() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let mut client = app.register(public_client()).await;
    client.redirect_uri = "http://127.0.0.1:51004/cb".to_owned();
    let (verifier, challenge) = pkce_pair();
    let code = app.obtain_code(&client, "openid", Some(&challenge)).await;
    let response = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

#[tokio::test]
async fn remembered_consent_skips_the_page_and_new_scopes_ask_again() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let _ = app.obtain_code(&client, "openid profile", None).await;
    let again = app
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", &client.redirect_uri),
            ("scope", "openid"),
        ])
        .await;
    assert_eq!(
        again.status(),
        302,
        "already granted: straight back with a code"
    );
    let more = app
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", &client.redirect_uri),
            ("scope", "openid profile email"),
        ])
        .await;
    assert_eq!(more.status(), 200, "a new scope needs consent");
    let html = more.text().await.expect("page");
    assert!(
        html.contains("See your email address"),
        "the new scope is shown"
    );
    assert!(
        html.contains("You already allowed"),
        "granted scopes are listed apart"
    );
}

#[tokio::test]
async fn client_credentials_issue_a_token_for_the_client_itself() {
    let app = spawn_app().await;
    let client = app.register(confidential_client()).await;
    let response = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "profile")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert!(body.get("refresh_token").is_none());
    let claims = verify_with_jwks(&app, body["access_token"].as_str().expect("token")).await;
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["scope"], "profile");
}
