//! The token endpoint's security cases (CD-*, PK-03..05, CA-*, RT-*, OP-01,
//! OP-05, IV-07).

use diesel::prelude::*;
use serde_json::Value;
use tessera::storage::StorageError;
use tessera::storage::schema::{authorization_codes, clients, refresh_tokens, throttles};

use crate::helpers::{TestApp, TestClient, confidential_client, pkce_pair, spawn_app};

/// Status and JSON body; asserts the headers every token response carries.
async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert_eq!(response.headers()["cache-control"], "no-store", "OP-01");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("application/json")
    );
    if status == 401 {
        assert!(
            response.headers().contains_key("www-authenticate"),
            "401 names its scheme"
        );
    }
    let body: Value = response.json().await.expect("JSON body");
    if status >= 400 {
        assert!(
            body["error"].is_string(),
            "RFC 6749 §5.2 error body: {body}"
        );
        assert!(!body.to_string().contains("diesel") && !body.to_string().contains("SQL"));
    }
    (status, body)
}

async fn code_for(app: &TestApp, client: &TestClient, challenge: Option<&str>) -> String {
    app.obtain_code(client, "openid profile offline_access", challenge)
        .await
}

fn exchange_form<'a>(
    code: &'a str,
    client: &'a TestClient,
    verifier: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", client.redirect_uri.as_str()),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    form
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str) -> (u16, Value) {
    read(
        app.token(
            client,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await,
    )
    .await
}

/// Signed-in alice, C1, and a fresh token pair from the code flow.
async fn with_tokens() -> (TestApp, TestClient, Value) {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let code = code_for(&app, &client, None).await;
    let (status, body) = read(
        app.token(&client, &exchange_form(&code, &client, None))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (app, client, body)
}

// SECURITY-CASES CD-01
#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let code = code_for(&app, &client, None).await;
    let (status, first) = read(
        app.token(&client, &exchange_form(&code, &client, None))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, second) = read(
        app.token(&client, &exchange_form(&code, &client, None))
            .await,
    )
    .await;
    assert_eq!(
        (status, second["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = refresh(&app, &client, first["refresh_token"].as_str().expect("RT")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the first refresh token died"
    );
}

// SECURITY-CASES CD-02, PK-04
#[tokio::test]
async fn a_replay_with_a_wrong_verifier_does_not_revoke_the_first_tokens() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let (verifier, challenge) = pkce_pair();
    let code = code_for(&app, &client, Some(&challenge)).await;
    let (status, first) = read(
        app.token(&client, &exchange_form(&code, &client, Some(&verifier)))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (wrong, _) = pkce_pair();
    let (status, _) = read(
        app.token(&client, &exchange_form(&code, &client, Some(&wrong)))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = refresh(&app, &client, first["refresh_token"].as_str().expect("RT")).await;
    assert_eq!(status, 200, "tokens of the first exchange stay valid");
}

// SECURITY-CASES CD-03
#[tokio::test]
async fn twenty_parallel_redemptions_of_one_code_give_exactly_one_success() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let code = code_for(&app, &client, None).await;
    let attempts = (0..20).map(|_| {
        let browser = app.new_browser();
        let client = client.clone();
        let code = code.clone();
        async move {
            let response = browser
                .token(&client, &exchange_form(&code, &client, None))
                .await;
            response.status().as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
}

// SECURITY-CASES CD-04, CD-05
#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let c1 = app.register(confidential_client()).await;
    let c2 = app.register(confidential_client()).await;
    let code = code_for(&app, &c1, None).await;
    let (status, body) = read(app.token(&c2, &exchange_form(&code, &c1, None)).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let wrong_redirect = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://client.example/other"),
    ];
    let (status, body) = read(app.token(&c1, &wrong_redirect).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let omitted = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    let (status, body) = read(app.token(&c1, &omitted).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = read(app.token(&c1, &exchange_form(&code, &c1, None)).await).await;
    assert_eq!(status, 200, "none of the refusals used the code up");
}

// SECURITY-CASES CD-06, OP-06
#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    assert!(
        app.settings.tokens.authorization_code_ttl_secs <= 60,
        "codes live at most 60 s"
    );
    let code = code_for(&app, &client, None).await;
    let age = app.settings.tokens.authorization_code_ttl_secs + 5;
    app.db
        .run(move |conn| {
            diesel::update(authorization_codes::table)
                .set(authorization_codes::expires_at.eq(authorization_codes::expires_at - age))
                .execute(conn)?;
            Ok::<_, StorageError>(())
        })
        .await
        .expect("age codes");
    let (status, body) = read(
        app.token(&client, &exchange_form(&code, &client, None))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

// SECURITY-CASES PK-02, PK-03, PK-04, PK-05
#[tokio::test]
async fn the_code_verifier_is_checked_before_anything_is_issued() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let (verifier, challenge) = pkce_pair();

    let code = code_for(&app, &client, Some(&challenge)).await;
    let (status, body) = read(
        app.token(&client, &exchange_form(&code, &client, None))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "PK-03: verifier missing"
    );
    let short = "a".repeat(42);
    let (status, _) = read(
        app.token(&client, &exchange_form(&code, &client, Some(&short)))
            .await,
    )
    .await;
    assert_eq!(status, 400, "PK-02: malformed verifier");
    let (wrong, _) = pkce_pair();
    let (status, body) = read(
        app.token(&client, &exchange_form(&code, &client, Some(&wrong)))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "PK-04: wrong verifier"
    );
    let (status, _) = read(
        app.token(&client, &exchange_form(&code, &client, Some(&verifier)))
            .await,
    )
    .await;
    assert_eq!(status, 400, "PK-04: the code is now unusable");

    let plain_code = code_for(&app, &client, None).await;
    let (status, body) = read(
        app.token(
            &client,
            &exchange_form(&plain_code, &client, Some(&verifier)),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "PK-05: downgrade"
    );
}

// SECURITY-CASES CA-01, CA-04
#[tokio::test]
async fn wrong_or_missing_client_credentials_get_invalid_client() {
    let (app, client, _) = with_tokens().await;
    let wrong = TestClient {
        secret: Some("wrong-secret".to_owned()),
        ..client.clone()
    };
    let form = [("grant_type", "client_credentials")];
    let (status, basic) = read(app.token(&wrong, &form).await).await;
    assert_eq!(
        (status, basic["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let post = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .expect("POST");
    let (status, _) = read(post).await;
    assert_eq!(status, 401);
    let unknown = TestClient {
        id: "unknown-client".to_owned(),
        ..wrong.clone()
    };
    let (status, unknown_body) = read(app.token(&unknown, &form).await).await;
    assert_eq!(status, 401);
    assert_eq!(unknown_body, basic, "unknown clients are indistinguishable");
    let anonymous = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&form)
        .send()
        .await
        .expect("POST");
    assert_eq!(read(anonymous).await.0, 401, "CA-04");
}

// SECURITY-CASES CA-02
#[tokio::test]
async fn double_authentication_is_refused_and_query_secrets_are_never_read() {
    let (app, client, _) = with_tokens().await;
    let secret = client.secret.clone().expect("secret");
    let double = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth(&client.id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .expect("POST");
    let (status, body) = read(double).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let in_query = app
        .client
        .post(app.url(&format!(
            "/oauth2/token?client_id={}&client_secret={secret}",
            client.id
        )))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST");
    assert_eq!(read(in_query).await.0, 401);
}

// SECURITY-CASES CA-03
#[tokio::test]
async fn a_public_client_presenting_a_secret_is_refused() {
    let app = spawn_app().await;
    let public = app.register(crate::helpers::public_client()).await;
    let with_secret = TestClient {
        secret: Some("anything".to_owned()),
        ..public
    };
    let (status, body) = read(
        app.token(
            &with_secret,
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

// SECURITY-CASES CA-05
#[tokio::test]
async fn malformed_basic_headers_are_401_never_500() {
    let (app, client, _) = with_tokens().await;
    let big = format!("Basic {}", "A".repeat(10 * 1024));
    for header in [
        "Basic !!!notbase64",
        "Basic Y2xpZW50",
        "Basic OnNlY3JldA==",
        "Bearer abc",
        "Basic Y2xpZW50OnNlY3JldA==junk",
        big.as_str(),
    ] {
        let response = app
            .client
            .post(app.url("/oauth2/token"))
            .header("authorization", header)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        assert!(status == 400 || status == 401, "{header:.40}: {status}");
    }
    // Appendix B: a form-encoded id in Basic is decoded.
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        client.id,
        client.secret.as_deref().expect("secret")
    ));
    let ok = app
        .client
        .post(app.url("/oauth2/token"))
        .header("authorization", format!("Basic {encoded}"))
        .form(&[("grant_type", "client_credentials"), ("scope", "profile")])
        .send()
        .await
        .expect("POST");
    assert_eq!(ok.status(), 200);
}

// SECURITY-CASES CA-07
#[tokio::test]
async fn guessing_a_client_secret_is_throttled_even_for_the_right_one() {
    let (app, client, _) = with_tokens().await;
    let wrong = TestClient {
        secret: Some("guess".to_owned()),
        ..client.clone()
    };
    let form = [("grant_type", "client_credentials"), ("scope", "profile")];
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(app.token(&wrong, &form).await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let right = app.token(&client, &form).await;
    assert_eq!(right.status(), 429, "the correct secret waits too");
    assert!(right.headers().contains_key("retry-after"));
}

// SECURITY-CASES RT-01, RT-02, OP-05
#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_kills_the_family() {
    let (app, client, first) = with_tokens().await;
    let rt1 = first["refresh_token"].as_str().expect("RT1").to_owned();
    assert_eq!(rt1.len(), 43, "256 random bits");
    let (status, second) = refresh(&app, &client, &rt1).await;
    assert_eq!(status, 200);
    let rt2 = second["refresh_token"].as_str().expect("RT2").to_owned();
    assert_ne!(rt1, rt2);
    assert_eq!(second["scope"], first["scope"]);
    assert_ne!(second["access_token"], first["access_token"]);

    let (status, body) = refresh(&app, &client, &rt1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "RT-02: reuse"
    );
    let (status, _) = refresh(&app, &client, &rt2).await;
    assert_eq!(status, 400, "RT-02: the newest token died with the family");
}

// SECURITY-CASES RT-03
#[tokio::test]
async fn ten_parallel_refreshes_give_at_most_one_success() {
    let (app, client, first) = with_tokens().await;
    let rt = first["refresh_token"].as_str().expect("RT").to_owned();
    let attempts = (0..10).map(|_| {
        let browser = app.new_browser();
        let client = client.clone();
        let rt = rt.clone();
        async move {
            browser
                .token(
                    &client,
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert!(
        statuses.iter().filter(|s| **s == 200).count() <= 1,
        "{statuses:?}"
    );
}

// SECURITY-CASES RT-04
#[tokio::test]
async fn a_refresh_token_is_bound_to_its_client() {
    let (app, client, first) = with_tokens().await;
    let rt = first["refresh_token"].as_str().expect("RT").to_owned();
    let other = app.register(confidential_client()).await;
    let (status, body) = refresh(&app, &other, &rt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let anonymous = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", client.id.as_str()),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(read(anonymous).await.0, 401);
    let (status, _) = refresh(&app, &client, &rt).await;
    assert_eq!(status, 200, "the token survived both attempts");
}

// SECURITY-CASES RT-05
#[tokio::test]
async fn a_refresh_may_narrow_scope_but_never_widen_it() {
    let (app, client, first) = with_tokens().await;
    let rt = first["refresh_token"].as_str().expect("RT").to_owned();
    let widen = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("scope", "openid profile offline_access email"),
    ];
    let (status, body) = read(app.token(&client, &widen).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let narrow = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("scope", "openid"),
    ];
    let (status, body) = read(app.token(&client, &narrow).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "openid");
    let claims =
        crate::oauth_flow::verify_with_jwks(&app, body["access_token"].as_str().expect("AT")).await;
    assert_eq!(claims["scope"], "openid");
    let (status, full) = refresh(&app, &client, body["refresh_token"].as_str().expect("RT")).await;
    assert_eq!(status, 200);
    assert_eq!(
        full["scope"], "offline_access openid profile",
        "the new refresh token kept the full scope"
    );
}

// SECURITY-CASES RT-06
#[tokio::test]
async fn idle_and_absolute_refresh_lifetimes_are_enforced() {
    let (app, client, first) = with_tokens().await;
    let rt = first["refresh_token"].as_str().expect("RT").to_owned();
    app.db
        .run(|conn| {
            diesel::update(refresh_tokens::table)
                .set(refresh_tokens::idle_expires_at.eq(0_i64))
                .execute(conn)?;
            Ok::<_, StorageError>(())
        })
        .await
        .expect("expire");
    assert_eq!(refresh(&app, &client, &rt).await.0, 400, "idle");

    let code = code_for(&app, &client, None).await;
    let (_, fresh) = read(
        app.token(&client, &exchange_form(&code, &client, None))
            .await,
    )
    .await;
    app.db
        .run(|conn| {
            diesel::update(refresh_tokens::table.filter(refresh_tokens::idle_expires_at.gt(0_i64)))
                .set(refresh_tokens::absolute_expires_at.eq(1_i64))
                .execute(conn)?;
            Ok::<_, StorageError>(())
        })
        .await
        .expect("expire");
    assert_eq!(
        refresh(&app, &client, fresh["refresh_token"].as_str().expect("RT"))
            .await
            .0,
        400,
        "absolute"
    );
}

// SECURITY-CASES RT-07
#[tokio::test]
async fn refresh_stops_when_a_scope_is_withdrawn_or_the_user_disabled() {
    let (app, client, first) = with_tokens().await;
    let id = client.id.clone();
    app.db
        .run(move |conn| {
            diesel::update(clients::table.find(id))
                .set(clients::allowed_scopes.eq("openid offline_access"))
                .execute(conn)?;
            Ok::<_, StorageError>(())
        })
        .await
        .expect("withdraw profile");
    let (status, body) = refresh(&app, &client, first["refresh_token"].as_str().expect("RT")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let (app, client, first) = with_tokens().await;
    let alice = tessera::domain::Username::parse("alice").expect("valid");
    tessera::auth::admin::set_disabled(&app.db, alice, true)
        .await
        .expect("disabled");
    let (status, _) = refresh(&app, &client, first["refresh_token"].as_str().expect("RT")).await;
    assert_eq!(status, 400);
}

// SECURITY-CASES AZ-01, IV-01, IV-04, IV-07
#[tokio::test]
async fn unsupported_grants_bad_bodies_and_methods_get_rfc_errors() {
    let (app, client, _) = with_tokens().await;
    let (status, body) = read(
        app.token(
            &client,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "x"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = read(
        app.token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = read(app.token(&client, &[]).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let json = app
        .client
        .post(app.url("/oauth2/token"))
        .header("content-type", "application/json")
        .body("{\"grant_type\":\"client_credentials\"}")
        .send()
        .await
        .expect("POST");
    assert_eq!(read(json).await.0, 400);
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = app
            .client
            .request(method.clone(), app.url("/oauth2/token"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 405, "{method}");
        assert!(
            response.headers()["allow"]
                .to_str()
                .expect("ASCII")
                .contains("POST")
        );
    }
}

#[tokio::test]
async fn client_credentials_stay_within_the_allowed_scopes() {
    let app = spawn_app().await;
    let client = app.register(confidential_client()).await;
    let (status, body) = read(
        app.token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "admin")],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let public = app.register(crate::helpers::public_client()).await;
    let (status, body) = read(
        app.token(&public, &[("grant_type", "client_credentials")])
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

/// A client of `app` whose requests come from `address` (the whole of
/// 127.0.0.0/8 is loopback, so each test address is a distinct source).
fn from_address(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(address))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

async fn post_as(
    http: &reqwest::Client,
    app: &TestApp,
    path: &str,
    client: &TestClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http.post(app.url(path))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(form)
        .send()
        .await
        .expect("POST")
}

/// Failures counted against `client` from `address`.
async fn failures_from(app: &TestApp, client: &TestClient, address: &str) -> Option<i32> {
    let key = format!("client:{}:{address}", client.id);
    app.db
        .run(move |conn| {
            Ok::<_, StorageError>(
                throttles::table
                    .find(key)
                    .select(throttles::failures)
                    .first::<i32>(conn)
                    .optional()?,
            )
        })
        .await
        .expect("read throttle")
}

// SECURITY-CASES CA-07: a stranger guessing a client's secret from one
// address is throttled there, and cannot lock the owner out anywhere else.
#[tokio::test]
async fn guessing_a_secret_from_one_address_never_locks_the_owner_out_elsewhere() {
    let (app, client, tokens) = with_tokens().await;
    let wrong = TestClient {
        secret: Some("guess".to_owned()),
        ..client.clone()
    };
    let stranger = from_address([127, 0, 0, 2]);
    let owner = from_address([127, 0, 0, 3]);
    let form = [("grant_type", "client_credentials"), ("scope", "profile")];
    let mut last = None;
    for _ in 0..30 {
        last = Some(post_as(&stranger, &app, "/oauth2/token", &wrong, &form).await);
    }
    let last = last.expect("30 guesses");
    assert_eq!(last.status(), 429);
    assert!(last.headers().contains_key("retry-after"));
    for path in ["/oauth2/introspect", "/oauth2/revoke"] {
        let guess = post_as(&stranger, &app, path, &wrong, &[("token", "x")]).await;
        assert_eq!(
            guess.status(),
            429,
            "{path}: the guessing address is locked"
        );
        assert!(guess.headers().contains_key("retry-after"));
    }
    // The owner, from another address: served at once, at every endpoint.
    let issued = post_as(&owner, &app, "/oauth2/token", &client, &form).await;
    assert_eq!(issued.status(), 200);
    let at = tokens["access_token"].as_str().expect("AT");
    let seen = post_as(
        &owner,
        &app,
        "/oauth2/introspect",
        &client,
        &[("token", at)],
    )
    .await;
    assert_eq!(seen.status(), 200);
    assert_eq!(seen.json::<Value>().await.expect("JSON")["active"], true);
    let revoked = post_as(&owner, &app, "/oauth2/revoke", &client, &[("token", at)]).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        failures_from(&app, &client, "127.0.0.3").await,
        None,
        "a correct secret is never a failure"
    );
    // The correct secret from the locked address waits too (a lock that
    // answered right guesses would not slow guessing), but does not count:
    // the owner's retries never lengthen the lock.
    let before = failures_from(&app, &client, "127.0.0.2").await;
    for _ in 0..3 {
        let retry = post_as(&stranger, &app, "/oauth2/token", &client, &form).await;
        assert_eq!(retry.status(), 429);
    }
    assert_eq!(failures_from(&app, &client, "127.0.0.2").await, before);
    // And the owner is still served elsewhere afterwards.
    let again = post_as(&owner, &app, "/oauth2/token", &client, &form).await;
    assert_eq!(again.status(), 200);
}

/// Attacker text that must never come back in an error (ER-01).
const MARKER: &str = "ZZmarker9";

// SECURITY-CASES ER-01: request input (parameter names and values,
// repeated or unknown) never appears in an error body of /token,
// /introspect or /revoke.
#[tokio::test]
async fn back_channel_errors_never_echo_request_input() {
    let (app, client, _) = with_tokens().await;
    let name = format!("<b>{MARKER}</b>");
    let value = format!("{MARKER} \"'><svg onload=x>");
    let mut forms: Vec<Vec<(&str, &str)>> = vec![
        // Repeated unknown and repeated known parameters.
        vec![
            ("grant_type", "client_credentials"),
            (&name, "1"),
            (&name, "2"),
        ],
        vec![("grant_type", &value), ("grant_type", &value)],
        vec![
            ("grant_type", "client_credentials"),
            ("scope", &value),
            ("scope", &value),
        ],
        // Bad values of known parameters, and unknown ones.
        vec![("grant_type", &value)],
        vec![
            ("grant_type", "client_credentials"),
            ("scope", &value),
            (&name, &value),
        ],
        vec![("grant_type", "client_credentials"), ("resource", &value)],
        vec![
            ("grant_type", "authorization_code"),
            ("code", &value),
            ("redirect_uri", &value),
        ],
        vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", &value),
            ("scope", &value),
        ],
        vec![("token", &value), ("token", &value)],
        vec![
            ("token", &value),
            ("token_type_hint", &value),
            (&name, &value),
        ],
    ];
    let impostor = TestClient {
        id: format!("{MARKER}-client"),
        ..client.clone()
    };
    let mut checked = 0;
    for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        for form in forms.iter_mut() {
            for caller in [&client, &impostor] {
                let response = post_as(&app.client, &app, path, caller, form).await;
                let status = response.status();
                let text = response.text().await.expect("body");
                assert!(status.as_u16() < 500, "{path} {form:?}: {status}");
                assert!(
                    !text
                        .to_ascii_lowercase()
                        .contains(&MARKER.to_ascii_lowercase()),
                    "{path} echoed request input: {text}"
                );
                if status.is_client_error() {
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 20, "most of these are errors: {checked}");
}
