//! OpenID Connect: a real relying party (the `openidconnect` crate) runs
//! discovery, the code + PKCE flow with a nonce, verifies the ID token with
//! the JWKS, calls userinfo and refreshes; then prompt, max_age, userinfo
//! errors and RP-initiated logout.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

use crate::helpers::{
    PASSWORD, TestApp, confidential_client, csrf_token, location, query_of, spawn_app,
};

async fn send(
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    Ok(builder
        .body(response.bytes().await?.to_vec())
        .expect("a valid response"))
}

#[tokio::test]
async fn a_standard_relying_party_signs_a_user_in() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    let registered = app.register(confidential_client()).await;

    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.address.clone()).expect("URL"),
        &send,
    )
    .await
    .expect("discovery works");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.id.clone()),
        Some(ClientSecret::new(
            registered.secret.clone().expect("secret"),
        )),
    )
    .set_redirect_uri(RedirectUrl::new(registered.redirect_uri.clone()).expect("URL"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".to_owned()))
        .add_scope(Scope::new("offline_access".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let page = app
        .get(&format!("{}?{}", url.path(), url.query().expect("query")))
        .await
        .text()
        .await
        .expect("page");
    let answered = app.consent(&page, "allow", None).await;
    let query = query_of(&location(&answered));
    assert_eq!(query["state"], *csrf.secret());

    let http = send;
    let tokens = client
        .exchange_code(AuthorizationCode::new(query["code"].clone()))
        .expect("token endpoint known")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token for openid");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the ID token verifies, nonce included");
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("alice")
    );
    assert!(claims.auth_time().is_some());
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("alg"),
        id_token.signing_key(&verifier).expect("key"),
    )
    .expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&expected_hash), "at_hash");

    let userinfo: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .expect("userinfo endpoint known")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(
        userinfo.preferred_username().map(|u| u.as_str()),
        Some("alice")
    );

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("refresh token"))
        .expect("token endpoint known")
        .request_async(&http)
        .await
        .expect("refresh");
    assert!(
        refreshed.id_token().is_some(),
        "a refresh with openid brings a new ID token"
    );
}

fn authorize_params<'a>(
    client: &'a crate::helpers::TestClient,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "openid profile"),
        ("state", "s"),
        ("nonce", "n-0S6_WzA2Mj"),
    ];
    params.extend_from_slice(extra);
    params
}

async fn id_token_for(app: &TestApp, client: &crate::helpers::TestClient) -> String {
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

// SECURITY-CASES LG-06
#[tokio::test]
async fn prompt_login_asks_again_and_a_different_person_replaces_the_session() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    app.create_user("bob", PASSWORD).await;
    let client = app.register(confidential_client()).await;
    let _ = app.obtain_code(&client, "openid profile", None).await;
    let alice_session = app.session_cookie().expect("alice");

    let response = app
        .authorize(&authorize_params(&client, &[("prompt", "login")]))
        .await;
    assert_eq!(response.status(), 303);
    let to_login = location(&response);
    assert!(
        to_login.starts_with("/login?") && to_login.contains("reauth=1"),
        "{to_login}"
    );
    let page = app.get(&to_login).await;
    assert_eq!(page.status(), 200, "the form is shown although signed in");
    let html = page.text().await.expect("page");
    let return_to = query_of(&format!("http://x{to_login}"))["return_to"].clone();
    assert!(
        !return_to.contains("prompt"),
        "no loop back to prompt=login"
    );
    let signed_in = app
        .post_form(
            "/login",
            &[
                ("username", "bob"),
                ("password", PASSWORD),
                ("csrf_token", &csrf_token(&html)),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(signed_in.status(), 303);
    let bob_session = app.session_cookie().expect("bob");
    assert_ne!(alice_session, bob_session, "a new session id");
    let replay = app.new_browser();
    replay.cookies.add_cookie_str(
        &format!("tessera_session={alice_session}; Path=/"),
        &app.address.parse().expect("URL"),
    );
    assert_eq!(
        replay.get("/account").await.status(),
        303,
        "alice's session is gone"
    );
    // bob has not approved the client: consent is asked of bob, not alice.
    let consent = app.get(&return_to).await;
    assert_eq!(consent.status(), 200);
    assert!(consent.text().await.expect("page").contains("bob"));
}

#[tokio::test]
async fn max_age_and_prompt_none_follow_the_session_age() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let _ = app.obtain_code(&client, "openid profile", None).await;
    // Granted before and freshly signed in: prompt=none gets a code at once.
    let quiet = app
        .authorize(&authorize_params(&client, &[("prompt", "none")]))
        .await;
    assert_eq!(quiet.status(), 302);
    assert!(query_of(&location(&quiet)).contains_key("code"));
    // A new scope cannot be granted silently.
    let mut params = authorize_params(&client, &[("prompt", "none")]);
    params[3] = ("scope", "openid email");
    let consent = app.authorize(&params).await;
    assert_eq!(query_of(&location(&consent))["error"], "consent_required");
    // max_age in the past: sign in again (or login_required with prompt=none).
    use diesel::prelude::*;
    app.db
        .run(|conn| {
            diesel::update(tessera::storage::schema::sessions::table)
                .set(tessera::storage::schema::sessions::auth_time.eq(0_i64))
                .execute(conn)?;
            Ok::<_, tessera::storage::StorageError>(())
        })
        .await
        .expect("age the sign-in");
    let old = app
        .authorize(&authorize_params(&client, &[("max_age", "60")]))
        .await;
    assert!(location(&old).starts_with("/login?"), "re-authentication");
    let silent = app
        .authorize(&authorize_params(
            &client,
            &[("max_age", "60"), ("prompt", "none")],
        ))
        .await;
    assert_eq!(query_of(&location(&silent))["error"], "login_required");
    let bad = app
        .authorize(&authorize_params(&client, &[("max_age", "soon")]))
        .await;
    assert_eq!(query_of(&location(&bad))["error"], "invalid_request");
}

// SECURITY-CASES JW-06
#[tokio::test]
async fn userinfo_accepts_only_live_access_tokens_with_openid() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let code = app.obtain_code(&client, "openid profile", None).await;
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
    let access = body["access_token"].as_str().expect("AT");
    let ok = app
        .client
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .expect("GET");
    assert_eq!(ok.status(), 200);
    let claims: Value = ok.json().await.expect("JSON");
    assert_eq!(claims["preferred_username"], "alice");
    assert!(claims.get("email").is_none(), "no email scope, no email");
    let posted = app
        .client
        .post(app.url("/oauth2/userinfo"))
        .form(&[("access_token", access)])
        .send()
        .await
        .expect("POST");
    assert_eq!(posted.status(), 200);
    // RFC 9110 §11.1: the scheme is case-insensitive, and one parser serves
    // every bearer-protected endpoint.
    for scheme in ["bearer", "BEARER", "Bearer  "] {
        let response = app
            .client
            .get(app.url("/oauth2/userinfo"))
            .header("Authorization", format!("{scheme} {access}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200, "{scheme:?}");
    }

    let none = app
        .client
        .get(app.url("/oauth2/userinfo"))
        .send()
        .await
        .expect("GET");
    assert_eq!(none.status(), 401);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .expect("ASCII")
            .starts_with("Bearer")
    );
    let id_token = body["id_token"].as_str().expect("ID token");
    for bad in [
        id_token,
        "garbage",
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.",
    ] {
        let response = app
            .client
            .get(app.url("/oauth2/userinfo"))
            .bearer_auth(bad)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 401, "{bad:.20}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .expect("ASCII")
                .contains("invalid_token")
        );
    }
    let in_query = app
        .get(&format!("/oauth2/userinfo?access_token={access}"))
        .await;
    assert_eq!(in_query.status(), 401, "never read from the URL");

    let cc: Value = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "profile")],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let machine = app
        .client
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(cc["access_token"].as_str().expect("AT"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        machine.status(),
        403,
        "no user, no openid: insufficient_scope"
    );
}

#[tokio::test]
async fn rp_initiated_logout_returns_only_to_registered_addresses() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let mut registration = confidential_client();
    registration.post_logout_redirect_uris = vec!["https://client.example/bye".to_owned()];
    let client = app.register(registration).await;
    let id_token = id_token_for(&app, &client).await;

    // An ID token tessera did not sign is refused with a page, not followed.
    let forged = app.get("/oauth2/logout?id_token_hint=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.&post_logout_redirect_uri=https%3A%2F%2Fclient.example%2Fbye").await;
    assert_eq!(forged.status(), 400);
    assert!(forged.headers().get("location").is_none());
    let bad = app
        .get(&format!("/oauth2/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"))
        .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(app.get("/account").await.status(), 200, "still signed in");

    let no_hint = app
        .get(&format!("/oauth2/logout?client_id={}&post_logout_redirect_uri=https%3A%2F%2Fclient.example%2Fbye&state=z", client.id))
        .await;
    assert_eq!(no_hint.status(), 200, "without a hint tessera asks first");
    let html = no_hint.text().await.expect("page");
    let confirmed = app
        .post_form(
            "/oauth2/logout",
            &[
                ("csrf_token", &csrf_token(&html)),
                ("client_id", &client.id),
                ("post_logout_redirect_uri", "https://client.example/bye"),
                ("state", "z"),
            ],
        )
        .await;
    assert_eq!(confirmed.status(), 303);
    assert_eq!(location(&confirmed), "https://client.example/bye?state=z");
    assert_eq!(app.get("/account").await.status(), 303, "signed out");

    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    let id_token = id_token_for(&app, &client).await;
    let hinted = app
        .get(&format!("/oauth2/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fclient.example%2Fbye&state=q"))
        .await;
    assert_eq!(
        hinted.status(),
        303,
        "a valid hint for this user signs out at once"
    );
    assert_eq!(location(&hinted), "https://client.example/bye?state=q");
    assert_eq!(app.get("/account").await.status(), 303);
}

#[tokio::test]
async fn discovery_describes_the_openid_provider() {
    let app = spawn_app().await;
    let doc: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(doc["issuer"], app.address.as_str());
    assert_eq!(
        doc["userinfo_endpoint"],
        format!("{}/oauth2/userinfo", app.address)
    );
    assert_eq!(
        doc["end_session_endpoint"],
        format!("{}/oauth2/logout", app.address)
    );
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    // Only what tessera does: an empty list would claim a capability with
    // no values; userinfo answers plain JSON.
    assert!(doc.get("userinfo_signing_alg_values_supported").is_none());
    assert_eq!(
        doc["prompt_values_supported"],
        serde_json::json!(["none", "login", "consent", "select_account"])
    );
    let oauth: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .expect("JSON");
    for key in [
        "issuer",
        "token_endpoint",
        "authorization_endpoint",
        "jwks_uri",
        "grant_types_supported",
    ] {
        assert_eq!(doc[key], oauth[key], "{key} agrees with RFC 8414 metadata");
    }
}
