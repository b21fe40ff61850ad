//! Third-party registration: Dynamic Client Registration (RFC 7591/7592)
//! in every mode, and the developer pages through real forms.

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestClient, csrf_token, location, pkce_pair, query_of, spawn_app, spawn_app_with,
};

async fn register(app: &TestApp, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut request = app.client.post(app.url("/oauth2/register")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST register");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn client_count(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    app.db
        .run(|conn| {
            Ok::<_, tessera::storage::StorageError>(
                tessera::storage::schema::clients::table
                    .count()
                    .get_result(conn)?,
            )
        })
        .await
        .expect("count")
}

fn open(settings: &mut tessera::config::Settings) {
    settings.registration.mode = tessera::config::RegistrationMode::Open;
}

fn web_app() -> Value {
    json!({
        "client_name": "Third Party",
        "redirect_uris": ["https://third.example/cb"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "scope": "openid profile",
        "token_endpoint_auth_method": "client_secret_basic",
        "software_statement_ignored": "unknown members are ignored",
    })
}

#[tokio::test]
async fn token_mode_needs_an_initial_access_token_with_uses_left() {
    let app = spawn_app().await;
    let (status, _) = register(&app, web_app(), None).await;
    assert_eq!(status, 401);
    let (status, _) = register(&app, web_app(), Some("made-up")).await;
    assert_eq!(status, 401);
    let token = app
        .db
        .run(|conn| {
            tessera::oauth::registration::create_initial_token(
                conn,
                1,
                3600,
                tessera::domain::now(),
            )
        })
        .await
        .expect("token");
    let (status, body) = register(&app, web_app(), Some(token.expose())).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = register(&app, web_app(), Some(token.expose())).await;
    assert_eq!(status, 401, "used up");
}

#[tokio::test]
async fn open_registration_returns_credentials_and_supports_rfc_7592_management() {
    let app = spawn_app_with(open).await;
    let (status, body) = register(&app, web_app(), None).await;
    assert_eq!(status, 201, "{body}");
    for key in [
        "client_id",
        "client_secret",
        "client_id_issued_at",
        "client_secret_expires_at",
        "registration_access_token",
        "registration_client_uri",
    ] {
        assert!(!body[key].is_null(), "{key} missing from {body}");
    }
    assert_eq!(body["client_name"], "Third Party");
    assert!(body.get("software_statement_ignored").is_none());
    let uri = body["registration_client_uri"]
        .as_str()
        .expect("uri")
        .replace(&app.address, "");
    let token = body["registration_access_token"].as_str().expect("token");

    let read = app
        .client
        .get(app.url(&uri))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.expect("JSON");
    assert!(
        read.get("client_secret").is_none(),
        "the secret is never shown again"
    );
    let wrong = app
        .client
        .get(app.url(&uri))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .expect("ASCII")
            .contains("error=\"invalid_token\"")
    );
    let lower_case = app
        .client
        .get(app.url(&uri))
        .header("Authorization", format!("bearer {token}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(lower_case.status(), 200, "the scheme is case-insensitive");

    let mut changed = web_app();
    changed["client_name"] = json!("Renamed");
    let updated = app
        .client
        .put(app.url(&uri))
        .bearer_auth(token)
        .json(&changed)
        .send()
        .await
        .expect("PUT");
    assert_eq!(updated.status(), 200);
    assert_eq!(
        updated.json::<Value>().await.expect("JSON")["client_name"],
        "Renamed"
    );

    let client = TestClient {
        id: body["client_id"].as_str().expect("id").to_owned(),
        secret: body["client_secret"].as_str().map(str::to_owned),
        redirect_uri: "https://third.example/cb".to_owned(),
    };
    let cc = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "profile")],
        )
        .await;
    assert_eq!(
        cc.status(),
        200,
        "the registered client uses client credentials"
    );

    let deleted = app
        .client
        .delete(app.url(&uri))
        .bearer_auth(token)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 204);
    let gone = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(gone.status(), 401);
}

#[tokio::test]
async fn a_registered_public_client_completes_the_code_flow_and_shows_as_unverified() {
    let app = spawn_app_with(open).await;
    let (status, body) = register(
        &app,
        json!({
            "client_name": "Native Tool",
            "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "none",
            "scope": "openid offline_access",
            "grant_types": ["authorization_code", "refresh_token"],
        }),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("client_secret").is_none());
    let client = TestClient {
        id: body["client_id"].as_str().expect("id").to_owned(),
        secret: None,
        redirect_uri: "http://127.0.0.1:8765/cb".to_owned(),
    };
    app.signed_in("alice").await;
    let (verifier, challenge) = pkce_pair();
    let page = app
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", &client.redirect_uri),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("Unverified app"),
        "self-registered clients start unverified"
    );
    let answered = app.consent(&page, "allow", None).await;
    let code = query_of(&location(&answered))["code"].clone();
    let tokens = app
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
    assert_eq!(tokens.status(), 200);
}

// SECURITY-CASES RU-07
#[tokio::test]
async fn invalid_metadata_is_refused_and_nothing_is_stored() {
    let app = spawn_app_with(open).await;
    let before = client_count(&app).await;
    for (redirect, code) in [
        ("https://third.example/cb#x", "invalid_redirect_uri"),
        ("javascript:alert(1)", "invalid_redirect_uri"),
        ("https://*.example/cb", "invalid_redirect_uri"),
        ("http://third.example/cb", "invalid_redirect_uri"),
        ("myapp:/cb", "invalid_redirect_uri"),
    ] {
        let mut body = web_app();
        body["redirect_uris"] = json!([redirect]);
        let (status, answer) = register(&app, body, None).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(code)),
            "{redirect}"
        );
    }
    for (key, value) in [
        ("token_endpoint_auth_method", json!("private_key_jwt")),
        ("response_types", json!(["token"])),
        ("scope", json!("openid admin")),
        ("client_name", json!("")),
        ("client_name", json!("x".repeat(200))),
        ("client_uri", json!("not a url")),
    ] {
        let mut body = web_app();
        body[key] = value.clone();
        let (status, answer) = register(&app, body, None).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{key}={value}"
        );
    }
    let mut public_cc = web_app();
    public_cc["token_endpoint_auth_method"] = json!("none");
    assert_eq!(register(&app, public_cc, None).await.0, 400);
    let not_json = app
        .client
        .post(app.url("/oauth2/register"))
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .expect("POST");
    assert_eq!(not_json.status(), 400);
    assert_eq!(client_count(&app).await, before);
}

#[tokio::test]
async fn registration_can_be_switched_off_and_is_rate_limited() {
    let off =
        spawn_app_with(|s| s.registration.mode = tessera::config::RegistrationMode::Off).await;
    assert_eq!(register(&off, web_app(), None).await.0, 404);
    let doc: Value = off
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .expect("JSON");
    assert!(doc.get("registration_endpoint").is_none());

    let limited = spawn_app_with(|s| {
        open(s);
        s.registration.requests_per_ip_per_hour = 2;
    })
    .await;
    let doc: Value = limited
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        doc["registration_endpoint"],
        format!("{}/oauth2/register", limited.address)
    );
    assert_eq!(register(&limited, web_app(), None).await.0, 201);
    assert_eq!(register(&limited, web_app(), None).await.0, 201);
    assert_eq!(register(&limited, web_app(), None).await.0, 429);
}

/// The developer form, filled in.
fn app_form<'a>(
    csrf: &'a str,
    name: &'a str,
    redirect: &'a str,
    kind: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", csrf),
        ("name", name),
        ("kind", kind),
        ("redirect_uris", redirect),
        ("scope", "openid"),
        ("scope", "offline_access"),
        ("homepage_uri", "https://dev.example"),
    ]
}

fn field_value(html: &str, marker: &str) -> String {
    let start = html.find(marker).expect(marker) + marker.len();
    html[start..].split('<').next().expect("text").to_owned()
}

#[tokio::test]
async fn developers_register_edit_rotate_and_delete_their_apps_through_the_pages() {
    let app = spawn_app().await;
    app.signed_in("dev").await;
    let form_page = app.get_html("/developer/apps/new").await;
    let csrf = csrf_token(&form_page);

    // Validation: nothing stored, the message next to the field.
    let before = client_count(&app).await;
    let refused = app
        .post_form(
            "/developer/apps/new",
            &app_form(&csrf, "Bad", "https://x.example/cb#frag", "web"),
        )
        .await;
    assert_eq!(refused.status(), 400);
    let html = refused.text().await.expect("page");
    assert!(html.contains("fragment"), "{html}");
    assert!(html.contains("value=\"Bad\""), "typed values are kept");
    assert_eq!(client_count(&app).await, before);

    let created = app
        .post_form(
            "/developer/apps/new",
            &app_form(&csrf, "Dev App", "https://dev.example/cb", "web"),
        )
        .await;
    assert_eq!(created.status(), 200);
    let html = created.text().await.expect("page");
    let client_id = field_value(&html, "<dt>Client ID</dt><dd><code>");
    let secret = field_value(&html, "<code class=\"secret\">");
    assert!(html.contains("will never show it again"));
    let listing = app.get_html("/developer/apps").await;
    assert!(listing.contains("Dev App"));
    let settings_page = app.get_html(&format!("/developer/apps/{client_id}")).await;
    assert!(!settings_page.contains(&secret), "the secret is shown once");

    // Another user cannot see or touch it.
    let other = app.new_browser();
    app.create_user("mallory", crate::helpers::PASSWORD).await;
    assert_eq!(
        other
            .login("mallory", crate::helpers::PASSWORD)
            .await
            .status(),
        303
    );
    assert_eq!(
        other
            .get(&format!("/developer/apps/{client_id}"))
            .await
            .status(),
        404
    );
    let other_csrf = csrf_token(&other.get_html("/developer/apps").await);
    let stolen = other
        .post_form(
            &format!("/developer/apps/{client_id}/delete"),
            &[("csrf_token", &other_csrf)],
        )
        .await;
    assert_eq!(stolen.status(), 404);

    // Edit.
    let edited = app
        .post_form(
            &format!("/developer/apps/{client_id}"),
            &app_form(
                &csrf_token(&settings_page),
                "Dev App 2",
                "https://dev.example/cb",
                "web",
            ),
        )
        .await;
    assert_eq!(edited.status(), 303);
    assert!(app.get_html("/developer/apps").await.contains("Dev App 2"));

    // Rotation keeps the old secret working for the overlap.
    let client = TestClient {
        id: client_id.clone(),
        secret: Some(secret.clone()),
        redirect_uri: "https://dev.example/cb".to_owned(),
    };
    let rotated = app
        .post_form(
            &format!("/developer/apps/{client_id}/rotate"),
            &[("csrf_token", &csrf_token(&settings_page))],
        )
        .await;
    assert_eq!(rotated.status(), 200);
    let new_secret = field_value(
        &rotated.text().await.expect("page"),
        "<code class=\"secret\">",
    );
    assert_ne!(new_secret, secret);
    let code = app
        .obtain_code(&client, "openid offline_access", None)
        .await;
    let old = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
            ],
        )
        .await;
    assert_eq!(
        old.status(),
        200,
        "the previous secret still works during the overlap"
    );
    let tokens: Value = old.json().await.expect("JSON");
    let new_client = TestClient {
        secret: Some(new_secret),
        ..client.clone()
    };
    let refreshed = app
        .token(
            &new_client,
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tokens["refresh_token"].as_str().expect("RT"),
                ),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 200, "the new secret works");
    let tokens: Value = refreshed.json().await.expect("JSON");

    // Delete after confirmation: every grant of the app dies.
    let confirm = app
        .get_html(&format!("/developer/apps/{client_id}/delete"))
        .await;
    assert!(confirm.contains("cannot be undone"));
    let deleted = app
        .post_form(
            &format!("/developer/apps/{client_id}/delete"),
            &[("csrf_token", &csrf_token(&confirm))],
        )
        .await;
    assert_eq!(deleted.status(), 303);
    let after = app
        .token(
            &new_client,
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tokens["refresh_token"].as_str().expect("RT"),
                ),
            ],
        )
        .await;
    assert_eq!(after.status(), 401, "the client is gone");
    assert!(!app.get_html("/developer/apps").await.contains("Dev App 2"));
}

// First contact: relying-party libraries (openid-client and most others)
// register without `scope`, then ask for profile, email and offline_access.
#[tokio::test]
async fn a_registration_without_scope_gets_the_documented_defaults_and_says_so() {
    let app = spawn_app_with(open).await;
    let mut body = web_app();
    body.as_object_mut().expect("object").remove("scope");
    let (status, answer) = register(&app, body, None).await;
    assert_eq!(status, 201, "{answer}");
    let expected = app.settings.registration.allowed_scopes.join(" ");
    let echoed: std::collections::BTreeSet<&str> = answer["scope"]
        .as_str()
        .expect("scope")
        .split(' ')
        .collect();
    assert_eq!(
        echoed,
        expected.split(' ').collect(),
        "the response says which"
    );
    let client = TestClient {
        id: answer["client_id"].as_str().expect("id").to_owned(),
        secret: answer["client_secret"].as_str().map(str::to_owned),
        redirect_uri: "https://third.example/cb".to_owned(),
    };
    app.signed_in("alice").await;
    let code = app
        .obtain_code(&client, "openid profile email offline_access", None)
        .await;
    let tokens = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
            ],
        )
        .await;
    assert_eq!(tokens.status(), 200);
    let tokens: Value = tokens.json().await.expect("JSON");
    assert!(
        tokens.get("refresh_token").is_some(),
        "offline_access worked"
    );
}

// RFC 7591 §3.2.2: what tessera does not do is refused, never dropped.
#[tokio::test]
async fn unsupported_registration_metadata_is_refused_not_ignored() {
    let app = spawn_app_with(open).await;
    let before = client_count(&app).await;
    for (key, value) in [
        ("subject_type", json!("pairwise")),
        ("id_token_signed_response_alg", json!("ES512")),
        ("userinfo_signed_response_alg", json!("RS256")),
        ("request_object_signing_alg", json!("RS256")),
        ("id_token_encrypted_response_alg", json!("RSA-OAEP")),
        ("jwks_uri", json!("https://third.example/jwks")),
        ("jwks", json!({"keys": []})),
    ] {
        let mut body = web_app();
        body[key] = value;
        let (status, answer) = register(&app, body, None).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{key}: {answer}"
        );
    }
    assert_eq!(client_count(&app).await, before);
    let mut supported = web_app();
    supported["subject_type"] = json!("public");
    supported["id_token_signed_response_alg"] = json!("RS256");
    assert_eq!(register(&app, supported, None).await.0, 201);
}

// RFC 7591 §3.2.1: the response (and RFC 7592 reads and updates) echo the
// authentication method that was registered, not a fixed one.
#[tokio::test]
async fn the_registered_authentication_method_is_echoed_exactly() {
    let app = spawn_app_with(open).await;
    for (sent, expected) in [
        (Some("client_secret_post"), "client_secret_post"),
        (Some("client_secret_basic"), "client_secret_basic"),
        (None, "client_secret_basic"),
    ] {
        let mut body = web_app();
        match sent {
            Some(method) => body["token_endpoint_auth_method"] = json!(method),
            None => {
                body.as_object_mut()
                    .expect("object")
                    .remove("token_endpoint_auth_method");
            }
        }
        let (status, answer) = register(&app, body, None).await;
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["token_endpoint_auth_method"], expected, "{sent:?}");
        let read: Value = app
            .client
            .get(answer["registration_client_uri"].as_str().expect("uri"))
            .bearer_auth(answer["registration_access_token"].as_str().expect("rat"))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        assert_eq!(read["token_endpoint_auth_method"], expected, "read back");
    }
    // An update may switch between the two secret methods, and says so.
    let (_, answer) = register(&app, web_app(), None).await;
    let mut update = web_app();
    update["client_id"] = answer["client_id"].clone();
    update["token_endpoint_auth_method"] = json!("client_secret_post");
    let updated: Value = app
        .client
        .put(answer["registration_client_uri"].as_str().expect("uri"))
        .bearer_auth(answer["registration_access_token"].as_str().expect("rat"))
        .json(&update)
        .send()
        .await
        .expect("PUT")
        .json()
        .await
        .expect("JSON");
    assert_eq!(updated["token_endpoint_auth_method"], "client_secret_post");
    let mut public = web_app();
    public["token_endpoint_auth_method"] = json!("none");
    public["grant_types"] = json!(["authorization_code", "refresh_token"]);
    let (status, answer) = register(&app, public, None).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["token_endpoint_auth_method"], "none");
    assert!(answer.get("client_secret").is_none());
}

// RFC 7591 §2: a client that registered an authentication method uses that
// one at every endpoint where it authenticates; a client registered without
// one (CLI, developer pages) may use either secret method.
#[tokio::test]
async fn the_registered_authentication_method_is_the_only_one_accepted() {
    let app = spawn_app_with(open).await;
    let mut body = web_app();
    body["token_endpoint_auth_method"] = json!("client_secret_post");
    let (status, answer) = register(&app, body, None).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["client_id"].as_str().expect("id").to_owned();
    let secret = answer["client_secret"].as_str().expect("secret").to_owned();
    let post = |path: &'static str, basic: bool, extra: Vec<(&'static str, String)>| {
        let (client, url, id, secret) = (
            app.client.clone(),
            app.url(path),
            id.clone(),
            secret.clone(),
        );
        async move {
            let mut form = extra;
            let request = if basic {
                client.post(url).basic_auth(id, Some(secret))
            } else {
                form.push(("client_id", id));
                form.push(("client_secret", secret));
                client.post(url)
            };
            let response = request.form(&form).send().await.expect("POST");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let cc = || vec![("grant_type", "client_credentials".to_owned())];
    let (status, token) = post("/oauth2/token", false, cc()).await;
    assert_eq!(status, 200, "{token}");
    let access = token["access_token"].as_str().expect("AT").to_owned();

    let (status, refused) = post("/oauth2/token", true, cc()).await;
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["error"], "invalid_client");
    assert!(
        refused["error_description"]
            .as_str()
            .expect("description")
            .contains("client_secret_post"),
        "{refused}"
    );
    let (status, _) = post("/oauth2/introspect", true, vec![("token", access.clone())]).await;
    assert_eq!(status, 401, "introspection by the other method");
    let (status, _) = post("/oauth2/revoke", true, vec![("token", access.clone())]).await;
    assert_eq!(status, 401, "revocation by the other method");
    let (status, introspected) = post("/oauth2/introspect", false, vec![("token", access)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        introspected["active"], true,
        "the refused calls changed nothing"
    );

    // A wrong secret by the wrong method says nothing about the method.
    let (status, wrong) = {
        let response = app
            .client
            .post(app.url("/oauth2/token"))
            .basic_auth(&id, Some("not the secret"))
            .form(&cc())
            .send()
            .await
            .expect("POST");
        (
            response.status().as_u16(),
            response.json::<Value>().await.expect("JSON"),
        )
    };
    assert_eq!(status, 401);
    assert!(
        !wrong["error_description"]
            .as_str()
            .expect("description")
            .contains("client_secret_post"),
        "{wrong}"
    );

    // Registered without a method (operator CLI): both secret methods work.
    let client = app.register(crate::helpers::confidential_client()).await;
    for basic in [true, false] {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        let mut request = app.client.post(app.url("/oauth2/token"));
        if basic {
            request = request.basic_auth(&client.id, client.secret.as_deref());
        } else {
            form.push(("client_id", client.id.clone()));
            form.push(("client_secret", client.secret.clone().expect("secret")));
        }
        let response = request.form(&form).send().await.expect("POST");
        assert_eq!(response.status(), 200, "basic: {basic}");
    }
}
