//! What self-registration may not do to the registry: keep a verified badge
//! over a rewritten app (VF-01), spend an initial access token on a failed
//! registration, store control or invisible characters (IV-05), imitate
//! another app's name with look-alike letters, flood one account's apps,
//! or echo request input in an error (ER-01). Also: who may read /metrics.

use serde_json::{Value, json};
use tessera::domain::{ClientId, now};
use tessera::storage::StorageError;

use crate::helpers::{TestApp, csrf_token, pkce_pair, spawn_app, spawn_app_with};

fn open(settings: &mut tessera::config::Settings) {
    settings.registration.mode = tessera::config::RegistrationMode::Open;
}

async fn register(app: &TestApp, body: &Value, token: Option<&str>) -> (u16, Value) {
    let mut request = app.client.post(app.url("/oauth2/register")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST register");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn app_metadata(name: &str) -> Value {
    json!({
        "client_name": name,
        "redirect_uris": ["https://third.example/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile",
        "client_uri": "https://third.example",
    })
}

async fn client_count(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    app.db
        .run(|conn| {
            Ok::<_, StorageError>(
                tessera::storage::schema::clients::table
                    .count()
                    .get_result(conn)?,
            )
        })
        .await
        .expect("count")
}

async fn set_verified(app: &TestApp, client_id: &str) {
    let id = ClientId::parse(client_id).expect("client id");
    app.db
        .run(move |conn| tessera::storage::clients::set_flags(conn, &id, Some(true), None, now()))
        .await
        .expect("verified");
}

async fn is_verified(app: &TestApp, client_id: &str) -> bool {
    let id = ClientId::parse(client_id).expect("client id");
    app.db
        .run(move |conn| tessera::storage::clients::find(conn, &id))
        .await
        .expect("read")
        .expect("client exists")
        .verified
}

async fn audited(app: &TestApp, client_id: &str, event: &str) -> bool {
    let client_id = client_id.to_owned();
    app.db
        .run(move |conn| tessera::storage::audit::list(conn, 0, None, Some(&client_id), 100))
        .await
        .expect("audit")
        .iter()
        .any(|row| row.event == event)
}

/// The consent page `client_id` shows a signed-in user.
async fn consent_page(app: &TestApp, client_id: &str) -> String {
    let (_, challenge) = pkce_pair();
    app.authorize(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", "https://third.example/cb"),
        ("scope", "openid"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ])
    .await
    .text()
    .await
    .expect("page")
}

// SECURITY-CASES VF-01
#[tokio::test]
async fn a_verified_app_that_rewrites_its_name_or_redirect_uris_loses_the_badge() {
    let app = spawn_app_with(open).await;
    app.signed_in("alice").await;
    let (status, body) = register(&app, &app_metadata("Notes"), None).await;
    assert_eq!(status, 201, "{body}");
    let id = body["client_id"].as_str().expect("id").to_owned();
    let token = body["registration_access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    set_verified(&app, &id).await;
    assert!(!consent_page(&app, &id).await.contains("Unverified app"));

    let manage = |metadata: Value| {
        let request = app
            .client
            .put(app.url(&format!("/oauth2/register/{id}")))
            .bearer_auth(&token)
            .json(&metadata);
        async move { request.send().await.expect("PUT").status().as_u16() }
    };
    // RFC 7592 §2.2: the body may not name another client.
    let mut elsewhere = app_metadata("Notes");
    elsewhere["client_id"] = json!("some-other-client");
    assert_eq!(manage(elsewhere).await, 400);
    // The same metadata again changes nothing users see: the badge stays.
    assert_eq!(manage(app_metadata("Notes")).await, 200);
    assert!(is_verified(&app, &id).await, "an unchanged PUT keeps it");

    let mut renamed = app_metadata("Account Security Center");
    renamed["client_uri"] = json!("https://www.google.com");
    assert_eq!(manage(renamed).await, 200);
    assert!(!is_verified(&app, &id).await);
    assert!(audited(&app, &id, "client.verification_cleared").await);
    assert!(
        consent_page(&app, &id).await.contains("Unverified app"),
        "the consent page warns again"
    );

    // Redirect URIs count too (where codes go), and so does every display link.
    for (key, value) in [
        (
            "redirect_uris",
            json!(["https://third.example/cb", "https://other.example/cb"]),
        ),
        ("logo_uri", json!("https://third.example/logo.png")),
        ("policy_uri", json!("https://third.example/privacy")),
        ("tos_uri", json!("https://third.example/terms")),
        (
            "post_logout_redirect_uris",
            json!(["https://third.example/bye"]),
        ),
    ] {
        set_verified(&app, &id).await;
        let mut changed = app_metadata("Account Security Center");
        changed["client_uri"] = json!("https://www.google.com");
        changed[key] = value;
        assert_eq!(manage(changed).await, 200, "{key}");
        assert!(!is_verified(&app, &id).await, "{key} clears verification");
    }
}

// SECURITY-CASES VF-01: the developer pages go through the same rule.
#[tokio::test]
async fn a_verified_app_edited_on_the_developer_pages_loses_the_badge() {
    let app = spawn_app().await;
    app.signed_in("dev").await;
    let csrf = csrf_token(&app.get_html("/developer/apps/new").await);
    let form = |name: &'static str| {
        vec![
            ("csrf_token", csrf.clone()),
            ("name", name.to_owned()),
            ("kind", "web".to_owned()),
            ("redirect_uris", "https://dev.example/cb".to_owned()),
            ("scope", "openid".to_owned()),
        ]
    };
    let created = app
        .client
        .post(app.url("/developer/apps/new"))
        .form(&form("Dev App"))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 200);
    let html = created.text().await.expect("page");
    let marker = "<dt>Client ID</dt><dd><code>";
    let start = html.find(marker).expect("client id") + marker.len();
    let id = html[start..].split('<').next().expect("id").to_owned();
    set_verified(&app, &id).await;
    let edited = app
        .client
        .post(app.url(&format!("/developer/apps/{id}")))
        .form(&form("Google Drive"))
        .send()
        .await
        .expect("POST");
    assert_eq!(edited.status(), 303);
    assert!(!is_verified(&app, &id).await);
    assert!(audited(&app, &id, "client.verification_cleared").await);
}

// Review F12: an initial access token pays for a stored client only.
#[tokio::test]
async fn a_failed_registration_does_not_spend_the_initial_access_token() {
    let app = spawn_app().await;
    let token = app
        .db
        .run(|conn| tessera::oauth::registration::create_initial_token(conn, 1, 3600, now()))
        .await
        .expect("token");
    let mut bad = app_metadata("Notes");
    bad["redirect_uris"] = json!(["https://third.example/cb#fragment"]);
    assert_eq!(register(&app, &bad, Some(token.expose())).await.0, 400);
    let mut unknown_scope = app_metadata("Notes");
    unknown_scope["scope"] = json!("openid admin");
    assert_eq!(
        register(&app, &unknown_scope, Some(token.expose())).await.0,
        400
    );
    let (status, body) = register(&app, &app_metadata("Notes"), Some(token.expose())).await;
    assert_eq!(status, 201, "the one use is still there: {body}");
    assert_eq!(
        register(&app, &app_metadata("Notes"), Some(token.expose()))
            .await
            .0,
        401,
        "and now it is spent"
    );
}

// SECURITY-CASES IV-05, review F11: no stored string holds a control
// character, on either backend (PostgreSQL refuses NUL in text: a 500 there).
#[tokio::test]
async fn control_characters_in_any_registered_string_are_refused_and_nothing_is_stored() {
    let app = spawn_app_with(|s| {
        open(s);
        s.registration.requests_per_ip_per_hour = 1000;
    })
    .await;
    let before = client_count(&app).await;
    for bad in ["\u{0}", "\u{1b}[31m", "\r\n", "\u{7f}", "\u{85}"] {
        for (key, value) in [
            ("client_name", json!(format!("Notes{bad}"))),
            ("client_uri", json!(format!("https://third.example/{bad}"))),
            (
                "logo_uri",
                json!(format!("https://third.example/l{bad}.png")),
            ),
            ("policy_uri", json!(format!("https://third.example/p{bad}"))),
            ("tos_uri", json!(format!("https://third.example/t{bad}"))),
            (
                "redirect_uris",
                json!([format!("https://third.example/cb{bad}")]),
            ),
            (
                "post_logout_redirect_uris",
                json!([format!("https://third.example/bye{bad}")]),
            ),
            ("scope", json!(format!("openid{bad}profile"))),
            ("grant_types", json!([format!("authorization_code{bad}")])),
            ("token_endpoint_auth_method", json!(format!("none{bad}"))),
        ] {
            let mut body = app_metadata("Notes");
            body[key] = value;
            let (status, answer) = register(&app, &body, None).await;
            assert_eq!(status, 400, "{key} with {bad:?}: {answer}");
            assert!(
                matches!(
                    answer["error"].as_str(),
                    Some("invalid_client_metadata" | "invalid_redirect_uri")
                ),
                "{key}: {answer}"
            );
        }
    }
    assert_eq!(client_count(&app).await, before, "nothing half-written");

    // The developer pages refuse them the same way, with a page, not a 500.
    app.signed_in("dev").await;
    let csrf = csrf_token(&app.get_html("/developer/apps/new").await);
    for (field, value) in [
        ("name", "Dev\u{0}App"),
        ("homepage_uri", "https://dev.example/\u{0}"),
        ("logo_uri", "https://dev.example/\u{1}.png"),
        ("description", "nice\u{0}app"),
        ("redirect_uris", "https://dev.example/cb\u{0}"),
    ] {
        let mut form = vec![
            ("csrf_token", csrf.as_str()),
            ("name", "Dev App"),
            ("kind", "web"),
            ("redirect_uris", "https://dev.example/cb"),
            ("scope", "openid"),
        ];
        form.retain(|(key, _)| *key != field);
        form.push((field, value));
        let response = app.post_form("/developer/apps/new", &form).await;
        assert_eq!(response.status(), 400, "{field}");
    }
    assert_eq!(client_count(&app).await, before);
}

// Also seen: names that imitate others with invisible or look-alike letters.
#[tokio::test]
async fn names_with_invisible_or_mixed_script_letters_are_refused() {
    let app = spawn_app_with(open).await;
    for name in [
        "Goo\u{200b}gle",
        "Google\u{200d}",
        "\u{feff}Google",
        "elgooG\u{202e}",
        "G\u{043e}\u{043e}gle",
        "Pay\u{0440}al",
        "Micr\u{03bf}soft",
        "\u{3164}",
        "G\u{0338}oogle",
        "tessera Security Center",
        "Official TESSERA login",
    ] {
        let (status, answer) = register(&app, &app_metadata(name), None).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{name:?}"
        );
    }
    let (status, body) = register(&app, &app_metadata("  Заметки   Pro "), None).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["client_name"], "Заметки Pro", "white space is folded");
}

// Review F9: one account cannot flood the registry.
#[tokio::test]
async fn one_account_registers_at_most_the_configured_number_of_apps() {
    let app = spawn_app_with(|s| s.registration.max_apps_per_user = 3).await;
    app.signed_in("dev").await;
    let csrf = csrf_token(&app.get_html("/developer/apps/new").await);
    let before = client_count(&app).await;
    let mut posts = Vec::new();
    for i in 0..12 {
        let name = format!("App {i}");
        let form = vec![
            ("csrf_token", csrf.clone()),
            ("name", name),
            ("kind", "web".to_owned()),
            ("redirect_uris", "https://dev.example/cb".to_owned()),
            ("scope", "openid".to_owned()),
        ];
        let request = app.client.post(app.url("/developer/apps/new")).form(&form);
        posts.push(async move { request.send().await.expect("POST") });
    }
    let answers = futures_util::future::join_all(posts).await;
    let created = answers.iter().filter(|r| r.status() == 200).count();
    assert_eq!(created, 3, "a parallel burst stops at the limit");
    assert_eq!(client_count(&app).await, before + 3);
    let refused = app
        .post_form(
            "/developer/apps/new",
            &[
                ("csrf_token", &csrf),
                ("name", "One more"),
                ("kind", "web"),
                ("redirect_uris", "https://dev.example/cb"),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .expect("page")
            .contains("limit of 3 apps")
    );
}

// SECURITY-CASES ER-01: registration errors never repeat what was sent.
#[tokio::test]
async fn registration_errors_never_echo_request_input() {
    let app = spawn_app_with(open).await;
    let marker = "EVIL-visit-evil.example";
    for (key, value) in [
        (
            "redirect_uris",
            json!([format!("https://x.example/{marker}#x")]),
        ),
        (
            "redirect_uris",
            json!([format!("http://{marker}.example/cb")]),
        ),
        (
            "post_logout_redirect_uris",
            json!([format!("https://x.example/{marker}#x")]),
        ),
        ("scope", json!(format!("openid {marker}"))),
        ("grant_types", json!([marker])),
        ("token_endpoint_auth_method", json!(marker)),
        ("response_types", json!([marker])),
        ("client_uri", json!(marker)),
        ("client_name", json!(format!("{marker}\u{200b}"))),
    ] {
        let mut body = app_metadata("Notes");
        body[key] = value;
        let response = app
            .client
            .post(app.url("/oauth2/register"))
            .json(&body)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 400, "{key}");
        let text = response.text().await.expect("body");
        assert!(!text.contains(marker), "{key} echoed: {text}");
    }
}

// Also seen: /metrics is not for the public.
#[tokio::test]
async fn metrics_on_the_main_listener_answer_only_loopback_and_listed_addresses() {
    let app = spawn_app_with(|s| {
        s.server.trusted_proxies = vec!["127.0.0.1".parse().expect("IP")];
        s.server.metrics_allowed_addresses = vec!["198.51.100.7".parse().expect("IP")];
    })
    .await;
    let scrape = |forwarded: Option<&'static str>, local: &'static str| {
        let client = reqwest::Client::builder()
            .local_address(Some(local.parse().expect("IP")))
            .build()
            .expect("client");
        let mut request = client.get(app.url("/metrics"));
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        async move { request.send().await.expect("GET").status().as_u16() }
    };
    assert_eq!(scrape(None, "127.0.0.1").await, 200, "loopback");
    assert_eq!(
        scrape(Some("203.0.113.9"), "127.0.0.1").await,
        404,
        "a client outside, through the trusted proxy"
    );
    assert_eq!(
        scrape(Some("198.51.100.7"), "127.0.0.1").await,
        200,
        "a listed address, through the trusted proxy"
    );
    assert_eq!(
        scrape(Some("127.0.0.1"), "127.0.0.2").await,
        404,
        "forwarded by a proxy nobody declared: the peer says nothing"
    );
    let defaults = tessera::config::Settings::load(&tessera::config::ConfigSources::default())
        .expect("defaults");
    assert!(defaults.server.metrics_allowed_addresses.is_empty());
}
