//! The outside review's findings at the authorization endpoint (issue 12):
//! the request survives sign-in by reference with its `prompt` (F7, F13),
//! consent answers are re-checked against the registration (F8), pending
//! rows are bounded (F9), nothing of the request is echoed (F10, ER-01),
//! `id_token_hint` (F15), request objects, and consent naming the API (F2).

use diesel::prelude::*;
use serde_json::Value;
use tessera::config::{ApiDefinition, ScopeDefinition};
use tessera::storage::StorageError;
use tessera::storage::schema::{authorization_codes, authorization_resumes, clients};

use crate::helpers::{
    PASSWORD, TestApp, TestBrowser, TestClient, confidential_client, csrf_token, location,
    query_of, spawn_app, spawn_app_with,
};

fn request<'a>(client: &'a TestClient, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "openid profile"),
        ("state", "s1"),
    ];
    for (key, value) in extra {
        params.retain(|(k, _)| k != key);
        params.push((key, value));
    }
    params
}

/// Follows `/login?return_to=..` by signing in as `username` through the
/// form; returns the `return_to` the sign-in came back to.
async fn sign_in_through(browser: &TestBrowser, to_login: &str, username: &str) -> String {
    assert!(to_login.starts_with("/login?"), "{to_login}");
    let return_to = query_of(&format!("http://x{to_login}"))["return_to"].clone();
    let page = browser.get_html(to_login).await;
    let signed_in = browser
        .post_form(
            "/login",
            &[
                ("username", username),
                ("password", PASSWORD),
                ("csrf_token", &csrf_token(&page)),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(location(&signed_in), return_to);
    return_to
}

fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("JSON")
}

async fn count(app: &TestApp, table: &'static str) -> i64 {
    use tessera::storage::schema::pending_authorizations;
    app.db
        .run(move |conn| {
            Ok::<_, StorageError>(match table {
                "resumes" => authorization_resumes::table.count().get_result(conn)?,
                "pending" => pending_authorizations::table.count().get_result(conn)?,
                _ => authorization_codes::table.count().get_result(conn)?,
            })
        })
        .await
        .expect("count")
}

/// Signs `username` in on a browser that may hold another session.
async fn switch_to(browser: &TestBrowser, username: &str) {
    let page = browser.get_html("/login?reauth=1").await;
    let response = browser
        .post_form(
            "/login",
            &[
                ("username", username),
                ("password", PASSWORD),
                ("csrf_token", &csrf_token(&page)),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
}

/// The `href` of the link whose text starts with `label`.
fn link(html: &str, label: &str) -> String {
    let end = html.find(label).expect(label);
    let start = html[..end].rfind("href=\"").expect("href") + 6;
    let href = &html[start..end];
    href[..href.find('"').expect("quote")]
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

// Review F13: state and nonce at their limits survive the sign-in.
#[tokio::test]
async fn long_state_and_nonce_survive_the_sign_in_round_trip() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let client = app.register(confidential_client()).await;
    let state = "S".repeat(1024);
    let nonce = "N".repeat(1024);
    let response = app
        .authorize(&request(&client, &[("state", &state), ("nonce", &nonce)]))
        .await;
    assert_eq!(response.status(), 303);
    let to_login = location(&response);
    assert!(to_login.len() < 200, "the request travels by reference");
    let return_to = sign_in_through(&app, &to_login, "alice").await;
    let consent = app.get(&return_to).await;
    assert_eq!(consent.status(), 200);
    let answered = app
        .consent(&consent.text().await.expect("page"), "allow", None)
        .await;
    let query = query_of(&location(&answered));
    assert_eq!(query["state"], state, "the same state");
    let tokens: Value = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &query["code"]),
                ("redirect_uri", &client.redirect_uri),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let id_token = tokens["id_token"].as_str().expect("ID token");
    assert_eq!(claims(id_token)["nonce"], nonce.as_str());
}

// Review F7: prompt=consent is kept across the sign-in, so a remembered
// grant does not skip the consent page.
#[tokio::test]
async fn prompt_consent_survives_the_sign_in() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let _ = app.obtain_code(&client, "openid profile", None).await;
    for prompt in ["consent", "login consent"] {
        let stranger = app.new_browser();
        let response = stranger
            .authorize(&request(&client, &[("prompt", prompt)]))
            .await;
        assert_eq!(response.status(), 303, "{prompt}");
        let return_to = sign_in_through(&stranger, &location(&response), "alice").await;
        let back = stranger.get(&return_to).await;
        assert_eq!(back.status(), 200, "{prompt}: the consent page, not a code");
        let html = back.text().await.expect("page");
        assert!(html.contains("Allow Client One?"), "{prompt}");
    }
    // Signed in already: prompt=login consent asks for the password, then
    // consent, without looping.
    let response = app
        .authorize(&request(&client, &[("prompt", "login consent")]))
        .await;
    let to_login = location(&response);
    assert!(to_login.contains("reauth=1"), "{to_login}");
    let return_to = sign_in_through(&app, &to_login, "alice").await;
    let back = app.get(&return_to).await;
    assert_eq!(back.status(), 200, "consent after the fresh sign-in");
}

// Review F13: a parked request that asked for a fresh sign-in gets one; the
// old session cannot just come back to it.
#[tokio::test]
async fn a_resumed_prompt_login_or_max_age_request_needs_a_new_sign_in() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let _ = app.obtain_code(&client, "openid profile", None).await;
    for extra in [("prompt", "login"), ("max_age", "60")] {
        // A sign-in older than any max_age.
        app.db
            .run(|conn| {
                diesel::update(tessera::storage::schema::sessions::table)
                    .set(tessera::storage::schema::sessions::auth_time.eq(0_i64))
                    .execute(conn)?;
                Ok::<_, StorageError>(())
            })
            .await
            .expect("age the sign-in");
        let response = app.authorize(&request(&client, &[extra])).await;
        let to_login = location(&response);
        assert!(to_login.starts_with("/login?"), "{extra:?}: {to_login}");
        let return_to = query_of(&format!("http://x{to_login}"))["return_to"].clone();
        let skipped = app.get(&return_to).await;
        assert_eq!(skipped.status(), 303, "{extra:?}");
        assert!(
            location(&skipped).starts_with("/login?"),
            "{extra:?}: no code without signing in again"
        );
        let return_to = sign_in_through(&app, &location(&skipped), "alice").await;
        let back = app.get(&return_to).await;
        assert_eq!(back.status(), 302, "{extra:?}: the code");
        assert!(query_of(&location(&back)).contains_key("code"));
    }
}

// Review F13: one address cannot park unbounded rows.
#[tokio::test]
async fn parked_requests_are_bounded_per_address() {
    let app = spawn_app_with(|s| s.throttle.parked_requests_per_ip = 60).await;
    let client = app.register(confidential_client()).await;
    let mut statuses = Vec::new();
    for _ in 0..70 {
        statuses.push(app.authorize(&request(&client, &[])).await.status());
    }
    assert!(statuses[..60].iter().all(|s| *s == 303));
    assert!(statuses[60..].iter().all(|s| *s == 429), "{statuses:?}");
    assert!(count(&app, "resumes").await <= 60);
}

// Review F9: 200 authorization requests leave a bounded number of pending
// consents, and the newest page still works.
#[tokio::test]
async fn pending_consents_are_bounded_per_user() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let mut last = String::new();
    for _ in 0..200 {
        let response = app.authorize(&request(&client, &[])).await;
        assert_eq!(response.status(), 200);
        last = response.text().await.expect("page");
    }
    let pending = count(&app, "pending").await;
    assert!(pending <= 20, "{pending} pending rows");
    let answered = app.consent(&last, "allow", None).await;
    assert!(query_of(&location(&answered)).contains_key("code"));
}

async fn update_client(app: &TestApp, client: &TestClient, change: &'static str) {
    let id = client.id.clone();
    app.db
        .run(move |conn| {
            let target = clients::table.find(id);
            match change {
                "redirect" => diesel::update(target)
                    .set(clients::redirect_uris.eq("https://client.example/other"))
                    .execute(conn)?,
                "scope" => diesel::update(target)
                    .set(clients::allowed_scopes.eq("openid"))
                    .execute(conn)?,
                "disabled" => diesel::update(target)
                    .set(clients::disabled.eq(true))
                    .execute(conn)?,
                _ => diesel::update(target)
                    .set(clients::grant_types.eq("client_credentials"))
                    .execute(conn)?,
            };
            Ok::<_, StorageError>(())
        })
        .await
        .expect("update client");
}

// Review F8: the consent answer is checked against the registration as it
// is now, not as it was when the page was shown.
#[tokio::test]
async fn a_consent_answer_is_rechecked_against_the_current_registration() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    for (change, expected) in [
        ("redirect", None),
        ("disabled", None),
        ("scope", Some("invalid_scope")),
        ("grant", Some("unauthorized_client")),
    ] {
        let client = app.register(confidential_client()).await;
        let page = app
            .authorize(&request(&client, &[]))
            .await
            .text()
            .await
            .expect("page");
        update_client(&app, &client, change).await;
        let answered = app.consent(&page, "allow", None).await;
        match expected {
            None => {
                assert_eq!(answered.status(), 400, "{change}: an error page");
                assert!(answered.headers().get("location").is_none(), "{change}");
            }
            Some(error) => {
                assert_eq!(answered.status(), 303, "{change}");
                let query = query_of(&location(&answered));
                assert_eq!(query["error"], error, "{change}");
                assert_eq!(query["state"], "s1");
                assert!(!query.contains_key("code"));
            }
        }
    }
    assert_eq!(count(&app, "codes").await, 0);
}

const ATTACKER: &str = "ATTACKER<b>TEXT</b>";

/// Neither the body nor an `error_description` holds the attacker's text.
async fn assert_not_echoed(response: reqwest::Response, what: &str) {
    if let Some(location) = response.headers().get("location") {
        let location = location.to_str().expect("ASCII").to_owned();
        if location.starts_with("http") {
            let query = query_of(&location);
            let description = query.get("error_description").cloned().unwrap_or_default();
            assert!(!description.contains("ATTACKER"), "{what}: {description}");
        }
    }
    let body = response.text().await.expect("body");
    assert!(
        !body.contains("ATTACKER") && !body.contains("attacker"),
        "{what}: {body}"
    );
}

// SECURITY-CASES ER-01 (review F10)
#[tokio::test]
async fn request_input_never_reaches_error_descriptions_or_pages() {
    let app = spawn_app().await;
    let mut registration = confidential_client();
    registration.post_logout_redirect_uris = vec!["https://client.example/bye".to_owned()];
    let client = app.register(registration).await;
    let anonymous = app.new_browser();
    let signed_in = app.new_browser();
    app.create_user("ann", PASSWORD).await;
    assert_eq!(signed_in.login("ann", PASSWORD).await.status(), 303);
    let encoded = serde_urlencoded::to_string([(ATTACKER, ATTACKER)]).expect("encode");
    let base = serde_urlencoded::to_string(request(&client, &[])).expect("encode");
    for (query, what) in [
        (
            format!("{base}&{encoded}&{encoded}"),
            "repeated unknown parameter",
        ),
        (format!("{base}&scope={ATTACKER}"), "repeated scope"),
        (format!("{base}&client_id={ATTACKER}"), "repeated client_id"),
        (
            format!("{base}&redirect_uri={ATTACKER}"),
            "repeated redirect_uri",
        ),
        (
            format!("client_id={ATTACKER}&{encoded}&{encoded}"),
            "unknown client",
        ),
        (format!("{base}&prompt={ATTACKER}"), "repeated prompt"),
    ] {
        for browser in [&anonymous, &signed_in] {
            let response = browser.get(&format!("/oauth2/authorize?{query}")).await;
            assert_not_echoed(response, what).await;
        }
    }
    for query in [
        format!("{encoded}&{encoded}"),
        format!("client_id={}&{encoded}&{encoded}", client.id),
        format!("client_id={ATTACKER}"),
        format!(
            "client_id={}&post_logout_redirect_uri={ATTACKER}",
            client.id
        ),
        format!("id_token_hint={ATTACKER}"),
    ] {
        let response = app.get(&format!("/oauth2/logout?{query}")).await;
        assert_eq!(response.status(), 400);
        assert_not_echoed(response, &query).await;
    }
}

// OIDC Core §6: request objects are refused, not ignored.
#[tokio::test]
async fn request_objects_are_refused_not_ignored() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    for (key, value, error) in [
        (
            "request",
            "eyJhbGciOiJub25lIn0.e30.",
            "request_not_supported",
        ),
        (
            "request_uri",
            "urn:ietf:params:oauth:request_uri:x",
            "request_uri_not_supported",
        ),
    ] {
        let response = app.authorize(&request(&client, &[(key, value)])).await;
        assert_eq!(response.status(), 302, "{key}");
        let query = query_of(&location(&response));
        assert_eq!(query["error"], error);
        assert_eq!(query["state"], "s1");
    }
}

async fn id_token_of(app: &TestApp, client: &TestClient) -> String {
    let code = app.obtain_code(client, "openid profile", None).await;
    let body: Value = app
        .token(
            client,
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
    body["id_token"].as_str().expect("ID token").to_owned()
}

// Review F15: id_token_hint names the account the client expects.
#[tokio::test]
async fn an_id_token_hint_for_another_account_is_not_ignored() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    app.create_user("bob", PASSWORD).await;
    let client = app.register(confidential_client()).await;
    let alice_hint = id_token_of(&app, &client).await;
    // The hint for the signed-in user: the flow goes on as usual.
    let same = app
        .authorize(&request(
            &client,
            &[("id_token_hint", &alice_hint), ("prompt", "none")],
        ))
        .await;
    assert!(query_of(&location(&same)).contains_key("code"));

    // bob signs in on the same browser and has approved the client too.
    switch_to(&app, "bob").await;
    let _ = app.obtain_code(&client, "openid profile", None).await;
    let silent = app
        .authorize(&request(
            &client,
            &[("id_token_hint", &alice_hint), ("prompt", "none")],
        ))
        .await;
    assert_eq!(silent.status(), 302);
    let query = query_of(&location(&silent));
    assert_eq!(query["error"], "login_required");
    assert!(!query.contains_key("code"));

    let choice = app
        .authorize(&request(&client, &[("id_token_hint", &alice_hint)]))
        .await;
    assert_eq!(choice.status(), 200, "a page, not a code for bob");
    let html = choice.text().await.expect("page");
    assert!(
        html.contains("You are signed in as <strong>bob</strong>"),
        "{html}"
    );
    assert!(html.contains("Client One asked for another account"));
    let switch = link(&html, ">Use another account");
    assert!(
        switch.starts_with("/login?") && switch.contains("reauth=1"),
        "{switch}"
    );
    let continue_as_bob = link(&html, ">Continue as bob");
    let continued = app.get(&continue_as_bob).await;
    assert_eq!(continued.status(), 302, "bob's remembered grant");
    assert!(query_of(&location(&continued)).contains_key("code"));

    // "Use another account": sign in as alice and come back.
    let again = app
        .authorize(&request(&client, &[("id_token_hint", &alice_hint)]))
        .await
        .text()
        .await
        .expect("page");
    let switch = link(&again, ">Use another account");
    let return_to = sign_in_through(&app, &switch, "alice").await;
    let back = app.get(&return_to).await;
    assert_eq!(back.status(), 302, "alice's remembered grant");
    assert!(query_of(&location(&back)).contains_key("code"));

    // A hint tessera did not sign.
    let forged = app
        .authorize(&request(
            &client,
            &[("id_token_hint", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")],
        ))
        .await;
    assert_eq!(query_of(&location(&forged))["error"], "invalid_request");
    // A hint issued to another client.
    let other = app.register(confidential_client()).await;
    let foreign = app
        .authorize(&request(&other, &[("id_token_hint", &alice_hint)]))
        .await;
    assert_eq!(query_of(&location(&foreign))["error"], "invalid_request");
}

// Review F2: the consent page names the API the tokens will be for.
#[tokio::test]
async fn the_consent_page_names_the_requested_resource() {
    const NOTES: &str = "https://notes-api.example";
    let app = spawn_app_with(|s| {
        s.scopes.push(ScopeDefinition {
            name: "notes:read".to_owned(),
            description: "Read your notes".to_owned(),
        });
        s.apis.push(ApiDefinition {
            audience: NOTES.to_owned(),
            scopes: vec!["notes:read".to_owned()],
        });
    })
    .await;
    app.signed_in("alice").await;
    let mut registration = confidential_client();
    registration.scopes.push("notes:read".to_owned());
    let client = app.register(registration).await;
    let page = app
        .authorize(&request(
            &client,
            &[("scope", "openid notes:read"), ("resource", NOTES)],
        ))
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("page");
    assert!(html.contains(NOTES), "the API is named");
    let plain = app
        .authorize(&request(&client, &[("scope", "openid notes:read")]))
        .await
        .text()
        .await
        .expect("page");
    assert!(!plain.contains("The access will be for"));
}

// Outside attack, finding 4: a parked request belongs to the browser that
// parked it. A leaked resume link does nothing in another browser, even one
// that signs in for it.
#[tokio::test]
async fn a_resume_link_works_only_in_the_browser_that_parked_it() {
    let app = spawn_app().await;
    let client = app.register(confidential_client()).await;
    app.create_user("alice", PASSWORD).await;
    app.create_user("bob", PASSWORD).await;
    let parked_by = app.new_browser();
    let response = parked_by.authorize(&request(&client, &[])).await;
    assert_eq!(response.status(), 303);
    let to_login = location(&response);
    let resume = query_of(&format!("http://x{to_login}"))["return_to"].clone();

    let other = app.new_browser();
    let _ = sign_in_through(
        &other,
        &format!(
            "/login?{}",
            serde_urlencoded::to_string([("return_to", resume.as_str())]).expect("query")
        ),
        "bob",
    )
    .await;
    let stolen = other.get(&resume).await;
    assert_eq!(stolen.status(), 400, "another browser cannot resume it");
    assert!(!stolen.headers().contains_key("location"));

    let back = sign_in_through(&parked_by, &to_login, "alice").await;
    let resumed = parked_by.get(&back).await;
    assert_eq!(
        resumed.status(),
        200,
        "the consent page, in the browser that asked"
    );
}

// Issue 14: `prompt=select_account` is advertised, so it is honoured: a
// signed-in user sees the chooser ("Continue as …" or "Use another
// account"), a fresh sign-in from the chooser does not loop back to it,
// and it cannot be combined with `prompt=none`.
#[tokio::test]
async fn prompt_select_account_shows_the_account_chooser() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    app.create_user("bob", PASSWORD).await;
    let client = app.register(confidential_client()).await;
    let _ = app.obtain_code(&client, "openid profile", None).await;

    let choice = app
        .authorize(&request(&client, &[("prompt", "select_account")]))
        .await;
    assert_eq!(choice.status(), 200, "the chooser, not a code");
    let html = choice.text().await.expect("page");
    assert!(
        html.contains("Client One asks which account to use"),
        "{html}"
    );
    assert!(html.contains("You are signed in as <strong>alice</strong>"));
    let continued = app.get(&link(&html, ">Continue as alice")).await;
    assert_eq!(continued.status(), 302, "alice's remembered grant");
    assert!(query_of(&location(&continued)).contains_key("code"));

    // "Use another account": bob signs in and the request goes on as bob
    // (his consent page: he never approved this client), not the chooser.
    let html = app
        .authorize(&request(&client, &[("prompt", "select_account")]))
        .await
        .text()
        .await
        .expect("page");
    let switch = link(&html, ">Use another account");
    assert!(switch.contains("reauth=1"), "{switch}");
    let return_to = sign_in_through(&app, &switch, "bob").await;
    let back = app.get(&return_to).await;
    assert_eq!(back.status(), 200);
    let page = back.text().await.expect("page");
    assert!(!page.contains("asks which account to use"), "no loop");
    assert!(
        page.contains("name=\"decision\""),
        "bob's consent page: {page}"
    );

    // Signed out, the sign-in page is the chooser; back from it, no chooser.
    app.create_user("carol", PASSWORD).await;
    let fresh = app.new_browser();
    let to_login = fresh
        .authorize(&request(&client, &[("prompt", "select_account")]))
        .await;
    assert_eq!(to_login.status(), 303);
    let return_to = sign_in_through(&fresh, &location(&to_login), "carol").await;
    let page = fresh.get(&return_to).await.text().await.expect("page");
    assert!(!page.contains("asks which account to use"), "{page}");

    // OIDC Core §3.1.2.1: none with any other value is an error.
    let silent = app
        .authorize(&request(&client, &[("prompt", "none select_account")]))
        .await;
    assert_eq!(query_of(&location(&silent))["error"], "invalid_request");
}
