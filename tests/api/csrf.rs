//! SECURITY-CASES CS-01: forms refuse posts without this browser's token.

use crate::helpers::{PASSWORD, csrf_token, set_cookie, spawn_app};

#[tokio::test]
async fn sign_in_without_a_csrf_token_is_refused() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let _ = app.login_csrf().await;
    let response = app
        .post_form("/login", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), 403);
    assert!(set_cookie(response.headers(), "tessera_session").is_none());
    assert_eq!(app.get("/account").await.status(), 303, "still signed out");
}

#[tokio::test]
async fn a_csrf_token_from_another_browser_is_refused() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let attacker = app.new_browser();
    let attacker_token = attacker.login_csrf().await;
    let _ = app.login_csrf().await;
    let response = app
        .post_form(
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf_token", &attacker_token),
            ],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert!(set_cookie(response.headers(), "tessera_session").is_none());
}

#[tokio::test]
async fn a_post_without_any_cookie_is_refused() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let token = app.login_csrf().await;
    let cookieless = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = cookieless
        .post(app.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_cross_site_origin_is_refused_even_with_a_valid_token() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let token = app.login_csrf().await;
    for (origin, site) in [
        ("https://evil.example", "cross-site"),
        ("https://evil.example", "same-origin"),
        ("http://127.0.0.1", "same-origin"),
        ("null", "cross-site"),
        ("null", "same-site"),
    ] {
        let response = app
            .client
            .post(app.url("/login"))
            .header("origin", origin)
            .header("sec-fetch-site", site)
            .form(&[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .expect("POST");
        assert_eq!(
            response.status(),
            403,
            "Origin {origin}, Sec-Fetch-Site {site}"
        );
        assert!(set_cookie(response.headers(), "tessera_session").is_none());
    }
    let same_origin = app
        .client
        .post(app.url("/login"))
        .header("origin", app.address.clone())
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(same_origin.status(), 303);
}

#[tokio::test]
async fn sign_out_needs_the_session_bound_token() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    let forged = app.post_form("/logout", &[("csrf_token", "forged")]).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(app.get("/account").await.status(), 200, "still signed in");

    let token = csrf_token(&app.get_html("/account").await);
    let response = app.post_form("/logout", &[("csrf_token", &token)]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(app.get("/account").await.status(), 303, "signed out");
}

#[tokio::test]
async fn sign_up_without_a_csrf_token_is_refused() {
    let app = spawn_app().await;
    let _ = app.get_html("/signup").await;
    let response = app
        .post_form(
            "/signup",
            &[
                ("username", "mallory"),
                ("password", PASSWORD),
                ("password_confirmation", PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status(), 403);
}
