//! Introspection (RFC 7662), revocation (RFC 7009) and grant families:
//! IN-01..IN-05, RV-01..RV-05, RT-02 and LG-08 seen through introspection.

use serde_json::{Value, json};

use std::time::Duration;

use crate::helpers::{TestApp, TestClient, confidential_client, spawn_app, spawn_app_with};

/// `RS1`: a resource server allowed to introspect tokens for the default
/// audience (the issuer).
async fn resource_server(app: &TestApp) -> TestClient {
    let mut registration = confidential_client();
    registration.name = "Resource Server".to_owned();
    registration.redirect_uris.clear();
    registration.grant_types = vec!["client_credentials".to_owned()];
    registration.introspection_audience = Some(app.address.clone());
    app.register(registration).await
}

pub async fn introspect(app: &TestApp, caller: &TestClient, token: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&caller.id, caller.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .expect("POST introspect");
    let status = response.status().as_u16();
    if status == 200 {
        assert_eq!(response.headers()["cache-control"], "no-store", "IN-04");
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn revoke(
    app: &TestApp,
    caller: &TestClient,
    token: &str,
    hint: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("token", token)];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint));
    }
    app.token_like("/oauth2/revoke", caller, &form).await
}

impl TestApp {
    async fn token_like(
        &self,
        path: &str,
        client: &TestClient,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path));
        let mut form = form.to_vec();
        match &client.secret {
            Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
            None => form.push(("client_id", &client.id)),
        }
        request.form(&form).send().await.expect("POST")
    }
}

/// Alice approved C1; returns C1 and its tokens.
async fn tokens(app: &TestApp) -> (TestClient, Value, String) {
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let code = app
        .obtain_code(&client, "openid profile offline_access", None)
        .await;
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
    (client, body, code)
}

fn inactive() -> Value {
    json!({ "active": false })
}

fn at(body: &Value) -> &str {
    body["access_token"].as_str().expect("access token")
}

fn rt(body: &Value) -> &str {
    body["refresh_token"].as_str().expect("refresh token")
}

// SECURITY-CASES IN-04
#[tokio::test]
async fn a_resource_server_sees_an_active_token_with_its_claims() {
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (client, body, _) = tokens(&app).await;
    let (status, answer) = introspect(&app, &rs1, at(&body)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["active"], true);
    assert_eq!(answer["scope"], "offline_access openid profile");
    assert_eq!(answer["client_id"], client.id.as_str());
    assert_eq!(answer["username"], "alice");
    assert_eq!(answer["iss"], app.address.as_str());
    assert_eq!(answer["aud"], app.address.as_str());
    assert_eq!(answer["token_type"], "Bearer");
    for claim in ["sub", "exp", "iat", "nbf", "jti"] {
        assert!(!answer[claim].is_null(), "{claim}");
    }
    // A client may introspect its own refresh token.
    let (_, refresh) = introspect(&app, &client, rt(&body)).await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");
}

// SECURITY-CASES IN-01
#[tokio::test]
async fn introspection_requires_a_confidential_client_and_a_post() {
    let app = spawn_app().await;
    let (_, body, _) = tokens(&app).await;
    let anonymous = app
        .client
        .post(app.url("/oauth2/introspect"))
        .form(&[("token", at(&body))])
        .send()
        .await
        .expect("POST");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let wrong = TestClient {
        id: "nobody".to_owned(),
        secret: Some("nothing".to_owned()),
        redirect_uri: String::new(),
    };
    let (status, answer) = introspect(&app, &wrong, at(&body)).await;
    assert_eq!(status, 401);
    assert!(answer.get("active").is_none(), "no token information");
    let public = app.register(crate::helpers::public_client()).await;
    let response = app
        .token_like("/oauth2/introspect", &public, &[("token", at(&body))])
        .await;
    assert_eq!(response.status(), 401);
    let get = app
        .get(&format!("/oauth2/introspect?token={}", at(&body)))
        .await;
    assert_eq!(get.status(), 405);
    assert!(
        get.headers()["allow"]
            .to_str()
            .expect("ASCII")
            .contains("POST")
    );
    // CO-03: server to server only.
    let cors = app
        .client
        .post(app.url("/oauth2/introspect"))
        .header("origin", "https://evil.example")
        .form(&[("token", "x")])
        .send()
        .await
        .expect("POST");
    assert!(!cors.headers().contains_key("access-control-allow-origin"));
}

// SECURITY-CASES IN-02, IN-03
#[tokio::test]
async fn strangers_garbage_and_foreign_audiences_learn_nothing() {
    let app = spawn_app().await;
    let (_, body, code) = tokens(&app).await;
    let c2 = app.register(confidential_client()).await;
    assert_eq!(
        introspect(&app, &c2, at(&body)).await.1,
        inactive(),
        "C2 is no resource server"
    );
    assert_eq!(
        introspect(&app, &c2, rt(&body)).await.1,
        inactive(),
        "nor C1's refresh token"
    );
    let mut other = confidential_client();
    other.introspection_audience = Some("https://other-api.example".to_owned());
    let rs2 = app.register(other).await;
    assert_eq!(
        introspect(&app, &rs2, at(&body)).await.1,
        inactive(),
        "audience of another RS"
    );
    let rs1 = resource_server(&app).await;
    for garbage in [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        &"x".repeat(5000),
        code.as_str(),
    ] {
        let (status, answer) = introspect(&app, &rs1, garbage).await;
        assert_eq!((status, answer), (200, inactive()), "{garbage:.30}");
    }
}

// SECURITY-CASES RV-01, RT-02, IN-03, IN-05
#[tokio::test]
async fn revoking_a_refresh_token_kills_its_whole_family() {
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (client, body, code) = tokens(&app).await;
    let response = revoke(&app, &client, rt(&body), Some("refresh_token")).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.expect("body").is_empty());
    assert_eq!(
        introspect(&app, &rs1, at(&body)).await.1,
        inactive(),
        "the access token died with its grant"
    );
    assert_eq!(introspect(&app, &client, rt(&body)).await.1, inactive());
    assert_eq!(
        introspect(&app, &rs1, &code).await.1,
        inactive(),
        "the used code too"
    );
    let refresh = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt(&body)),
            ],
        )
        .await;
    assert_eq!(refresh.status(), 400);
}

// SECURITY-CASES RT-02
#[tokio::test]
async fn refresh_token_reuse_shows_as_inactive_everywhere() {
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (client, first, _) = tokens(&app).await;
    let second: Value = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt(&first)),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        introspect(&app, &client, rt(&first)).await.1,
        inactive(),
        "a rotated token"
    );
    assert_eq!(introspect(&app, &rs1, at(&second)).await.1["active"], true);
    let reuse = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt(&first)),
            ],
        )
        .await;
    assert_eq!(reuse.status(), 400);
    assert_eq!(introspect(&app, &rs1, at(&first)).await.1, inactive());
    assert_eq!(introspect(&app, &rs1, at(&second)).await.1, inactive());
    assert_eq!(introspect(&app, &client, rt(&second)).await.1, inactive());
}

// SECURITY-CASES RV-02
#[tokio::test]
async fn unknown_malformed_and_repeated_revocations_answer_200() {
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (client, body, _) = tokens(&app).await;
    for token in ["random-string", "a.b.c", "' OR '1'='1"] {
        assert_eq!(
            revoke(&app, &client, token, None).await.status(),
            200,
            "{token}"
        );
    }
    // A wrong hint is only a hint: the access token is still revoked.
    assert_eq!(
        revoke(&app, &client, at(&body), Some("refresh_token"))
            .await
            .status(),
        200
    );
    assert_eq!(introspect(&app, &rs1, at(&body)).await.1, inactive());
    assert_eq!(
        revoke(&app, &client, at(&body), Some("bogus_hint"))
            .await
            .status(),
        200,
        "already revoked"
    );
    // Revoking one access token leaves the grant: the refresh token works.
    let refresh = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt(&body)),
            ],
        )
        .await;
    assert_eq!(refresh.status(), 200);
}

// SECURITY-CASES RV-03: another client's token is answered exactly like an
// unknown one (200, empty body), so the answer never tells whether a token
// exists, and it stays valid.
#[tokio::test]
async fn another_clients_token_cannot_be_revoked() {
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (client, body, _) = tokens(&app).await;
    let c2 = app.register(confidential_client()).await;
    let unknown = revoke(&app, &c2, "no-such-token", None).await;
    let unknown_status = unknown.status();
    let unknown_body = unknown.text().await.expect("body");
    for token in [at(&body), rt(&body)] {
        let response = revoke(&app, &c2, token, None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.status(),
            unknown_status,
            "same as an unknown token"
        );
        assert_eq!(response.text().await.expect("body"), unknown_body);
    }
    let (status, refreshed) = introspect(&app, &client, rt(&body)).await;
    assert_eq!(status, 200);
    assert_eq!(refreshed["active"], true, "the refresh token stays valid");
    let anonymous = app
        .client
        .post(app.url("/oauth2/revoke"))
        .form(&[("token", at(&body))])
        .send()
        .await
        .expect("POST");
    assert_eq!(anonymous.status(), 401);
    let wrong = TestClient {
        secret: Some("wrong".to_owned()),
        ..client.clone()
    };
    assert_eq!(revoke(&app, &wrong, at(&body), None).await.status(), 401);
    assert_eq!(
        introspect(&app, &rs1, at(&body)).await.1["active"],
        true,
        "still valid"
    );
}

// SECURITY-CASES RV-04
#[tokio::test]
async fn revoking_an_app_in_the_account_page_kills_its_tokens_and_asks_consent_again() {
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (client, body, _) = tokens(&app).await;
    let page = app.get_html("/account/apps").await;
    assert!(page.contains("Client One"), "the connected app is listed");
    assert!(page.contains("See your name and username"));
    let csrf = crate::helpers::csrf_token(&page);
    let grant = page
        .split("name=\"grant\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("grant id")
        .to_owned();
    let forged = app
        .post_form(
            "/account/apps/revoke",
            &[("grant", &grant), ("csrf_token", "forged")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    let revoked = app
        .post_form(
            "/account/apps/revoke",
            &[("grant", &grant), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(revoked.status(), 303);
    assert!(!app.get_html("/account/apps").await.contains("Client One"));
    assert_eq!(introspect(&app, &rs1, at(&body)).await.1, inactive());
    let refresh = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt(&body)),
            ],
        )
        .await;
    let error: Value = refresh.json().await.expect("JSON");
    assert_eq!(error["error"], "invalid_grant");
    let again = app
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", &client.redirect_uri),
            ("scope", "openid"),
        ])
        .await;
    assert_eq!(again.status(), 200, "consent is asked again");
}

#[tokio::test]
async fn removing_a_scope_in_the_account_page_narrows_later_tokens() {
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (client, body, _) = tokens(&app).await;
    let page = app.get_html("/account/apps").await;
    let csrf = crate::helpers::csrf_token(&page);
    let grant = page
        .split("name=\"grant\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("grant id")
        .to_owned();
    let response = app
        .post_form(
            "/account/apps/scopes",
            &[
                ("grant", &grant),
                ("csrf_token", &csrf),
                ("scope", "openid"),
                ("scope", "offline_access"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        introspect(&app, &rs1, at(&body)).await.1["scope"],
        "offline_access openid"
    );
    let refreshed: Value = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt(&body)),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(refreshed["scope"], "offline_access openid");
    // Another user's grant id is not found.
    let mallory = app.new_browser();
    app.create_user("mallory", crate::helpers::PASSWORD).await;
    assert_eq!(
        mallory
            .login("mallory", crate::helpers::PASSWORD)
            .await
            .status(),
        303
    );
    let mallory_csrf = crate::helpers::csrf_token(&mallory.get_html("/account/apps").await);
    let stolen = mallory
        .post_form(
            "/account/apps/revoke",
            &[("grant", &grant), ("csrf_token", &mallory_csrf)],
        )
        .await;
    assert_eq!(stolen.status(), 404);
    assert_eq!(
        introspect(&app, &rs1, at(&refreshed)).await.1["active"],
        true
    );
}

// SECURITY-CASES LG-08
#[tokio::test]
async fn disabling_a_user_or_changing_the_password_revokes_their_grants() {
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (_, body, _) = tokens(&app).await;
    let alice = tessera::domain::Username::parse("alice").expect("valid");
    let password =
        tessera::domain::Password::parse("a brand new password".to_owned(), 8).expect("valid");
    tessera::auth::admin::set_password(&app.db, alice.clone(), password, true)
        .await
        .expect("changed");
    assert_eq!(
        introspect(&app, &rs1, at(&body)).await.1,
        inactive(),
        "password change"
    );

    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (_, body, _) = tokens(&app).await;
    tessera::auth::admin::set_disabled(&app.db, alice, true)
        .await
        .expect("disabled");
    assert_eq!(
        introspect(&app, &rs1, at(&body)).await.1,
        inactive(),
        "disabled user"
    );
}

#[tokio::test]
async fn operators_revoke_by_grant_user_or_client_from_the_cli() {
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (client, body, _) = tokens(&app).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .env("TESSERA__DATABASE__URL", &app.settings.database.url)
            .env("RUST_LOG", "warn")
            .env_remove("TESSERA_ENV")
            .output()
            .expect("tessera runs")
    };
    let listed = run(&["grant", "list", "--user", "alice", "--json"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let grants: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(grants.as_array().map(Vec::len), Some(1));
    assert_eq!(grants[0]["client_id"], client.id.as_str());

    let revoked = run(&["grant", "revoke", "--client", &client.id]);
    assert!(revoked.status.success());
    // The CLI is another process: the server sees its revocation once what
    // it remembers has aged past database.cache_ttl_ms.
    wait_out_the_cache(&app).await;
    assert_eq!(introspect(&app, &rs1, at(&body)).await.1, inactive());
    let all = run(&["grant", "list", "--all", "--json"]);
    let all: Value = serde_json::from_slice(&all.stdout).expect("JSON");
    assert_eq!(
        all[0]["revoked_reason"],
        "operator (tessera grant revoke --client)"
    );

    let code = app.obtain_code(&client, "openid", None).await;
    let fresh: Value = app
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
    assert_eq!(introspect(&app, &rs1, at(&fresh)).await.1["active"], true);
    assert!(
        run(&["grant", "revoke", "--user", "alice"])
            .status
            .success()
    );
    wait_out_the_cache(&app).await;
    assert_eq!(introspect(&app, &rs1, at(&fresh)).await.1, inactive());
}

/// Sleeps past `database.cache_ttl_ms`: after it, nothing read before now is
/// served from memory.
async fn wait_out_the_cache(app: &TestApp) {
    tokio::time::sleep(Duration::from_millis(
        app.settings.database.cache_ttl_ms + 20,
    ))
    .await;
}

// DESIGN §4-5: introspection answers from memory within the bound, and
// never past it: with the grants table gone, a token seen a moment ago may
// still be answered, but once the bound has passed the answer is 503.
#[tokio::test]
async fn introspection_memory_never_outlives_its_bound() {
    use diesel::connection::SimpleConnection as _;
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (_, body, _) = tokens(&app).await;
    assert_eq!(introspect(&app, &rs1, at(&body)).await.1["active"], true);
    let db = app.db.clone();
    db.run(|conn| {
        conn.batch_execute("ALTER TABLE grants RENAME TO grants_away")?;
        Ok::<_, tessera::storage::StorageError>(())
    })
    .await
    .expect("schema change");
    wait_out_the_cache(&app).await;
    let (status, answer) = introspect(&app, &rs1, at(&body)).await;
    assert_eq!(status, 503, "{answer}");
    assert_ne!(answer["active"], true);
}

// The same CLI revocation with the cache turned off is seen at once.
#[tokio::test]
async fn without_the_cache_a_cli_revocation_counts_at_once() {
    let app = spawn_app_with(|s| s.database.cache_ttl_ms = 0).await;
    let rs1 = resource_server(&app).await;
    let (client, body, _) = tokens(&app).await;
    assert_eq!(introspect(&app, &rs1, at(&body)).await.1["active"], true);
    let revoked = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["grant", "revoke", "--client", &client.id])
        .env("TESSERA__DATABASE__URL", &app.settings.database.url)
        .env("RUST_LOG", "warn")
        .env_remove("TESSERA_ENV")
        .output()
        .expect("tessera runs");
    assert!(revoked.status.success());
    assert_eq!(introspect(&app, &rs1, at(&body)).await.1, inactive());
}

// SECURITY-CASES RV-05
#[tokio::test]
async fn when_storage_fails_revocation_is_503_and_introspection_never_active() {
    use diesel::connection::SimpleConnection as _;
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let (client, body, _) = tokens(&app).await;
    let break_grants = |sql: &'static str| {
        let db = app.db.clone();
        async move {
            db.run(move |conn| {
                conn.batch_execute(sql)?;
                Ok::<_, tessera::storage::StorageError>(())
            })
            .await
            .expect("schema change")
        }
    };
    break_grants("ALTER TABLE grants RENAME TO grants_away").await;
    let response = revoke(&app, &client, rt(&body), None).await;
    assert_eq!(response.status(), 503, "never 200 when nothing was revoked");
    assert!(response.headers().contains_key("retry-after"));
    let (status, answer) = introspect(&app, &rs1, at(&body)).await;
    assert_eq!(status, 503);
    assert_ne!(answer["active"], true);

    break_grants("ALTER TABLE grants_away RENAME TO grants").await;
    assert_eq!(
        revoke(&app, &client, rt(&body), None).await.status(),
        200,
        "the retry succeeds"
    );
    assert_eq!(introspect(&app, &rs1, at(&body)).await.1, inactive());
}

#[tokio::test]
async fn client_credential_tokens_belong_to_the_clients_standing_grant() {
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let client = app.register(confidential_client()).await;
    let body: Value = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "profile")],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let answer = introspect(&app, &rs1, at(&body)).await.1;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["sub"], client.id.as_str());
    let second: Value = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "profile")],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let grant = |token: &str| {
        let payload = token.split('.').nth(1).expect("payload");
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64");
        serde_json::from_slice::<Value>(&bytes).expect("JSON")["gid"].clone()
    };
    assert_eq!(
        grant(at(&body)),
        grant(at(&second)),
        "one standing grant, no row per token"
    );
    assert_eq!(revoke(&app, &client, at(&body), None).await.status(), 200);
    assert_eq!(introspect(&app, &rs1, at(&body)).await.1, inactive());
    assert_eq!(
        introspect(&app, &rs1, at(&second)).await.1["active"],
        true,
        "only that token"
    );
}

// Durable writes arriving together are committed together (group commit
// on SQLite): every parallel revocation is answered 200 only once written,
// and every one of them counts.
#[tokio::test]
async fn parallel_revocations_are_each_written_before_they_are_answered() {
    let app = spawn_app().await;
    let rs1 = resource_server(&app).await;
    let mut registration = confidential_client();
    registration.redirect_uris.clear();
    registration.grant_types = vec!["client_credentials".to_owned()];
    let client = app.register(registration).await;
    let mut minted = Vec::new();
    for _ in 0..40 {
        let body: Value = app
            .token(&client, &[("grant_type", "client_credentials")])
            .await
            .json()
            .await
            .expect("JSON");
        minted.push(at(&body).to_owned());
    }
    let answers = futures_util::future::join_all(
        minted
            .iter()
            .map(|token| revoke(&app, &client, token, None)),
    )
    .await;
    assert!(answers.iter().all(|r| r.status() == 200));
    // A fresh server on the same database (nothing remembered) agrees.
    let again = crate::helpers::spawn_instance_of(&app).await;
    for token in &minted {
        assert_eq!(introspect(&again, &rs1, token).await.1, inactive());
    }
}

// A request whose write panics gets an error, never a success and never a
// hang, and the writer goes on serving the next ones (on SQLite the writes
// share one writer thread; on PostgreSQL this is the blocking pool).
#[tokio::test]
async fn a_panicking_write_fails_alone_and_the_writer_carries_on() {
    let app = spawn_app().await;
    let failed = app
        .db
        .write(|_conn| -> Result<(), tessera::storage::StorageError> {
            panic!("a bug in one request's write")
        })
        .await;
    assert!(failed.is_err());
    let (client, body, _) = tokens(&app).await;
    assert_eq!(
        revoke(&app, &client, rt(&body), None).await.status(),
        200,
        "the next write is served"
    );
    let rs1 = resource_server(&app).await;
    assert_eq!(introspect(&app, &rs1, at(&body)).await.1, inactive());
}
