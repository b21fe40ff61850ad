//! SECURITY-CASES LG-02, LG-03: failed sign-ins are throttled per account and
//! per client address, with counters in the database.

use diesel::prelude::*;
use tessera::storage::StorageError;
use tessera::storage::schema::throttles;

use crate::helpers::{PASSWORD, TestBrowser, csrf_token, set_cookie, spawn_app, spawn_app_with};

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

/// How many audit events named `event` were written.
async fn audit_count(app: &crate::helpers::TestApp, event: &'static str) -> usize {
    app.db
        .run(move |conn| tessera::storage::audit::list(conn, 0, None, None, 10_000))
        .await
        .expect("read the audit log")
        .iter()
        .filter(|row| row.event == event)
        .count()
}

/// A browser connecting from its own loopback address (127.0.0.`host`): the
/// server keys the address throttle by the TCP peer.
fn browser_from(app: &crate::helpers::TestApp, host: u8) -> TestBrowser {
    let cookies = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(cookies.clone())
        .local_address(std::net::IpAddr::from([127, 0, 0, host]))
        .build()
        .expect("HTTP client");
    TestBrowser {
        address: app.address.clone(),
        client,
        cookies,
    }
}

/// Ends the browser's session through the account page's sign-out form.
async fn sign_out(browser: &TestBrowser) {
    let csrf = csrf_token(&browser.get_html("/account").await);
    let response = browser.post_form("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(response.status(), 303);
    assert!(browser.session_cookie().is_none(), "signed out");
}

// SECURITY-CASES LG-03: the lock holds against a parallel burst carrying
// the right password: nothing signs in, nothing is even checked.
#[tokio::test]
async fn a_locked_account_refuses_a_parallel_burst_with_the_right_password() {
    let app = spawn_app_with(|s| s.throttle.ip_max_failures = 1000).await;
    app.create_user("alice", PASSWORD).await;
    let max = app.settings.throttle.account_max_failures;
    for _ in 0..max {
        assert_eq!(app.login("alice", "wrong password").await.status(), 401);
    }
    let browsers: Vec<TestBrowser> = (0..50).map(|_| app.new_browser()).collect();
    let attempts = browsers.iter().map(|browser| async move {
        let response = browser.login("alice", PASSWORD).await;
        let cookie = set_cookie(response.headers(), "tessera_session");
        (response.status().as_u16(), cookie)
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    for (status, cookie) in &outcomes {
        assert_eq!(*status, 429, "{outcomes:?}");
        assert!(cookie.is_none(), "no session for a locked account");
    }
    assert!(browsers.iter().all(|b| b.session_cookie().is_none()));
    assert_eq!(audit_count(&app, "sign_in.succeeded").await, 0);
    assert_eq!(audit_count(&app, "sign_in.failed").await, max as usize);
    assert_eq!(audit_count(&app, "sign_in.throttled").await, 50);
}

// SECURITY-CASES LG-03: of a parallel burst of wrong passwords before the
// limit, only the limit is checked (each attempt is counted before the
// hash); the others are refused unchecked, and the right password after
// them is refused too.
#[tokio::test]
async fn a_parallel_burst_of_wrong_passwords_checks_at_most_the_limit() {
    let app = spawn_app_with(|s| s.throttle.ip_max_failures = 1000).await;
    app.create_user("alice", PASSWORD).await;
    let max = app.settings.throttle.account_max_failures as usize;
    let browsers: Vec<TestBrowser> = (0..50).map(|_| app.new_browser()).collect();
    let attempts = browsers.iter().map(|browser| async move {
        browser
            .login("alice", "wrong password")
            .await
            .status()
            .as_u16()
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (max, 50 - max), "{statuses:?}");
    assert_eq!(audit_count(&app, "sign_in.failed").await, max);
    assert_eq!(audit_count(&app, "sign_in.throttled").await, 50 - max);
    assert_eq!(failures(&app, "account:alice").await, 50);
    assert_eq!(app.login("alice", PASSWORD).await.status(), 429);
    assert_eq!(audit_count(&app, "sign_in.succeeded").await, 0);
}

// SECURITY-CASES LG-03: a success gives the address back the one count it
// reserved (never below zero) and clears the account's counter.
#[tokio::test]
async fn a_success_gives_its_reserved_count_back_to_the_address() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    assert_eq!(app.login("bob", "wrong password").await.status(), 401);
    assert_eq!(failures(&app, "ip:127.0.0.1").await, 1);
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    assert_eq!(
        failures(&app, "ip:127.0.0.1").await,
        1,
        "only its own count"
    );
    assert_eq!(failures(&app, "account:alice").await, 0);
    let second = app.new_browser();
    assert_eq!(second.login("alice", PASSWORD).await.status(), 303);
    let third = app.new_browser();
    assert_eq!(third.login("alice", PASSWORD).await.status(), 303);
    assert_eq!(failures(&app, "ip:127.0.0.1").await, 1);
}

// SECURITY-CASES LG-02 (reconsidered): failures from one address lock the
// account for every unknown browser, but not for the owner's browser that
// signed in before; that browser's own failures still lock it.
#[tokio::test]
async fn a_browser_that_signed_in_before_is_not_locked_out_by_others() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    app.create_user("bob", PASSWORD).await;
    let max = app.settings.throttle.account_max_failures;

    let owner = browser_from(&app, 2);
    let first = owner.login("alice", PASSWORD).await;
    assert_eq!(first.status(), 303);
    let remembered =
        set_cookie(first.headers(), "tessera_browser").expect("a known-browser cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(remembered.contains(flag), "{remembered}");
    }
    sign_out(&owner).await;

    let attacker = browser_from(&app, 3);
    for _ in 0..max {
        assert_eq!(
            attacker.login("alice", "wrong password").await.status(),
            401
        );
    }
    // (a) a fresh browser with the right password is refused.
    let stranger = browser_from(&app, 4);
    assert_eq!(stranger.login("alice", PASSWORD).await.status(), 429);
    // A browser known to bob is a stranger to alice.
    let bobs = browser_from(&app, 5);
    assert_eq!(bobs.login("bob", PASSWORD).await.status(), 303);
    sign_out(&bobs).await;
    assert_eq!(bobs.login("alice", PASSWORD).await.status(), 429);
    assert_eq!(failures(&app, "account:alice").await as u32, max + 2);

    // (b) the owner's browser gets in with the right password, and the
    // account-wide lock against everyone else stays.
    assert_eq!(owner.login("alice", PASSWORD).await.status(), 303);
    assert!(owner.session_cookie().is_some());
    assert_eq!(failures(&app, "account:alice").await as u32, max + 2);
    assert_eq!(stranger.login("alice", PASSWORD).await.status(), 429);
    sign_out(&owner).await;

    // (c) the owner's browser's own wrong passwords lock it after the limit.
    for attempt in 1..=max {
        let response = owner.login("alice", "wrong password").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    assert_eq!(owner.login("alice", PASSWORD).await.status(), 429);
    assert!(owner.session_cookie().is_none());
}

// SECURITY-CASES LG-02: a planted or made-up known-browser cookie is
// worth nothing.
#[tokio::test]
async fn a_made_up_known_browser_cookie_does_not_lift_the_lock() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let max = app.settings.throttle.account_max_failures;
    let attacker = browser_from(&app, 3);
    for _ in 0..max {
        assert_eq!(
            attacker.login("alice", "wrong password").await.status(),
            401
        );
    }
    let planted = browser_from(&app, 6);
    let url = app.address.parse().expect("URL");
    planted.cookies.add_cookie_str(
        "tessera_browser=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; Path=/",
        &url,
    );
    assert_eq!(planted.login("alice", PASSWORD).await.status(), 429);
}

// SECURITY-CASES LG-02: the address lock applies to known browsers too.
#[tokio::test]
async fn a_known_browser_is_not_held_by_its_address_lock() {
    // Outside attack, finding 5: one stranger behind the owner's NAT must
    // not lock the owner out of the browser she always uses.
    let app = spawn_app_with(|s| s.throttle.ip_max_failures = 3).await;
    app.create_user("alice", PASSWORD).await;
    let owner = browser_from(&app, 2);
    assert_eq!(owner.login("alice", PASSWORD).await.status(), 303);
    sign_out(&owner).await;
    let stranger = browser_from(&app, 2);
    for name in ["a1", "a2", "a3"] {
        assert_eq!(stranger.login(name, "wrong password").await.status(), 401);
    }
    assert_eq!(
        stranger.login("alice", PASSWORD).await.status(),
        429,
        "the address is locked for everyone else"
    );
    assert_eq!(owner.login("alice", PASSWORD).await.status(), 303);
}

// Outside attack, finding 1: known-browser tokens made with the old
// password buy no guesses at the new one, and a password holder cannot mint
// browsers without bound.
#[tokio::test]
async fn a_new_password_forgets_known_browsers_and_each_account_keeps_a_few() {
    let app = spawn_app_with(|s| s.throttle.ip_max_failures = 1000).await;
    app.create_user("alice", PASSWORD).await;
    let mut known = Vec::new();
    for _ in 0..8 {
        let browser = app.new_browser();
        assert_eq!(browser.login("alice", PASSWORD).await.status(), 303);
        sign_out(&browser).await;
        known.push(browser);
    }
    assert_eq!(
        known_browser_rows(&app).await,
        5,
        "the newest five are kept"
    );
    // The account is locked by a stranger: the five kept browsers still get
    // in, the three forgotten ones are strangers again.
    let max = app.settings.throttle.account_max_failures;
    for _ in 0..max {
        assert_eq!(app.login("alice", "wrong password").await.status(), 401);
    }
    let mut still_known = Vec::new();
    let mut strangers = 0;
    for browser in &known {
        match browser.login("alice", PASSWORD).await.status().as_u16() {
            303 => {
                sign_out(browser).await;
                still_known.push(browser);
            }
            429 => strangers += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((still_known.len(), strangers), (5, 3));

    let name = tessera::domain::Username::parse("alice").expect("name");
    tessera::auth::admin::set_password(
        &app.db,
        name,
        tessera::domain::Password::presented("a brand new password".to_owned()),
        false,
    )
    .await
    .expect("password set");
    assert_eq!(known_browser_rows(&app).await, 0);
    assert_eq!(
        still_known[0]
            .login("alice", "a brand new password")
            .await
            .status(),
        429,
        "after the reset it is a stranger: the account lock holds it"
    );
}

// Outside attack, finding 1: a known browser's failures count toward the
// account as well, so several of them cannot multiply the guesses.
#[tokio::test]
async fn a_known_browsers_failures_also_count_toward_the_account() {
    let app = spawn_app_with(|s| s.throttle.ip_max_failures = 1000).await;
    app.create_user("alice", PASSWORD).await;
    let owner = app.new_browser();
    assert_eq!(owner.login("alice", PASSWORD).await.status(), 303);
    sign_out(&owner).await;
    let max = app.settings.throttle.account_max_failures;
    for _ in 0..max {
        assert_eq!(owner.login("alice", "wrong password").await.status(), 401);
    }
    assert_eq!(
        app.new_browser().login("alice", PASSWORD).await.status(),
        429,
        "strangers are locked by the known browser's failures too"
    );
}

async fn known_browser_rows(app: &crate::helpers::TestApp) -> i64 {
    app.db
        .run(|conn| {
            Ok::<_, StorageError>(
                tessera::storage::schema::known_browsers::table
                    .count()
                    .get_result::<i64>(conn)?,
            )
        })
        .await
        .expect("count")
}

// SECURITY-CASES LG-03: with every hasher busy past the wait, sign-in
// answers 503 with Retry-After on the sign-in page (never a 500), and the
// unchecked attempt is not counted against anyone.
#[tokio::test]
async fn sign_ins_beyond_the_hashers_get_503_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.accounts.max_concurrent_password_hashes = 1;
        s.accounts.password_hash_wait_ms = 0;
        s.throttle.ip_max_failures = 1000;
    })
    .await;
    let browsers: Vec<TestBrowser> = (0..30).map(|_| app.new_browser()).collect();
    let attempts = browsers.iter().enumerate().map(|(i, browser)| async move {
        let response = browser.login(&format!("ghost{i}"), "wrong password").await;
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let body = response.text().await.expect("body");
        (status, retry_after, body)
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    let busy: Vec<_> = outcomes.iter().filter(|(s, ..)| *s == 503).collect();
    assert!(
        outcomes.iter().all(|(s, ..)| *s == 401 || *s == 503),
        "{:?}",
        outcomes.iter().map(|(s, ..)| s).collect::<Vec<_>>()
    );
    assert!(!busy.is_empty(), "one hasher cannot take 30 at once");
    for (_, retry_after, body) in &busy {
        assert!(retry_after);
        assert!(body.contains("try again in a few seconds"), "{body}");
        assert!(
            body.contains("name=\"csrf_token\""),
            "the form is shown again"
        );
    }
    let checked = outcomes.iter().filter(|(s, ..)| *s == 401).count();
    assert_eq!(failures(&app, "ip:127.0.0.1").await as usize, checked);
}

// SECURITY-CASES LG-02: only the SHA-256 of the known-browser token is
// stored, bound to the user, and expired rows are pruned.
#[tokio::test]
async fn known_browser_tokens_are_stored_as_digests_and_pruned_when_expired() {
    use tessera::storage::schema::known_browsers;
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let response = app.login("alice", PASSWORD).await;
    assert_eq!(response.status(), 303);
    let cookie = set_cookie(response.headers(), "tessera_browser").expect("cookie");
    let token = cookie["tessera_browser=".len()..]
        .split(';')
        .next()
        .expect("value")
        .to_owned();
    let rows = || async {
        app.db
            .run(|conn| {
                Ok::<_, StorageError>(
                    known_browsers::table
                        .select(known_browsers::token_hash)
                        .load::<String>(conn)?,
                )
            })
            .await
            .expect("read known browsers")
    };
    let stored = rows().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0],
        tessera::domain::SecretToken::from_presented(token.clone())
            .digest()
            .as_str()
    );
    assert!(!stored[0].contains(&token));
    let after_expiry = tessera::domain::now() + app.settings.accounts.known_browser_ttl_secs + 1;
    tessera::auth::prune(&app.db, &app.settings, after_expiry)
        .await
        .expect("prune");
    assert!(rows().await.is_empty());
}

// Outside attack, finding 2: forwarded entries with a port (as some load
// balancers write them) are the client's address, never the proxy's: strangers
// cannot lock every forwarded client out under the proxy's key.
#[tokio::test]
async fn forwarded_entries_with_ports_count_as_their_own_clients() {
    let app = spawn_app_with(|s| {
        s.server.trusted_proxies = vec!["127.0.0.1".parse().expect("IP")];
        s.throttle.ip_max_failures = 3;
    })
    .await;
    app.create_user("kate", PASSWORD).await;
    let login_from = |forwarded: &'static str, username: &'static str, password: &'static str| {
        let browser = app.new_browser();
        async move {
            let csrf = browser.login_csrf().await;
            browser
                .client
                .post(browser.url("/login"))
                .header("x-forwarded-for", forwarded)
                .form(&[
                    ("username", username),
                    ("password", password),
                    ("csrf_token", &csrf),
                ])
                .send()
                .await
                .expect("POST")
                .status()
                .as_u16()
        }
    };
    for name in ["s1", "s2", "s3"] {
        assert_eq!(login_from("10.120.3.1:40003", name, "wrong").await, 401);
    }
    assert_eq!(
        login_from("10.120.3.1:40004", "kate", PASSWORD).await,
        429,
        "the guessing address is locked, whatever its port"
    );
    assert_eq!(
        login_from("[2001:db8::1]:443", "kate", PASSWORD).await,
        303,
        "another forwarded client is not"
    );
}
