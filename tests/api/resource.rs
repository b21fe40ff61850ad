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

const CALENDAR: &str = "https://calendar-api.example";

/// Two APIs: notes (`notes:read`) and calendar (`calendar:read`).
async fn app_with_two_apis() -> TestApp {
    spawn_app_with(|s| {
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
    .await
}

/// A resource server allowed to introspect tokens for `audience`.
async fn resource_server_for(app: &TestApp, audience: &str) -> crate::helpers::TestClient {
    let mut registration = confidential_client();
    registration.name = "Resource Server".to_owned();
    registration.redirect_uris.clear();
    registration.grant_types = vec!["client_credentials".to_owned()];
    registration.introspection_audience = Some(audience.to_owned());
    app.register(registration).await
}

/// A confidential client allowed `scopes` (plus the OIDC ones).
async fn client_with_scopes(app: &TestApp, scopes: &[&str]) -> crate::helpers::TestClient {
    let mut registration = confidential_client();
    registration
        .scopes
        .extend(scopes.iter().map(|s| (*s).to_owned()));
    app.register(registration).await
}

async fn token_body(
    app: &TestApp,
    client: &crate::helpers::TestClient,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = app.token(client, form).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// No token came back, and nothing a token-shaped string in the body
/// would be active at `rs` (the API the attempt aimed at).
async fn refused_with_invalid_target(
    app: &TestApp,
    rs: &crate::helpers::TestClient,
    (status, body): (u16, Value),
) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_target", "{body}");
    assert!(body.get("access_token").is_none(), "no token: {body}");
    if let Some(token) = body["access_token"].as_str() {
        let (_, seen) = crate::revocation::introspect(app, rs, token).await;
        assert_eq!(seen["active"], false);
    }
}

/// Introspected by `rs`: active or not.
async fn active_at(app: &TestApp, rs: &crate::helpers::TestClient, token: &str) -> bool {
    crate::revocation::introspect(app, rs, token).await.1["active"] == true
}

// SECURITY-CASES AU-01: naming a resource buys no audience without its
// scopes, by client credentials, whatever the client holds.
#[tokio::test]
async fn client_credentials_never_reach_an_api_whose_scopes_the_token_lacks() {
    let app = app_with_two_apis().await;
    let calendar_rs = resource_server_for(&app, CALENDAR).await;
    // Holds only openid profile (the review's case).
    let oidc_only = client_with_scopes(&app, &[]).await;
    for form in [
        vec![("grant_type", "client_credentials"), ("resource", CALENDAR)],
        vec![
            ("grant_type", "client_credentials"),
            ("scope", "profile"),
            ("resource", CALENDAR),
        ],
    ] {
        let answer = token_body(&app, &oidc_only, &form).await;
        refused_with_invalid_target(&app, &calendar_rs, answer).await;
    }
    // Holds notes:read only: the calendar is out of reach.
    let notes_client = client_with_scopes(&app, &["notes:read"]).await;
    for form in [
        vec![("grant_type", "client_credentials"), ("resource", CALENDAR)],
        vec![
            ("grant_type", "client_credentials"),
            ("scope", "notes:read"),
            ("resource", CALENDAR),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("scope", "notes:read"),
            ("resource", NOTES),
            ("resource", CALENDAR),
        ],
    ] {
        let answer = token_body(&app, &notes_client, &form).await;
        refused_with_invalid_target(&app, &calendar_rs, answer).await;
    }
    // Holds both but asks only for notes:read: still not the calendar
    // ("allowed AND asked for").
    let both = client_with_scopes(&app, &["notes:read", "calendar:read"]).await;
    let answer = token_body(
        &app,
        &both,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "notes:read"),
            ("resource", CALENDAR),
        ],
    )
    .await;
    refused_with_invalid_target(&app, &calendar_rs, answer).await;
    // The honest requests work, and the calendar sees only its own token.
    let (status, notes) = token_body(
        &app,
        &notes_client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "notes:read"),
            ("resource", NOTES),
        ],
    )
    .await;
    assert_eq!(status, 200, "{notes}");
    let notes_token = notes["access_token"].as_str().expect("AT");
    assert_eq!(audience(notes_token), NOTES);
    assert!(!active_at(&app, &calendar_rs, notes_token).await);
    let (status, calendar) = token_body(
        &app,
        &both,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "calendar:read"),
            ("resource", CALENDAR),
        ],
    )
    .await;
    assert_eq!(status, 200, "{calendar}");
    assert!(
        active_at(
            &app,
            &calendar_rs,
            calendar["access_token"].as_str().expect("AT")
        )
        .await
    );
}

// SECURITY-CASES AU-01: the authorization endpoint refuses a resource the
// requested scope does not reach.
#[tokio::test]
async fn authorize_refuses_a_resource_outside_the_requested_scope() {
    let app = app_with_two_apis().await;
    app.signed_in("alice").await;
    let client = client_with_scopes(&app, &["notes:read", "calendar:read"]).await;
    for (scope, resource) in [
        ("openid notes:read", CALENDAR),
        ("openid profile", NOTES),
        ("notes:read", app.address.as_str()),
    ] {
        let response = app
            .authorize(&[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", &client.redirect_uri),
                ("scope", scope),
                ("state", "s"),
                ("resource", resource),
            ])
            .await;
        let query = query_of(&location(&response));
        assert_eq!(query["error"], "invalid_target", "{scope} / {resource}");
        assert!(!query.contains_key("code"));
    }
}

/// A code for `scope` with the resources named at authorization.
async fn code_with_resources(
    app: &TestApp,
    client: &crate::helpers::TestClient,
    scope: &str,
    resources: &[&str],
) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", scope),
        ("state", "s"),
    ];
    params.extend(resources.iter().map(|r| ("resource", *r)));
    let response = app.authorize(&params).await;
    let location = if response.status() == 200 {
        let html = response.text().await.expect("consent page");
        location(&app.consent(&html, "allow", None).await)
    } else {
        location(&response)
    };
    query_of(&location)
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {location}"))
}

fn exchange<'a>(
    code: &'a str,
    client: &'a crate::helpers::TestClient,
    resources: &[&'a str],
) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", client.redirect_uri.as_str()),
    ];
    form.extend(resources.iter().map(|r| ("resource", *r)));
    form
}

fn refresh<'a>(token: &'a str, resources: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    form.extend(resources.iter().map(|r| ("resource", *r)));
    form
}

const BOTH_SCOPES: &str = "openid notes:read calendar:read offline_access";

// SECURITY-CASES AU-02: code exchange and refresh stay within the
// resources granted at authorization; a refused attempt spends nothing.
#[tokio::test]
async fn code_exchange_and_refresh_never_leave_the_granted_resources() {
    let app = app_with_two_apis().await;
    app.signed_in("alice").await;
    let calendar_rs = resource_server_for(&app, CALENDAR).await;
    let client = client_with_scopes(&app, &["notes:read", "calendar:read"]).await;

    // Granted: notes only (the scope would reach the calendar too).
    let code = code_with_resources(&app, &client, BOTH_SCOPES, &[NOTES]).await;
    let answer = token_body(&app, &client, &exchange(&code, &client, &[CALENDAR])).await;
    refused_with_invalid_target(&app, &calendar_rs, answer).await;
    let (status, first) = token_body(&app, &client, &exchange(&code, &client, &[])).await;
    assert_eq!(
        status, 200,
        "the refused exchange left the code usable: {first}"
    );
    let at = first["access_token"].as_str().expect("AT");
    assert_eq!(audience(at), NOTES);
    assert!(!active_at(&app, &calendar_rs, at).await);

    // A refresh cannot re-target the family, nor widen it by saying nothing.
    let rt = first["refresh_token"].as_str().expect("RT").to_owned();
    let answer = token_body(&app, &client, &refresh(&rt, &[CALENDAR])).await;
    refused_with_invalid_target(&app, &calendar_rs, answer).await;
    let answer = token_body(&app, &client, &refresh(&rt, &[NOTES, CALENDAR])).await;
    refused_with_invalid_target(&app, &calendar_rs, answer).await;
    let (status, refreshed) = token_body(&app, &client, &refresh(&rt, &[])).await;
    assert_eq!(
        status, 200,
        "the refused refreshes left it usable: {refreshed}"
    );
    let at = refreshed["access_token"].as_str().expect("AT");
    assert_eq!(audience(at), NOTES, "still only what was granted");
    assert!(!active_at(&app, &calendar_rs, at).await);
    // ...and its successor still is.
    let rt = refreshed["refresh_token"].as_str().expect("RT").to_owned();
    let answer = token_body(&app, &client, &refresh(&rt, &[CALENDAR])).await;
    refused_with_invalid_target(&app, &calendar_rs, answer).await;
}

// SECURITY-CASES AU-02: narrowing to some of the granted resources works,
// at code exchange and at refresh, and the family keeps all of them.
#[tokio::test]
async fn code_exchange_and_refresh_may_narrow_the_granted_resources() {
    let app = app_with_two_apis().await;
    app.signed_in("alice").await;
    let calendar_rs = resource_server_for(&app, CALENDAR).await;
    let client = client_with_scopes(&app, &["notes:read", "calendar:read"]).await;
    let code = code_with_resources(&app, &client, BOTH_SCOPES, &[NOTES, CALENDAR]).await;
    let (status, first) = token_body(&app, &client, &exchange(&code, &client, &[NOTES])).await;
    assert_eq!(status, 200, "{first}");
    let at = first["access_token"].as_str().expect("AT");
    assert_eq!(audience(at), NOTES);
    assert!(!active_at(&app, &calendar_rs, at).await);

    let rt = first["refresh_token"].as_str().expect("RT");
    let (status, second) = token_body(&app, &client, &refresh(rt, &[CALENDAR])).await;
    assert_eq!(status, 200, "{second}");
    let at = second["access_token"].as_str().expect("AT");
    assert_eq!(audience(at), CALENDAR);
    assert!(active_at(&app, &calendar_rs, at).await);

    let rt = second["refresh_token"].as_str().expect("RT");
    let (status, third) = token_body(&app, &client, &refresh(rt, &[])).await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(
        audience(third["access_token"].as_str().expect("AT")),
        serde_json::json!([NOTES, CALENDAR]),
        "the family kept both granted resources"
    );
}

// SECURITY-CASES AU-01: an anonymous self-registered (DCR) client gets no
// token for a configured API either (review F2).
#[tokio::test]
async fn an_anonymously_registered_client_gets_no_token_for_an_api() {
    let app = spawn_app_with(|s| {
        s.registration.mode = tessera::config::RegistrationMode::Open;
        s.scopes.push(ScopeDefinition {
            name: "calendar:read".to_owned(),
            description: "Read your calendar".to_owned(),
        });
        s.apis.push(ApiDefinition {
            audience: CALENDAR.to_owned(),
            scopes: vec!["calendar:read".to_owned()],
        });
    })
    .await;
    let calendar_rs = resource_server_for(&app, CALENDAR).await;
    let registered: Value = app
        .client
        .post(app.url("/oauth2/register"))
        .json(&serde_json::json!({
            "client_name": "Anonymous",
            "redirect_uris": ["https://third.example/cb"],
            "grant_types": ["client_credentials"],
            "scope": "openid profile",
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .send()
        .await
        .expect("POST register")
        .json()
        .await
        .expect("JSON");
    let client = crate::helpers::TestClient {
        id: registered["client_id"]
            .as_str()
            .expect("client_id")
            .to_owned(),
        secret: registered["client_secret"].as_str().map(str::to_owned),
        redirect_uri: "https://third.example/cb".to_owned(),
    };
    for form in [
        vec![("grant_type", "client_credentials"), ("resource", CALENDAR)],
        vec![
            ("grant_type", "client_credentials"),
            ("scope", "profile"),
            ("resource", CALENDAR),
        ],
    ] {
        let answer = token_body(&app, &client, &form).await;
        refused_with_invalid_target(&app, &calendar_rs, answer).await;
    }
    let (status, body) = token_body(
        &app,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "calendar:read"),
            ("resource", CALENDAR),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
}
