//! SECURITY-CASES ER-01, IV-04, IV-05 as a class: whatever attacker text a
//! request carries in parameter names or in values tessera has no reason to
//! repeat, no response (body, `Location`, any header) carries it back, on
//! any endpoint, and nothing answers 5xx. The OAuth-required echoes
//! (`state` to the client, typed form values refilled into their own
//! fields) are not what this sends.

use crate::helpers::{PASSWORD, TestBrowser, confidential_client, csrf_token, spawn_app_with};

const MARK: &str = "ZQXJ";
const TEXT: &str = "ZQXJ<b>visit evil.example</b>";

async fn assert_clean(response: reqwest::Response, what: &str) {
    let status = response.status().as_u16();
    assert!(status < 500, "{what}: {status}");
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).to_string();
        assert!(
            !value.contains(MARK) && !value.contains("%3Cb%3E"),
            "{what}: header {name} repeats request text: {value}"
        );
    }
    let body = response.text().await.unwrap_or_default();
    assert!(
        !body.contains(MARK),
        "{what}: body repeats request text: {body}"
    );
}

/// Query strings and forms that carry the text in names (repeated and
/// unknown) and in values that are never to be repeated.
fn hostile(base: &[(&str, &str)]) -> Vec<Vec<(String, String)>> {
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let mut variants = Vec::new();
    let mut repeated_name = owned(base);
    repeated_name.push((TEXT.to_owned(), "1".to_owned()));
    repeated_name.push((TEXT.to_owned(), "2".to_owned()));
    variants.push(repeated_name);
    let mut unknown = owned(base);
    unknown.push((format!("{TEXT}_x"), TEXT.to_owned()));
    variants.push(unknown);
    for key in [
        "response_type",
        "scope",
        "prompt",
        "max_age",
        "code_challenge_method",
        "response_mode",
        "resource",
        "grant_type",
        "code",
        "refresh_token",
        "token_type_hint",
        "id_token_hint",
        "request_uri",
        "redirect_uri",
        "client_id",
    ] {
        let mut bad = owned(base);
        bad.retain(|(k, _)| k != key);
        bad.push((key.to_owned(), TEXT.to_owned()));
        variants.push(bad.clone());
        // The same key twice, once with the text.
        bad.push((key.to_owned(), "x".to_owned()));
        variants.push(bad);
    }
    variants
}

fn encode(pairs: &[(String, String)]) -> String {
    serde_urlencoded::to_string(pairs).expect("encodable")
}

async fn sweep_front_channel(browser: &TestBrowser, client_id: &str, who: &str) {
    let base = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", "https://client.example/cb"),
        ("scope", "openid"),
        ("state", "s"),
    ];
    for variant in hostile(&base) {
        let query = encode(&variant);
        let response = browser.get(&format!("/oauth2/authorize?{query}")).await;
        assert_clean(response, &format!("{who} GET /oauth2/authorize?{query}")).await;
        let response = browser.get(&format!("/oauth2/logout?{query}")).await;
        assert_clean(response, &format!("{who} GET /oauth2/logout?{query}")).await;
    }
    for path in [
        "/login",
        "/signup",
        "/account",
        "/account/apps",
        "/developer/apps",
    ] {
        let query = encode(&[
            (TEXT.to_owned(), TEXT.to_owned()),
            ("return_to".to_owned(), format!("https://{MARK}.example/")),
        ]);
        let response = browser.get(&format!("{path}?{query}")).await;
        assert_clean(response, &format!("{who} GET {path}")).await;
    }
    let response = browser.get(&format!("/{MARK}/x?{MARK}=1")).await;
    assert_clean(response, &format!("{who} unknown path")).await;
    let response = browser.get(&format!("/developer/apps/{MARK}")).await;
    assert_clean(response, &format!("{who} unknown app")).await;
}

#[tokio::test]
async fn no_endpoint_repeats_attacker_text_from_names_or_values() {
    let app = spawn_app_with(|s| {
        s.registration.mode = tessera::config::RegistrationMode::Open;
        s.registration.requests_per_ip_per_hour = 10_000;
        s.throttle.parked_requests_per_ip = 10_000;
    })
    .await;
    let client = app.register(confidential_client()).await;

    // Front channel, without and with a session.
    let anonymous = app.new_browser();
    sweep_front_channel(&anonymous, &client.id, "anonymous").await;
    app.create_user("alice", PASSWORD).await;
    let signed_in = app.new_browser();
    assert_eq!(signed_in.login("alice", PASSWORD).await.status(), 303);
    sweep_front_channel(&signed_in, &client.id, "signed in").await;

    // Forms posted by a signed-in browser, with a valid CSRF token.
    let csrf = csrf_token(&signed_in.get_html("/developer/apps/new").await);
    for path in [
        "/oauth2/authorize",
        "/developer/apps/new",
        "/account/apps",
        "/logout",
    ] {
        let form = vec![
            ("csrf_token".to_owned(), csrf.clone()),
            (TEXT.to_owned(), TEXT.to_owned()),
            (TEXT.to_owned(), TEXT.to_owned()),
            ("request".to_owned(), TEXT.to_owned()),
            ("decision".to_owned(), TEXT.to_owned()),
            ("grant".to_owned(), TEXT.to_owned()),
        ];
        let response = signed_in
            .client
            .post(signed_in.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&form))
            .send()
            .await
            .expect("POST");
        assert_clean(response, &format!("POST {path}")).await;
    }
    // Sign-in and sign-up forms (the typed username is refilled into its own
    // field by design; the text goes in names and in other fields here).
    let fresh = app.new_browser();
    let csrf = fresh.login_csrf().await;
    for path in ["/login", "/signup"] {
        let form = vec![
            ("csrf_token".to_owned(), csrf.clone()),
            ("username".to_owned(), "bob".to_owned()),
            ("password".to_owned(), TEXT.to_owned()),
            ("password_confirmation".to_owned(), "other".to_owned()),
            (TEXT.to_owned(), TEXT.to_owned()),
            ("return_to".to_owned(), format!("//{MARK}.example")),
        ];
        let response = fresh
            .client
            .post(fresh.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&form))
            .send()
            .await
            .expect("POST");
        assert_clean(response, &format!("POST {path}")).await;
    }

    // Back channel: token, introspection, revocation, with and without
    // valid client authentication, and odd content types.
    let secret = client.secret.clone().expect("secret");
    for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        for variant in hostile(&[
            ("grant_type", "authorization_code"),
            ("code", "abc"),
            ("token", "abc"),
        ]) {
            for authenticated in [true, false] {
                let mut request = app
                    .client
                    .post(app.url(path))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(encode(&variant));
                if authenticated {
                    request = request.basic_auth(&client.id, Some(&secret));
                }
                let response = request.send().await.expect("POST");
                assert_clean(response, &format!("POST {path} {variant:?}")).await;
            }
        }
        for content_type in [TEXT, "text/plain", "application/json"] {
            let response = app
                .client
                .post(app.url(path))
                .basic_auth(&client.id, Some(&secret))
                .header("content-type", content_type)
                .body(format!("{TEXT}={TEXT}"))
                .send()
                .await
                .expect("POST");
            assert_clean(response, &format!("POST {path} as {content_type}")).await;
        }
        let response = app
            .client
            .post(app.url(path))
            .basic_auth(TEXT, Some(TEXT))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("POST");
        assert_clean(response, &format!("POST {path} Basic with the text")).await;
    }
    let response = app
        .client
        .get(app.url("/oauth2/userinfo"))
        .header("authorization", format!("Bearer {MARK}.{MARK}.{MARK}"))
        .send()
        .await
        .expect("GET");
    assert_clean(response, "userinfo with a made-up token").await;

    // Registration and its management.
    let response = app
        .client
        .post(app.url("/oauth2/register"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"client_name":"x","redirect_uris":["{MARK}"],"{MARK}":"{MARK}","grant_types":["{MARK}"]}}"#
        ))
        .send()
        .await
        .expect("POST");
    assert_clean(response, "POST /oauth2/register").await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(&format!("/oauth2/register/{MARK}")))
            .bearer_auth(MARK)
            .json(&serde_json::json!({ "client_name": MARK }))
            .send()
            .await
            .expect("request");
        assert_clean(response, &format!("{method} /oauth2/register/…")).await;
    }
}
