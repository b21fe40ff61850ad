//! What the token endpoint remembers and what its errors leave alone:
//! ST-01 (an error changes no state: the code or refresh token stays
//! usable) and OIDC Core §12.2 (a refreshed ID token keeps `auth_time`).

use diesel::prelude::*;
use serde_json::Value;
use tessera::config::{ApiDefinition, ScopeDefinition};
use tessera::storage::StorageError;
use tessera::storage::schema::{grants, sessions};

use crate::helpers::{TestApp, TestClient, confidential_client, spawn_app_with};

const NOTES: &str = "https://notes-api.example";
const CALENDAR: &str = "https://calendar-api.example";

/// alice signed in; C1 allowed `notes:read`; two APIs configured, of which
/// the client may reach only the notes.
async fn app_and_client() -> (TestApp, TestClient) {
    let app = spawn_app_with(|s| {
        for (name, audience) in [("notes:read", NOTES), ("calendar:read", CALENDAR)] {
            s.scopes.push(ScopeDefinition {
                name: name.to_owned(),
                description: format!("{name} scope"),
            });
            s.apis.push(ApiDefinition {
                audience: audience.to_owned(),
                scopes: vec![name.to_owned()],
            });
        }
    })
    .await;
    app.signed_in("alice").await;
    let mut registration = confidential_client();
    registration.scopes.push("notes:read".to_owned());
    let client = app.register(registration).await;
    (app, client)
}

async fn post(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> (u16, Value) {
    let response = app.token(client, form).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// The JSON payload of a JWT (its signature is checked elsewhere).
fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// How many of the app's grants are revoked (reuse detection revokes one).
async fn revoked_grants(app: &TestApp) -> i64 {
    app.db
        .run(|conn| {
            Ok::<_, StorageError>(
                grants::table
                    .filter(grants::revoked_at.is_not_null())
                    .count()
                    .get_result::<i64>(conn)?,
            )
        })
        .await
        .expect("count grants")
}

const SCOPE: &str = "openid notes:read offline_access";

// SECURITY-CASES ST-01, AU-02: every refused code exchange leaves the code
// usable, and the honest retry is not taken for a replay.
#[tokio::test]
async fn a_refused_code_exchange_leaves_the_code_usable() {
    let (app, client) = app_and_client().await;
    let code = app.obtain_code(&client, SCOPE, None).await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
    ];
    let verifier = "a".repeat(43);
    let attempts: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("resource", "https://elsewhere.example")],
            "invalid_target",
        ),
        (vec![("resource", CALENDAR)], "invalid_target"),
        (
            vec![("resource", NOTES), ("resource", CALENDAR)],
            "invalid_target",
        ),
        (vec![("code_verifier", &verifier)], "invalid_request"),
    ];
    for (extra, error) in attempts {
        let mut form = base.to_vec();
        form.extend(extra);
        let (status, body) = post(&app, &client, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{form:?}"
        );
    }
    let wrong_redirect = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://client.example/other"),
    ];
    let (status, body) = post(&app, &client, &wrong_redirect).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let (status, tokens) = post(&app, &client, &base).await;
    assert_eq!(status, 200, "the code survived every refusal: {tokens}");
    assert_eq!(revoked_grants(&app).await, 0, "no replay detected");
    let rt = tokens["refresh_token"].as_str().expect("RT");
    let (status, _) = post(
        &app,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(status, 200, "the grant is alive");
}

// SECURITY-CASES ST-01, AU-02, RT-05: every refused refresh leaves the
// refresh token usable, and no reuse detection fires.
#[tokio::test]
async fn a_refused_refresh_leaves_the_refresh_token_usable() {
    let (app, client) = app_and_client().await;
    let code = app.obtain_code(&client, SCOPE, None).await;
    let (status, first) = post(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uri),
        ],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let rt = first["refresh_token"].as_str().expect("RT");
    let base = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let attempts: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("resource", "https://elsewhere.example")],
            "invalid_target",
        ),
        (vec![("resource", CALENDAR)], "invalid_target"),
        (
            vec![("scope", "openid notes:read calendar:read")],
            "invalid_scope",
        ),
        (vec![("scope", "profile")], "invalid_scope"),
        (vec![("scope", "bad\u{7f}scope")], "invalid_scope"),
        // The narrowed scope reaches only the issuer, not the notes API.
        (
            vec![("scope", "openid"), ("resource", NOTES)],
            "invalid_target",
        ),
    ];
    for (extra, error) in attempts {
        let mut form = base.to_vec();
        form.extend(extra);
        let (status, body) = post(&app, &client, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{form:?}"
        );
    }
    let (status, second) = post(&app, &client, &base).await;
    assert_eq!(
        status, 200,
        "the refresh token survived every refusal: {second}"
    );
    assert_eq!(revoked_grants(&app).await, 0, "no reuse detected");
    let rt2 = second["refresh_token"].as_str().expect("RT2");
    let (status, _) = post(
        &app,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", rt2)],
    )
    .await;
    assert_eq!(status, 200, "the family is alive");
}

// OIDC Core §12.2 (review F14): a refreshed ID token carries the time the
// user authenticated, not the time the grant was made.
#[tokio::test]
async fn a_refreshed_id_token_keeps_the_sign_in_time() {
    let (app, client) = app_and_client().await;
    // Sign-in long before the grant: moved back instead of waiting.
    let signed_in_at: i64 = app
        .db
        .run(|conn| {
            diesel::update(sessions::table)
                .set(sessions::auth_time.eq(sessions::auth_time - 600))
                .execute(conn)?;
            Ok::<_, StorageError>(
                sessions::table
                    .select(sessions::auth_time)
                    .first::<i64>(conn)?,
            )
        })
        .await
        .expect("age the sign-in");
    let code = app.obtain_code(&client, SCOPE, None).await;
    let (status, first) = post(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uri),
        ],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let first_id = claims(first["id_token"].as_str().expect("ID token"));
    assert_eq!(first_id["auth_time"], signed_in_at);

    let mut rt = first["refresh_token"].as_str().expect("RT").to_owned();
    for round in 0..2 {
        let (status, refreshed) = post(
            &app,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
        assert_eq!(status, 200, "{refreshed}");
        let id = claims(refreshed["id_token"].as_str().expect("refreshed ID token"));
        assert_eq!(id["auth_time"], first_id["auth_time"], "round {round}");
        assert_eq!(id["auth_time"], signed_in_at, "the session's sign-in");
        rt = refreshed["refresh_token"].as_str().expect("RT").to_owned();
    }
}
