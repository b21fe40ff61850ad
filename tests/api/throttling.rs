//! SECURITY-CASES LG-02, LG-03: failed sign-ins are throttled per account and
//! per client address, with counters in the database.

use diesel::prelude::*;
use tessera::storage::StorageError;
use tessera::storage::schema::throttles;

use crate::helpers::{PASSWORD, spawn_app, spawn_app_with};

async fn failures(app: &crate::helpers::TestApp, key: &str) -> i32 {
    let key = key.to_owned();
    app.db
        .run(move |conn| {
            Ok::<_, StorageError>(
                throttles::table
                    .find(key)
                    .select(throttles::failures)
                    .first::<i32>(conn)
                    .optional()?
                    .unwrap_or(0),
            )
        })
        .await
        .expect("read counter")
}

// SECURITY-CASES LG-02
#[tokio::test]
async fn an_account_locks_after_repeated_failures_even_for_the_right_password() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let max = app.settings.throttle.account_max_failures;
    for attempt in 1..=max {
        let response = app.login("alice", "wrong password").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let locked = app.login("alice", PASSWORD).await;
    assert_eq!(
        locked.status(),
        429,
        "the right password is refused during the lock"
    );
    let retry_after: i64 = locked.headers()["retry-after"]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("seconds");
    assert!(retry_after > 0 && retry_after <= app.settings.throttle.max_lock_secs);
    assert!(
        locked
            .text()
            .await
            .expect("body")
            .contains("Too many failed attempts")
    );
    assert!(app.session_cookie().is_none());
}

// SECURITY-CASES LG-02
#[tokio::test]
async fn a_name_that_does_not_exist_is_throttled_the_same_way() {
    let app = spawn_app().await;
    let max = app.settings.throttle.account_max_failures;
    for _ in 0..max {
        assert_eq!(app.login("ghost", "wrong password").await.status(), 401);
    }
    assert_eq!(app.login("ghost", "wrong password").await.status(), 429);
}

// SECURITY-CASES LG-02
#[tokio::test]
async fn one_address_trying_many_names_is_throttled() {
    let app = spawn_app_with(|s| s.throttle.ip_max_failures = 3).await;
    app.create_user("alice", PASSWORD).await;
    for name in ["a1", "a2", "a3"] {
        assert_eq!(app.login(name, "wrong password").await.status(), 401);
    }
    let response = app.login("alice", PASSWORD).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_successful_sign_in_resets_the_account_counter() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(app.login("alice", "wrong password").await.status(), 401);
    }
    assert_eq!(failures(&app, "account:alice").await, 2);
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    assert_eq!(failures(&app, "account:alice").await, 0);
}

// SECURITY-CASES LG-03
#[tokio::test]
async fn fifty_parallel_failures_count_exactly_fifty_and_lock_the_account() {
    let app = spawn_app_with(|s| s.throttle.ip_max_failures = 1000).await;
    app.create_user("alice", PASSWORD).await;
    let mut attempts = Vec::new();
    for _ in 0..50 {
        let browser = app.new_browser();
        attempts.push(async move {
            let response = browser.login("alice", "wrong password").await;
            response.status().as_u16()
        });
    }
    let statuses = futures_util::future::join_all(attempts).await;
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(failures(&app, "account:alice").await, 50);
    assert_eq!(app.login("alice", PASSWORD).await.status(), 429);
}

// Behind a trusted proxy the client address comes from X-Forwarded-For;
// from anyone else the header is ignored (it could be forged).
#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    use crate::helpers::csrf_token;
    let trusted = spawn_app_with(|s| {
        s.throttle.ip_max_failures = 2;
        s.server.trusted_proxies = vec!["127.0.0.1".parse().expect("IP")];
    })
    .await;
    let attempt = |app: &crate::helpers::TestApp, forwarded: &'static str| {
        let browser = app.new_browser();
        async move {
            let csrf = csrf_token(&browser.get_html("/login").await);
            browser
                .client
                .post(browser.url("/login"))
                .header("x-forwarded-for", forwarded)
                .form(&[
                    ("username", "nobody"),
                    ("password", "wrong password"),
                    ("csrf_token", csrf.as_str()),
                ])
                .send()
                .await
                .expect("POST")
                .status()
                .as_u16()
        }
    };
    // Two failures from 203.0.113.1 lock that address, not 203.0.113.2.
    assert_eq!(attempt(&trusted, "203.0.113.1").await, 401);
    assert_eq!(attempt(&trusted, "203.0.113.1").await, 401);
    assert_eq!(failures(&trusted, "ip:203.0.113.1").await, 2);
    assert_eq!(
        failures(&trusted, "ip:127.0.0.1").await,
        0,
        "the proxy itself is not blamed"
    );

    let untrusted = spawn_app_with(|s| s.throttle.ip_max_failures = 2).await;
    assert_eq!(attempt(&untrusted, "203.0.113.9").await, 401);
    assert_eq!(
        failures(&untrusted, "ip:203.0.113.9").await,
        0,
        "a forged header is ignored"
    );
    assert_eq!(failures(&untrusted, "ip:127.0.0.1").await, 1);
}
