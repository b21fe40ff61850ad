use diesel::prelude::*;
use tessera::storage::schema::users;

use crate::helpers::{PASSWORD, csrf_token, location, set_cookie, spawn_app, spawn_app_with};

async fn user_count(app: &crate::helpers::TestApp) -> i64 {
    app.db
        .run(|conn| Ok::<_, tessera::storage::StorageError>(users::table.count().get_result(conn)?))
        .await
        .expect("count users")
}

#[tokio::test]
async fn signing_up_creates_the_account_and_signs_in() {
    let app = spawn_app().await;
    let response = app.signup("Alice", PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/account");
    assert!(set_cookie(response.headers(), "tessera_session").is_some());

    let account = app.get_html("/account").await;
    assert!(
        account.contains("alice"),
        "usernames are stored lower-cased"
    );
    assert_eq!(user_count(&app).await, 1);
}

#[tokio::test]
async fn invalid_sign_up_fields_are_reported_and_nothing_is_stored() {
    let app = spawn_app().await;
    let csrf = csrf_token(&app.get_html("/signup").await);
    let response = app
        .post_form(
            "/signup",
            &[
                ("username", "a"),
                ("email", "not-an-email"),
                ("password", "short"),
                ("password_confirmation", "different"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.expect("body");
    assert!(html.contains("Use 3 to 32 characters."));
    assert!(html.contains("Enter an address such as name@example.com."));
    assert!(html.contains("Use at least 8 characters."));
    assert!(html.contains("The two passwords do not match."));
    assert!(
        html.contains("value=\"not-an-email\""),
        "typed values are kept"
    );
    assert_eq!(user_count(&app).await, 0);
}

#[tokio::test]
async fn a_taken_username_is_refused_whatever_its_case() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let response = app.signup("ALICE", PASSWORD).await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("This username is taken")
    );
    assert_eq!(user_count(&app).await, 1);
}

#[tokio::test]
async fn sign_up_can_be_switched_off() {
    let app = spawn_app_with(|s| s.accounts.signup_enabled = false).await;
    assert_eq!(app.get("/signup").await.status(), 404);
    let login = app.get_html("/login").await;
    assert!(!login.contains("Create an account"));
}

// SECURITY-CASES CS-05
#[tokio::test]
async fn sign_up_echoes_typed_values_html_escaped() {
    let app = spawn_app().await;
    let csrf = csrf_token(&app.get_html("/signup").await);
    let payload = "\"'><svg onload=alert(1)>";
    let response = app
        .post_form(
            "/signup",
            &[
                ("username", payload),
                ("display_name", payload),
                ("email", payload),
                ("password", "x"),
                ("password_confirmation", "x"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.expect("body");
    assert!(!html.contains("<svg"), "the payload must be escaped");
    assert!(html.contains("&lt;svg") || html.contains("&#60;svg"));
}

#[tokio::test]
async fn sign_up_is_limited_per_client_address() {
    let app = spawn_app_with(|s| s.accounts.signups_per_ip_per_hour = 2).await;
    assert_eq!(app.signup("user1", PASSWORD).await.status(), 303);
    let other = app.new_browser();
    assert_eq!(other.signup("user2", PASSWORD).await.status(), 303);
    let third = app.new_browser();
    let response = third.signup("user3", PASSWORD).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(user_count(&app).await, 2);
}

// "This username is taken" tells that a name exists (usernames are public
// handles here, see docs/security.md), so every such answer counts against
// the sign-up limit of the address like any other sign-up.
#[tokio::test]
async fn taken_username_answers_count_against_the_sign_up_limit() {
    let app = spawn_app_with(|s| s.accounts.signups_per_ip_per_hour = 3).await;
    app.create_user("alice", PASSWORD).await;
    for name in ["alice", "ALICE", "Alice"] {
        let response = app.new_browser().signup(name, PASSWORD).await;
        assert_eq!(response.status(), 400, "{name}");
    }
    let probe = app.new_browser().signup("alice", PASSWORD).await;
    assert_eq!(probe.status(), 429, "the fourth probe is throttled");
    assert!(probe.headers().contains_key("retry-after"));
    let body = probe.text().await.expect("body");
    assert!(!body.contains("taken"), "a throttled answer tells nothing");
    let fresh = app.new_browser().signup("bob", PASSWORD).await;
    assert_eq!(fresh.status(), 429, "nor does a new name get through");
    assert_eq!(user_count(&app).await, 1);
}

// SECURITY-CASES LG-03: sign-up hashes through the same bounded hashers;
// beyond them it answers 503 with Retry-After, never a 500.
#[tokio::test]
async fn sign_ups_beyond_the_hashers_get_503_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.accounts.max_concurrent_password_hashes = 1;
        s.accounts.password_hash_wait_ms = 0;
        s.accounts.signups_per_ip_per_hour = 1000;
    })
    .await;
    let browsers: Vec<_> = (0..20).map(|_| app.new_browser()).collect();
    let attempts = browsers.iter().enumerate().map(|(i, browser)| async move {
        let response = browser.signup(&format!("user{i}"), PASSWORD).await;
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        (status, retry_after)
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    assert!(
        outcomes.iter().all(|(s, _)| *s == 303 || *s == 503),
        "{outcomes:?}"
    );
    assert!(outcomes.iter().any(|(s, _)| *s == 503), "{outcomes:?}");
    assert!(outcomes.iter().filter(|(s, _)| *s == 503).all(|(_, r)| *r));
    let created = outcomes.iter().filter(|(s, _)| *s == 303).count() as i64;
    assert_eq!(user_count(&app).await, created);
}
