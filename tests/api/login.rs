use crate::helpers::{PASSWORD, csrf_token, location, set_cookie, spawn_app};

#[tokio::test]
async fn signing_in_with_the_right_password_opens_the_account_page() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let response = app.login("Alice", PASSWORD).await;
    assert_eq!(
        response.status(),
        303,
        "AZ-04: 303 after a form post, never 307"
    );
    assert_eq!(location(&response), "/account");
    let account = app.get("/account").await;
    assert_eq!(account.status(), 200);
    assert!(account.text().await.expect("body").contains("alice"));
}

#[tokio::test]
async fn the_account_page_sends_strangers_to_sign_in_and_back() {
    let app = spawn_app().await;
    let response = app.get("/account").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login?return_to=%2Faccount");
    assert_eq!(location(&app.get("/").await), "/account");
}

// SECURITY-CASES LG-01
#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let wrong_password = app.login("alice", "wrong password!").await;
    let unknown_user = app.new_browser().login("alice", "wrong password!").await;
    let nobody = app
        .new_browser()
        .login("nobody-here", "wrong password!")
        .await;

    assert_eq!(wrong_password.status(), 401);
    assert_eq!(nobody.status(), 401);
    let header_names = |r: &reqwest::Response| {
        let mut names: Vec<String> = r.headers().keys().map(|k| k.to_string()).collect();
        names.retain(|n| {
            n != "x-request-id" && n != "date" && n != "set-cookie" && n != "content-length"
        });
        names.sort();
        names
    };
    assert_eq!(header_names(&wrong_password), header_names(&nobody));
    let strip = |html: String, name: &str| {
        html.replace(&csrf_token(&html), "CSRF")
            .replace(name, "NAME")
    };
    let a = strip(wrong_password.text().await.expect("body"), "alice");
    let b = strip(nobody.text().await.expect("body"), "nobody-here");
    assert_eq!(
        a, b,
        "bodies differ only in the CSRF token and the echoed name"
    );
    assert!(a.contains("The username or password is incorrect."));
    drop(unknown_user);
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let name = tessera::domain::Username::parse("alice").expect("valid");
    tessera::auth::admin::set_disabled(&app.db, name, true)
        .await
        .expect("disabled");
    let response = app.login("alice", PASSWORD).await;
    assert_eq!(response.status(), 401);
    assert!(set_cookie(response.headers(), "tessera_session").is_none());
}

// SECURITY-CASES LG-04
#[tokio::test]
async fn long_and_non_ascii_passwords_work_through_the_form() {
    let app = spawn_app().await;
    let password = "pässwörd-ünïcødé-".repeat(4);
    app.create_user("alice", &password).await;
    assert_eq!(app.login("alice", &password).await.status(), 303);
    let mut shorter = password.clone();
    shorter.pop();
    assert_eq!(
        app.new_browser().login("alice", &shorter).await.status(),
        401
    );
}

// SECURITY-CASES CS-06
#[tokio::test]
async fn return_to_only_accepts_same_origin_paths() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    for (return_to, expected) in [
        ("/account?tab=1", "/account?tab=1"),
        ("https://evil.example", "/account"),
        ("//evil.example", "/account"),
        ("/\\evil.example", "/account"),
    ] {
        let browser = app.new_browser();
        let csrf = browser.login_csrf().await;
        let response = browser
            .post_form(
                "/login",
                &[
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("csrf_token", &csrf),
                    ("return_to", return_to),
                ],
            )
            .await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), expected, "return_to={return_to}");
    }
}

// SECURITY-CASES CS-05
#[tokio::test]
async fn login_hint_and_return_to_are_escaped_in_the_page() {
    let app = spawn_app().await;
    let html = app
        .get_html("/login?login_hint=%22%27%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E&return_to=/x%22%3E%3Cscript%3E")
        .await;
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("value=\"&#34;&#39;&#62;&#60;script&#62;alert(1)&#60;/script&#62;\""),
        "{html}"
    );
}
