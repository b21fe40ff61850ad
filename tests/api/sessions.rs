use diesel::prelude::*;
use tessera::storage::StorageError;
use tessera::storage::schema::sessions;

use crate::helpers::{PASSWORD, csrf_token, set_cookie, spawn_app, spawn_app_with};

async fn age_sessions(app: &crate::helpers::TestApp, by_secs: i64, column_last_seen: bool) {
    app.db
        .run(move |conn| {
            if column_last_seen {
                diesel::update(sessions::table)
                    .set(sessions::last_seen_at.eq(sessions::last_seen_at - by_secs))
                    .execute(conn)?;
            } else {
                diesel::update(sessions::table)
                    .set(sessions::expires_at.eq(sessions::expires_at - by_secs))
                    .execute(conn)?;
            }
            Ok::<_, StorageError>(())
        })
        .await
        .expect("age sessions");
}

async fn stored_session_hashes(app: &crate::helpers::TestApp) -> Vec<String> {
    app.db
        .run(|conn| {
            Ok::<_, StorageError>(
                sessions::table
                    .select(sessions::id_hash)
                    .load::<String>(conn)?,
            )
        })
        .await
        .expect("list sessions")
}

// SECURITY-CASES LG-07
#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_host_wide() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let response = app.login("alice", PASSWORD).await;
    let cookie = set_cookie(response.headers(), "tessera_session").expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    assert!(cookie.len() < 4096);
    let value = app.session_cookie().expect("stored");
    assert_eq!(value.len(), 43, "256 random bits");
    assert!(!cookie.contains("alice"), "no PII in cookies");
}

// SECURITY-CASES LG-07
#[tokio::test]
async fn with_an_https_issuer_cookies_are_secure_and_host_prefixed() {
    let app = spawn_app_with(|s| {
        s.server.issuer = format!("https://{}", s.server.listen).parse().expect("URL");
    })
    .await;
    app.create_user("alice", PASSWORD).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = plain.get(app.url("/login")).send().await.expect("GET");
    assert!(
        page.headers()["strict-transport-security"]
            .to_str()
            .expect("ASCII")
            .contains("max-age=63072000")
    );
    let csrf_cookie = set_cookie(page.headers(), "__Host-tessera_csrf").expect("CSRF cookie");
    assert!(
        csrf_cookie.contains("Secure") && csrf_cookie.contains("HttpOnly"),
        "{csrf_cookie}"
    );
    let csrf_value = csrf_cookie.split(';').next().expect("pair").to_owned();
    let token = csrf_token(&page.text().await.expect("body"));
    let response = plain
        .post(app.url("/login"))
        .header("cookie", csrf_value)
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 303);
    let session = set_cookie(response.headers(), "__Host-tessera_session").expect("session cookie");
    for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(flag), "{flag} missing from {session}");
    }
    assert!(!session.to_ascii_lowercase().contains("domain="));
}

// SECURITY-CASES LG-05
#[tokio::test]
async fn signing_in_replaces_a_planted_session_id() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let planted = "planted-by-attacker-aaaaaaaaaaaaaaaaaaaaaaaaa";
    app.cookies.add_cookie_str(
        &format!("tessera_session={planted}; Path=/"),
        &app.address.parse().expect("URL"),
    );
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    let after = app.session_cookie().expect("session cookie");
    assert_ne!(after, planted);

    // The attacker's copy of the planted id opens nothing.
    let attacker = app.new_browser();
    attacker.cookies.add_cookie_str(
        &format!("tessera_session={planted}; Path=/"),
        &app.address.parse().expect("URL"),
    );
    assert_eq!(attacker.get("/account").await.status(), 303);
}

// SECURITY-CASES LG-05
#[tokio::test]
async fn signing_in_again_ends_the_previous_session() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    app.create_user("bob", PASSWORD).await;
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    let first = app.session_cookie().expect("first session");
    // The sign-in page now redirects, so post the form with the session's token.
    let token = csrf_token(&app.get_html("/account").await);
    let response = app
        .post_form(
            "/login",
            &[
                ("username", "bob"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let second = app.session_cookie().expect("second session");
    assert_ne!(first, second);
    assert!(app.get_html("/account").await.contains("bob"));
    assert_eq!(
        stored_session_hashes(&app).await.len(),
        1,
        "alice's session is gone"
    );
}

// SECURITY-CASES LG-08
#[tokio::test]
async fn a_signed_out_session_cannot_be_used_again() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    let stolen = app.session_cookie().expect("session");
    let token = csrf_token(&app.get_html("/account").await);
    let response = app.post_form("/logout", &[("csrf_token", &token)]).await;
    assert_eq!(response.status(), 303);
    let removal = set_cookie(response.headers(), "tessera_session").expect("cookie removal");
    assert!(removal.contains("Max-Age=0"), "{removal}");

    let replay = app.new_browser();
    replay.cookies.add_cookie_str(
        &format!("tessera_session={stolen}; Path=/"),
        &app.address.parse().expect("URL"),
    );
    assert_eq!(replay.get("/account").await.status(), 303);
    assert!(stored_session_hashes(&app).await.is_empty());
}

// SECURITY-CASES LG-08
#[tokio::test]
async fn disabling_a_user_ends_their_sessions() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    assert_eq!(app.get("/account").await.status(), 200);
    let name = tessera::domain::Username::parse("alice").expect("valid");
    tessera::auth::admin::set_disabled(&app.db, name, true)
        .await
        .expect("disabled");
    assert_eq!(app.get("/account").await.status(), 303);
    assert!(stored_session_hashes(&app).await.is_empty());
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_limit() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;

    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    age_sessions(&app, app.settings.sessions.idle_timeout_secs + 1, true).await;
    assert_eq!(
        app.get("/account").await.status(),
        303,
        "idle session expired"
    );

    let other = app.new_browser();
    assert_eq!(other.login("alice", PASSWORD).await.status(), 303);
    age_sessions(&app, app.settings.sessions.absolute_timeout_secs, false).await;
    assert_eq!(
        other.get("/account").await.status(),
        303,
        "absolute lifetime over"
    );
}

#[tokio::test]
async fn the_database_holds_only_digests_of_session_ids() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    let cookie = app.session_cookie().expect("session");
    let stored = stored_session_hashes(&app).await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], cookie);
    assert_eq!(
        stored[0],
        tessera::domain::TokenDigest::of(cookie.as_bytes()).as_str()
    );
}

#[tokio::test]
async fn the_logout_page_asks_before_signing_out() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    let page = app.get("/logout").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .expect("body")
            .contains("Do you want to sign out")
    );
    assert_eq!(
        app.get("/account").await.status(),
        200,
        "GET does not sign out"
    );
}

// Outside attack, finding 6: signing in over and over cannot grow the
// sessions table without bound; the oldest browsers are signed out first.
#[tokio::test]
async fn one_account_keeps_a_bounded_number_of_sessions() {
    use diesel::prelude::*;
    let app = crate::helpers::spawn_app_with(|s| s.throttle.ip_max_failures = 1000).await;
    app.create_user("bob", crate::helpers::PASSWORD).await;
    let first = app.new_browser();
    assert_eq!(
        first.login("bob", crate::helpers::PASSWORD).await.status(),
        303
    );
    // Make it the oldest beyond doubt (times are whole seconds).
    app.db
        .run(|conn| {
            use tessera::storage::schema::sessions;
            diesel::update(sessions::table)
                .set(sessions::created_at.eq(tessera::domain::now() - 600))
                .execute(conn)
                .map_err(tessera::storage::StorageError::from)
        })
        .await
        .expect("update");
    for _ in 0..60 {
        let browser = app.new_browser();
        assert_eq!(
            browser
                .login("bob", crate::helpers::PASSWORD)
                .await
                .status(),
            303
        );
    }
    let sessions: i64 = app
        .db
        .run(|conn| {
            tessera::storage::schema::sessions::table
                .count()
                .get_result(conn)
                .map_err(tessera::storage::StorageError::from)
        })
        .await
        .expect("count");
    assert_eq!(sessions, 50);
    assert_eq!(
        first.get("/account").await.status(),
        303,
        "the oldest browser was signed out"
    );
}
