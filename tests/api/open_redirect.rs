//! Review F3 (RFC 9700 §4.11.2, SECURITY-CASES RU-09, RU-10): a client any
//! signed-up user or DCR can register must not turn tessera into an open
//! redirector. Without a session, no error or logout redirect leaves
//! tessera for an unverified self-registered client; an interstitial names
//! the destination instead, and so does a signed-in user who never approved
//! the app. A user who approved it, or a verified client, gets the redirect.

use diesel::prelude::*;
use serde_json::{Value, json};
use tessera::storage::StorageError;
use tessera::storage::schema::clients;

use crate::helpers::{TestApp, TestBrowser, csrf_token, location, query_of, spawn_app_with};

const EVIL: &str = "https://evil.example/cb";
const EVIL_BYE: &str = "https://evil.example/bye";

async fn open_app() -> TestApp {
    spawn_app_with(|s| s.registration.mode = tessera::config::RegistrationMode::Open).await
}

/// A client registered anonymously through RFC 7591 DCR.
async fn dcr_client(app: &TestApp) -> String {
    let response = app
        .client
        .post(app.url("/oauth2/register"))
        .json(&json!({
            "client_name": "Evil DCR",
            "redirect_uris": [EVIL],
            "post_logout_redirect_uris": [EVIL_BYE],
            "grant_types": ["authorization_code"],
            "scope": "openid profile",
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .send()
        .await
        .expect("POST register");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("JSON");
    body["client_id"].as_str().expect("client_id").to_owned()
}

/// A client registered by a signed-up user on the developer pages (in its
/// own browser, so the test browser stays signed out).
async fn developer_client(app: &TestApp) -> String {
    let developer = app.new_browser();
    app.create_user("dev", crate::helpers::PASSWORD).await;
    assert_eq!(
        developer
            .login("dev", crate::helpers::PASSWORD)
            .await
            .status(),
        303
    );
    let csrf = csrf_token(&developer.get_html("/developer/apps/new").await);
    let created = developer
        .post_form(
            "/developer/apps/new",
            &[
                ("csrf_token", csrf.as_str()),
                ("name", "Evil Dev"),
                ("kind", "web"),
                ("redirect_uris", EVIL),
                ("scope", "openid"),
                ("scope", "profile"),
            ],
        )
        .await;
    assert_eq!(created.status(), 200);
    let html = created.text().await.expect("page");
    let marker = "<dt>Client ID</dt><dd><code>";
    let start = html.find(marker).expect("client id") + marker.len();
    let id = html[start..].split('<').next().expect("id").to_owned();
    // The developer form has no logout field: register one as the row holds it.
    let client_id = id.clone();
    app.db
        .run(move |conn| {
            diesel::update(clients::table.find(client_id))
                .set(clients::post_logout_redirect_uris.eq(EVIL_BYE))
                .execute(conn)?;
            Ok::<_, StorageError>(())
        })
        .await
        .expect("logout URI");
    id
}

async fn set_verified(app: &TestApp, client_id: &str) {
    let client_id = client_id.to_owned();
    app.db
        .run(move |conn| {
            diesel::update(clients::table.find(client_id))
                .set(clients::verified.eq(true))
                .execute(conn)?;
            Ok::<_, StorageError>(())
        })
        .await
        .expect("verify");
}

/// The response keeps the browser on tessera: no `Location`, or a relative
/// one; and if it is the interstitial, it names the app and the origin and
/// follows nothing by itself.
async fn assert_stays_on_tessera(response: reqwest::Response, app_name: &str, what: &str) {
    if let Some(location) = response.headers().get("location") {
        let location = location.to_str().expect("ASCII");
        assert!(
            location.starts_with('/') && !location.starts_with("//"),
            "{what}: redirected off tessera to {location}"
        );
        return;
    }
    let html = response.text().await.expect("page");
    assert!(html.contains(app_name), "{what}: the page names the app");
    assert!(
        html.contains("https://evil.example"),
        "{what}: the page names the destination"
    );
    let lower = html.to_ascii_lowercase();
    assert!(
        !lower.contains("http-equiv") && !lower.contains("<script"),
        "{what}: nothing automatic"
    );
}

fn params<'a>(client_id: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", EVIL),
        ("scope", "openid"),
        ("state", "s"),
    ];
    for (key, value) in extra {
        params.retain(|(k, _)| k != key);
        params.push((key, value));
    }
    params
}

/// Every error redirect the endpoint can produce before sign-in.
fn error_requests(client_id: &str) -> Vec<(Vec<(&str, &str)>, &'static str)> {
    vec![
        (
            params(client_id, &[("response_type", "x")]),
            "bad response_type",
        ),
        (params(client_id, &[("scope", "openid admin")]), "bad scope"),
        (params(client_id, &[("prompt", "none")]), "prompt=none"),
        (params(client_id, &[("prompt", "bogus")]), "bad prompt"),
        (
            params(client_id, &[("request", "eyJ.x.y")]),
            "request object",
        ),
        (params(client_id, &[("max_age", "soon")]), "bad max_age"),
        (params(client_id, &[("state", "s\u{7f}")]), "bad state"),
        (
            params(client_id, &[("id_token_hint", "not-a-token")]),
            "bad id_token_hint",
        ),
        (
            params(client_id, &[("resource", "https://other.example")]),
            "bad resource",
        ),
    ]
}

// SECURITY-CASES RU-10, RU-09
#[tokio::test]
async fn self_registered_unverified_clients_get_no_error_redirect_without_a_session() {
    let app = open_app().await;
    for (client_id, name) in [
        (dcr_client(&app).await, "Evil DCR"),
        (developer_client(&app).await, "Evil Dev"),
    ] {
        for (request, what) in error_requests(&client_id) {
            let response = app.authorize(&request).await;
            assert_stays_on_tessera(response, name, what).await;
        }
        // The interstitial is a page with a plain link to the error redirect.
        let response = app
            .authorize(&params(&client_id, &[("response_type", "x")]))
            .await;
        assert_eq!(response.status(), 400);
        let html = response.text().await.expect("page");
        assert!(html.contains("href=\"https://evil.example/cb?error=unsupported_response_type"));
        // A valid request goes to tessera's sign-in page.
        let response = app.authorize(&params(&client_id, &[])).await;
        assert_eq!(response.status(), 303);
        assert!(location(&response).starts_with("/login?"));
    }
}

// SECURITY-CASES RU-09
#[tokio::test]
async fn signed_in_users_and_verified_clients_get_the_error_redirect() {
    let app = open_app().await;
    let dcr = dcr_client(&app).await;
    let developer = developer_client(&app).await;
    let signed_in = app.new_browser();
    app.create_user("alice", crate::helpers::PASSWORD).await;
    assert_eq!(
        signed_in
            .login("alice", crate::helpers::PASSWORD)
            .await
            .status(),
        303
    );
    for client_id in [&dcr, &developer] {
        // Signed in but never approved this app: a phishing link through
        // tessera reaches signed-in users most of all, so they see the page.
        let response = signed_in
            .authorize(&params(client_id, &[("response_type", "x")]))
            .await;
        assert_eq!(response.status(), 400, "no grant: the interstitial");
        let html = response.text().await.expect("page");
        assert!(html.contains("href=\"https://evil.example/cb?error=unsupported_response_type"));
        // Once the user approved the app, its error redirects are automatic.
        let consent = signed_in.authorize(&params(client_id, &[])).await;
        assert_eq!(consent.status(), 200, "the consent page");
        let html = consent.text().await.expect("page");
        let approved = signed_in.consent(&html, "allow", None).await;
        assert_eq!(approved.status(), 303);
        assert!(location(&approved).starts_with(EVIL));
        let response = signed_in
            .authorize(&params(client_id, &[("response_type", "x")]))
            .await;
        assert_eq!(response.status(), 302, "the user vouched for this app");
        let query = query_of(&location(&response));
        assert_eq!(query["error"], "unsupported_response_type");
        assert_eq!(query["state"], "s");
    }
    for client_id in [&dcr, &developer] {
        set_verified(&app, client_id).await;
        let anonymous = TestBrowser::new(&app.address);
        for (request, what) in error_requests(client_id) {
            let response = anonymous.authorize(&request).await;
            assert_eq!(response.status(), 302, "verified: {what}");
            assert!(location(&response).starts_with(EVIL), "{what}");
        }
    }
}

// SECURITY-CASES RU-10
#[tokio::test]
async fn logout_returns_to_an_unverified_self_registered_client_only_after_a_sign_in() {
    let app = open_app().await;
    let dcr = dcr_client(&app).await;
    let developer = developer_client(&app).await;
    for (client_id, name, username) in
        [(&dcr, "Evil DCR", "alice"), (&developer, "Evil Dev", "bob")]
    {
        let query = serde_urlencoded::to_string([
            ("client_id", client_id.as_str()),
            ("post_logout_redirect_uri", EVIL_BYE),
            ("state", "z"),
        ])
        .expect("query");
        let anonymous = app.new_browser();
        let response = anonymous.get(&format!("/oauth2/logout?{query}")).await;
        assert_stays_on_tessera(response, name, "GET without a session").await;
        let response = anonymous
            .post_form(
                "/oauth2/logout",
                &[
                    ("client_id", client_id.as_str()),
                    ("post_logout_redirect_uri", EVIL_BYE),
                    ("state", "z"),
                ],
            )
            .await;
        assert_stays_on_tessera(response, name, "POST without a session").await;

        // Signed in: the confirmation, then the redirect.
        let signed_in = app.new_browser();
        app.create_user(username, crate::helpers::PASSWORD).await;
        assert_eq!(
            signed_in
                .login(username, crate::helpers::PASSWORD)
                .await
                .status(),
            303
        );
        let page = signed_in.get(&format!("/oauth2/logout?{query}")).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("page");
        let confirmed = signed_in
            .post_form(
                "/oauth2/logout",
                &[
                    ("csrf_token", csrf_token(&html).as_str()),
                    ("client_id", client_id.as_str()),
                    ("post_logout_redirect_uri", EVIL_BYE),
                    ("state", "z"),
                ],
            )
            .await;
        assert_eq!(confirmed.status(), 303);
        assert_eq!(location(&confirmed), format!("{EVIL_BYE}?state=z"));

        // Verified: the redirect as before.
        set_verified(&app, client_id).await;
        let response = app
            .new_browser()
            .get(&format!("/oauth2/logout?{query}"))
            .await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), format!("{EVIL_BYE}?state=z"));
    }
}
