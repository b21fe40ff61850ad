//! RFC 8707 resource indicators and configured APIs: the audience of
//! access tokens.

use serde_json::Value;
use tessera::config::{ApiDefinition, ScopeDefinition};

use crate::helpers::{TestApp, confidential_client, location, query_of, spawn_app_with};

const NOTES: &str = "https://notes-api.example";

async fn app_with_api() -> TestApp {
    spawn_app_with(|s| {
        s.scopes.push(ScopeDefinition {
            name: "notes:read".to_owned(),
            description: "Read your notes".to_owned(),
        });
        s.apis.push(ApiDefinition {
            audience: NOTES.to_owned(),
            scopes: vec!["notes:read".to_owned()],
        });
    })
    .await
}

fn audience(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice::<Value>(&bytes).expect("JSON")["aud"].clone()
}

#[tokio::test]
async fn tokens_are_for_the_apis_owning_their_scopes_or_the_named_resource() {
    let app = app_with_api().await;
    app.signed_in("alice").await;
    let mut registration = confidential_client();
    registration.scopes.push("notes:read".to_owned());
    let client = app.register(registration).await;

    // No resource: the API owning notes:read, plus the issuer for openid.
    let code = app.obtain_code(&client, "openid notes:read", None).await;
    let body: Value = app
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
    assert_eq!(
        audience(body["access_token"].as_str().expect("AT")),
        serde_json::json!([NOTES, app.address.as_str()])
    );

    // resource named at authorization: the token is for that API only.
    let response = app
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", &client.redirect_uri),
            ("scope", "notes:read"),
            ("state", "s"),
            ("resource", NOTES),
        ])
        .await;
    let code = query_of(&location(&response))["code"].clone();
    let body: Value = app
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
    assert_eq!(audience(body["access_token"].as_str().expect("AT")), NOTES);

    // An unknown resource is invalid_target, at both endpoints.
    let unknown = app
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", &client.redirect_uri),
            ("scope", "notes:read"),
            ("resource", "https://elsewhere.example"),
        ])
        .await;
    assert_eq!(query_of(&location(&unknown))["error"], "invalid_target");
    let cc = app
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "notes:read"),
                ("resource", "https://elsewhere.example"),
            ],
        )
        .await;
    assert_eq!(cc.status(), 400);
    assert_eq!(
        cc.json::<Value>().await.expect("JSON")["error"],
        "invalid_target"
    );
    let cc: Value = app
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "notes:read"),
                ("resource", NOTES),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(audience(cc["access_token"].as_str().expect("AT")), NOTES);
}
