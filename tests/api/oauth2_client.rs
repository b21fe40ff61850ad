//! The code + PKCE and refresh flows driven by a real OAuth client library
//! (the `oauth2` crate), the way a third-party Rust app would use tessera.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, TokenUrl,
};

use crate::helpers::{confidential_client, location, query_of, spawn_app};

/// oauth2's HTTP hook, over reqwest.
async fn send(request: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
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
    let mut builder = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder.body(body).expect("a valid response"))
}

#[tokio::test]
async fn the_oauth2_crate_completes_code_with_pkce_and_refresh() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let registered = app.register(confidential_client()).await;
    let client = BasicClient::new(ClientId::new(registered.id.clone()))
        .set_client_secret(ClientSecret::new(
            registered.secret.clone().expect("secret"),
        ))
        .set_auth_uri(AuthUrl::new(app.url("/oauth2/authorize")).expect("URL"))
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).expect("URL"))
        .set_redirect_uri(RedirectUrl::new(registered.redirect_uri.clone()).expect("URL"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".to_owned()))
        .add_scope(Scope::new("offline_access".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    // The user's browser follows the URL and approves.
    let path = format!(
        "{}?{}",
        authorize_url.path(),
        authorize_url.query().expect("query")
    );
    let page = app.get(&path).await.text().await.expect("consent page");
    let answered = app.consent(&page, "allow", None).await;
    let query = query_of(&location(&answered));
    assert_eq!(
        query["state"],
        *csrf.secret(),
        "the client's CSRF state comes back"
    );
    assert_eq!(query["iss"], app.address.as_str());

    let tokens = client
        .exchange_code(AuthorizationCode::new(query["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .expect("the code exchange succeeds");
    assert!(tokens.expires_in().is_some_and(|d| d.as_secs() <= 600));
    let claims = crate::oauth_flow::verify_with_jwks(&app, tokens.access_token().secret()).await;
    assert_eq!(claims["client_id"], registered.id.as_str());

    let refresh_token = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token");
    let refreshed = client
        .exchange_refresh_token(refresh_token)
        .request_async(&send)
        .await
        .expect("the refresh succeeds");
    let rotated = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(rotated.secret(), refresh_token.secret());
    let reuse = client
        .exchange_refresh_token(refresh_token)
        .request_async(&send)
        .await;
    assert!(reuse.is_err(), "the old refresh token is refused");
}
