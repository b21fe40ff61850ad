//! The authorization endpoint's security cases (RU-*, AZ-*, PK-01/02, SC-*,
//! CS-02/03/05, IV-01/02).

use diesel::prelude::*;
use tessera::storage::StorageError;
use tessera::storage::schema::{authorization_codes, grants};

use crate::helpers::{
    TestApp, TestClient, confidential_client, location, pkce_pair, public_client, query_of,
    spawn_app,
};

async fn rows(app: &TestApp) -> (i64, i64) {
    app.db
        .run(|conn| {
            let codes = authorization_codes::table.count().get_result(conn)?;
            let grants = grants::table.count().get_result(conn)?;
            Ok::<_, StorageError>((codes, grants))
        })
        .await
        .expect("count rows")
}

/// An error page: 400 HTML, no redirect, nothing stored.
async fn assert_error_page(app: &TestApp, params: &[(&str, &str)], what: &str) {
    let before = rows(app).await;
    let response = app.authorize(params).await;
    assert_eq!(response.status(), 400, "{what}");
    assert!(
        response.headers().get("location").is_none(),
        "{what}: never redirects"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("text/html")
    );
    assert_eq!(rows(app).await, before, "{what}: nothing stored");
}

fn base<'a>(client: &'a TestClient, redirect_uri: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", redirect_uri),
        ("scope", "openid"),
        ("state", "s1"),
    ]
}

/// A redirect error: 302 to the registered URI with `error`, `state`, `iss`.
async fn assert_redirect_error(
    app: &TestApp,
    params: &[(&str, &str)],
    error: &str,
) -> std::collections::HashMap<String, String> {
    let response = app.authorize(params).await;
    assert_eq!(response.status(), 302, "expected a redirect with {error}");
    let location = location(&response);
    let query = query_of(&location);
    assert_eq!(
        query.get("error").map(String::as_str),
        Some(error),
        "{location}"
    );
    assert_eq!(
        query.get("iss").map(String::as_str),
        Some(app.address.as_str()),
        "RFC 9207 iss"
    );
    assert!(!query.contains_key("code"));
    query
}

// SECURITY-CASES RU-02, RU-03, RU-05
#[tokio::test]
async fn redirect_uris_must_match_the_registration_exactly() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    for variant in [
        "https://evil.example/cb",
        "https://client.example/cb/x",
        "https://client.example/cb/",
        "https://client.example/CB",
        "https://CLIENT.EXAMPLE/cb",
        "https://client.example:443/cb",
        "https://client.example/cb/../cb",
        "https://client.example/cb%2FX",
        "https://client.example/cb/..%2FX",
        "https://client.example/cb/%2e%2e%2FX",
        "https://client.example/cb/..%252FX",
        "https://client.example/cb/;/../../X",
        "https://client.example/cb%0A%0D/../X",
        "http://client.example/cb",
        "https://client.example@evil.example/cb",
        "https://client.example%40evil.example/cb",
        "https://evil.example\\@client.example/cb",
        "http://localhost:80@evil.example",
    ] {
        assert_error_page(&app, &base(&client, variant), variant).await;
    }
}

// SECURITY-CASES RU-04
#[tokio::test]
async fn queries_on_redirect_uris_are_part_of_the_exact_match() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    for variant in [
        "https://client.example/cb?x=1",
        "https://client.example/cb?code=attackercode",
    ] {
        assert_error_page(&app, &base(&client, variant), variant).await;
    }
    let mut with_query = confidential_client();
    with_query.redirect_uris = vec!["https://client.example/cb?a=1".to_owned()];
    let mut with_query = app.register(with_query).await;
    for variant in [
        "https://client.example/cb?a=2",
        "https://client.example/cb?a=1&b=2",
    ] {
        assert_error_page(&app, &base(&with_query, variant), variant).await;
    }
    with_query.redirect_uri = "https://client.example/cb?a=1".to_owned();
    let code = app.obtain_code(&with_query, "openid", None).await;
    assert!(!code.is_empty());
}

// SECURITY-CASES RU-06
#[tokio::test]
async fn only_the_port_of_a_registered_loopback_uri_may_vary() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let public = app.register(public_client()).await;
    let (_, challenge) = pkce_pair();
    for variant in [
        "http://127.0.0.1:51004/cb?x=1",
        "http://127.0.0.1:51004/other",
        "http://127.0.0.2:51004/cb",
        "http://127.0.0.1.evil.example:51004/cb",
    ] {
        let mut params = base(&public, variant);
        params.push(("code_challenge", &challenge));
        params.push(("code_challenge_method", "S256"));
        assert_error_page(&app, &params, variant).await;
    }
    let https_only = app.register(confidential_client()).await;
    assert_error_page(
        &app,
        &base(&https_only, "http://127.0.0.1/cb"),
        "https-only client on loopback",
    )
    .await;
}

// SECURITY-CASES RU-07, RU-08, IV-01
#[tokio::test]
async fn unknown_clients_missing_or_repeated_redirects_and_fragments_get_an_error_page() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let c1 = app.register(confidential_client()).await;
    let mut two = confidential_client();
    two.redirect_uris
        .push("https://client.example/other".to_owned());
    let two = app.register(two).await;
    let c2 = app.register(confidential_client()).await;
    let mut no_redirect = base(&two, "");
    no_redirect.retain(|(k, _)| *k != "redirect_uri");
    assert_error_page(&app, &no_redirect, "two registered URIs, none sent").await;
    let mut unknown = base(&c1, "https://client.example/cb");
    unknown[1] = ("client_id", "no-such-client");
    assert_error_page(&app, &unknown, "unknown client").await;
    let mut injected = base(&c1, "https://client.example/cb");
    injected[1] = ("client_id", "' OR '1'='1");
    assert_error_page(&app, &injected, "SQL in client_id").await;
    assert_error_page(&app, &base(&c2, "https://client.example/cb#"), "fragment").await;
    assert_error_page(&app, &base(&c1, "https://client.example/cb#x"), "fragment").await;
    let mut doubled = base(&c1, "https://client.example/cb");
    doubled.push(("client_id", c2.id.as_str()));
    assert_error_page(&app, &doubled, "repeated client_id").await;
    let mut doubled = base(&c1, "https://client.example/cb");
    doubled.push(("redirect_uri", "https://client.example/cb"));
    assert_error_page(&app, &doubled, "repeated redirect_uri").await;
}

// SECURITY-CASES RU-09, SC-01, SC-02, AZ-01
#[tokio::test]
async fn bad_scope_or_response_type_go_back_to_the_client_with_state_and_iss() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let long_state = "S".repeat(128);
    let mut params = base(&client, "https://client.example/cb");
    params[3] = ("scope", "openid admin");
    params[4] = ("state", &long_state);
    let query = assert_redirect_error(&app, &params, "invalid_scope").await;
    assert_eq!(query["state"], long_state, "state comes back unchanged");
    for hostile in ["openid \"x", "openid a\\b", &"x".repeat(2000)] {
        let mut params = base(&client, "https://client.example/cb");
        params[3] = ("scope", hostile);
        let query = assert_redirect_error(&app, &params, "invalid_scope").await;
        assert!(
            !query["error_description"].contains(hostile),
            "input never reflected"
        );
    }
    for (response_type, error) in [
        ("token", "unsupported_response_type"),
        ("id_token token", "unsupported_response_type"),
    ] {
        let mut params = base(&client, "https://client.example/cb");
        params[0] = ("response_type", response_type);
        let response = app.authorize(&params).await;
        let location = location(&response);
        assert!(
            !location.contains("access_token") && !location.contains('#'),
            "no token in any URL"
        );
        assert_eq!(query_of(&location)["error"], error);
    }
    let mut missing = base(&client, "https://client.example/cb");
    missing.remove(0);
    assert_redirect_error(&app, &missing, "invalid_request").await;
    let mut repeated_state = base(&client, "https://client.example/cb");
    repeated_state.push(("state", "again"));
    assert_redirect_error(&app, &repeated_state, "invalid_request").await;
}

// SECURITY-CASES AZ-02
#[tokio::test]
async fn unknown_parameters_are_ignored() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let mut params = base(&client, "https://client.example/cb");
    params.push(("extra", "foobar"));
    let response = app.authorize(&params).await;
    assert_eq!(response.status(), 200, "the consent page");
}

// SECURITY-CASES AZ-03
#[tokio::test]
async fn prompt_none_without_a_session_answers_login_required_without_a_page() {
    let app = spawn_app().await;
    let client = app.register(confidential_client()).await;
    let mut params = base(&client, "https://client.example/cb");
    params.push(("prompt", "none"));
    let query = assert_redirect_error(&app, &params, "login_required").await;
    assert_eq!(query["state"], "s1");
}

#[tokio::test]
async fn a_stranger_signs_in_first_and_comes_back_to_the_request() {
    let app = spawn_app().await;
    let client = app.register(confidential_client()).await;
    app.create_user("alice", crate::helpers::PASSWORD).await;
    let response = app
        .authorize(&base(&client, "https://client.example/cb"))
        .await;
    assert_eq!(response.status(), 303);
    let to_login = location(&response);
    assert!(
        to_login.starts_with("/login?return_to=%2Foauth2%2Fauthorize%3F"),
        "{to_login}"
    );
    let return_to = query_of(&format!("http://x{to_login}"))["return_to"].clone();
    let csrf = app.login_csrf().await;
    let signed_in = app
        .post_form(
            "/login",
            &[
                ("username", "alice"),
                ("password", crate::helpers::PASSWORD),
                ("csrf_token", &csrf),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(location(&signed_in), return_to);
    let consent = app.get(&return_to).await;
    assert_eq!(consent.status(), 200);
    assert!(
        consent
            .text()
            .await
            .expect("page")
            .contains("Allow Client One?")
    );
}

// SECURITY-CASES PK-01, PK-02, IV-02
#[tokio::test]
async fn pkce_is_required_for_public_clients_and_only_s256_is_accepted() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let public = app.register(public_client()).await;
    let confidential = app.register(confidential_client()).await;
    let (_, challenge) = pkce_pair();
    assert_redirect_error(
        &app,
        &base(&public, "https://app.example/cb"),
        "invalid_request",
    )
    .await;
    let mut empty = base(&public, "https://app.example/cb");
    empty.push(("code_challenge", ""));
    empty.push(("code_challenge_method", ""));
    assert_redirect_error(&app, &empty, "invalid_request").await;
    for (client, uri) in [
        (&public, "https://app.example/cb"),
        (&confidential, "https://client.example/cb"),
    ] {
        for method in ["plain", "S512"] {
            let mut params = base(client, uri);
            params.push(("code_challenge", &challenge));
            params.push(("code_challenge_method", method));
            assert_redirect_error(&app, &params, "invalid_request").await;
        }
        let mut no_method = base(client, uri);
        no_method.push(("code_challenge", &challenge));
        assert_redirect_error(&app, &no_method, "invalid_request").await;
        for bad in [
            "a".repeat(42),
            "a".repeat(129),
            format!("{}+/=", "a".repeat(43)),
        ] {
            let mut params = base(client, uri);
            params.push(("code_challenge", &bad));
            params.push(("code_challenge_method", "S256"));
            assert_redirect_error(&app, &params, "invalid_request").await;
        }
    }
}

// SECURITY-CASES SC-03
#[tokio::test]
async fn deny_returns_access_denied_and_stores_nothing() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let page = app
        .authorize(&base(&client, "https://client.example/cb"))
        .await
        .text()
        .await
        .expect("page");
    let answered = app.consent(&page, "deny", None).await;
    assert_eq!(answered.status(), 303);
    let query = query_of(&location(&answered));
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["state"], "s1");
    assert_eq!(rows(&app).await, (0, 0), "no code, no grant");
}

// SECURITY-CASES CS-02
#[tokio::test]
async fn consent_without_a_valid_csrf_token_is_refused() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let page = app
        .authorize(&base(&client, "https://client.example/cb"))
        .await
        .text()
        .await
        .expect("page");
    let forged = page.replace(&crate::helpers::csrf_token(&page), "forged-token");
    let response = app.consent(&forged, "allow", None).await;
    assert_eq!(response.status(), 403);
    assert_eq!(rows(&app).await, (0, 0));
    let cross_site = app
        .client
        .post(app.url("/oauth2/authorize"))
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf_token", crate::helpers::csrf_token(&page).as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(cross_site.status(), 403);
}

// SECURITY-CASES CS-03, SC-03
#[tokio::test]
async fn tampered_consent_cannot_widen_scope_and_another_users_request_is_refused() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let mut params = base(&client, "https://client.example/cb");
    params[3] = ("scope", "openid profile");
    let page = app.authorize(&params).await.text().await.expect("page");

    // Another user answering alice's pending request.
    let mallory = app.new_browser();
    app.create_user("mallory", crate::helpers::PASSWORD).await;
    assert_eq!(
        mallory
            .login("mallory", crate::helpers::PASSWORD)
            .await
            .status(),
        303
    );
    let mallory_page = mallory.get_html("/account").await;
    let mallory_csrf = crate::helpers::csrf_token(&mallory_page);
    let alice_csrf = crate::helpers::csrf_token(&page);
    let stolen = page.replace(&alice_csrf, &mallory_csrf);
    assert_eq!(mallory.consent(&stolen, "allow", None).await.status(), 403);

    // Alice ticks profile off and adds email, which was never requested.
    let answered = app
        .consent(&page, "allow", Some(&["email", "offline_access"]))
        .await;
    assert_eq!(answered.status(), 303);
    let code = query_of(&location(&answered))["code"].clone();
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
    assert_eq!(
        tokens["scope"], "openid",
        "only what was requested and left ticked"
    );
}

// SECURITY-CASES CS-05
#[tokio::test]
async fn client_names_are_escaped_and_unverified_apps_are_flagged() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let mut registration = confidential_client();
    registration.name = "<script>alert(1)</script>".to_owned();
    let client = app.register(registration).await;
    let html = app
        .authorize(&base(&client, "https://client.example/cb"))
        .await
        .text()
        .await
        .expect("page");
    assert!(!html.contains("<script>alert(1)"), "escaped");
    assert!(html.contains("&#60;script&#62;"));
    assert!(html.contains("Unverified app"));
}
