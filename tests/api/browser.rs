//! End-to-end in a real browser: headless Chromium driven over WebDriver
//! through sign-up, sign-out and sign-in. It catches what an HTTP client
//! cannot: cookies a browser refuses, a CSP that blocks the stylesheet, a
//! form that does not submit. Screenshots land in `target/screenshots/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::helpers::{PASSWORD, spawn_app};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free port, killed when dropped.
struct Driver {
    process: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn start_driver() -> Option<Driver> {
    if !PathBuf::from(CHROMEDRIVER).exists() || !PathBuf::from(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: install the Debian packages chromium and chromium-driver"
        );
        eprintln!(
            "skipped: {CHROMEDRIVER} or {CHROMIUM} missing (apt-get install chromium chromium-driver)"
        );
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let process = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    Some(Driver {
        process,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn connect(driver: &Driver, profile: &tempfile::TempDir) -> Client {
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--no-first-run", "--window-size=1000,900",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object literal")
    };
    let mut last_error = None;
    for _ in 0..50 {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return client,
            Err(error) => {
                last_error = Some(error);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    panic!("could not start a WebDriver session: {last_error:?}");
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("screenshots"))
        .expect("target directory");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

async fn snap(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn path_of(browser: &Client) -> String {
    browser
        .current_url()
        .await
        .expect("current URL")
        .path()
        .to_owned()
}

/// Waits for an element to appear (after a form post re-renders the page)
/// and returns its text.
async fn text_of_when_present(browser: &Client, selector: &str) -> String {
    for _ in 0..100 {
        if let Ok(element) = browser.find(Locator::Css(selector)).await
            && let Ok(text) = element.text().await
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{selector} never appeared");
}

/// Waits until the browser has navigated to `path` (a click returns before
/// the navigation it starts has finished), then returns the path it is on.
async fn arrive_at(browser: &Client, path: &str) -> String {
    for _ in 0..100 {
        let current = path_of(browser).await;
        let ready = browser
            .execute("return document.readyState;", vec![])
            .await
            .expect("script runs");
        if current == path && ready.as_str() == Some("complete") {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    path_of(browser).await
}

/// Whether the page's stylesheet applied (a CSP mistake would leave the
/// card unstyled).
async fn stylesheet_applied(browser: &Client) -> bool {
    let value = browser
        .execute(
            "return getComputedStyle(document.querySelector('main.card')).borderRadius;",
            vec![],
        )
        .await
        .expect("script runs");
    value.as_str() == Some("10px")
}

#[tokio::test]
async fn a_person_signs_up_signs_out_and_signs_in_with_a_real_browser() {
    let Some(driver) = start_driver() else { return };
    let app = spawn_app().await;
    let profile = tempfile::tempdir().expect("profile directory");
    let browser = connect(&driver, &profile).await;

    browser
        .goto(&app.url("/signup"))
        .await
        .expect("open sign-up");
    assert!(
        stylesheet_applied(&browser).await,
        "the stylesheet is blocked or missing"
    );
    browser
        .find(Locator::Id("username"))
        .await
        .expect("field")
        .send_keys("Alice")
        .await
        .expect("type");
    browser
        .find(Locator::Id("display_name"))
        .await
        .expect("field")
        .send_keys("Alice Liddell")
        .await
        .expect("type");
    browser
        .find(Locator::Id("password"))
        .await
        .expect("field")
        .send_keys(PASSWORD)
        .await
        .expect("type");
    browser
        .find(Locator::Id("password_confirmation"))
        .await
        .expect("field")
        .send_keys(PASSWORD)
        .await
        .expect("type");
    snap(&browser, "signup").await;
    browser
        .find(Locator::Css("button.primary"))
        .await
        .expect("button")
        .click()
        .await
        .expect("submit");
    assert_eq!(arrive_at(&browser, "/account").await, "/account");
    let body = browser
        .find(Locator::Css("main"))
        .await
        .expect("main")
        .text()
        .await
        .expect("text");
    assert!(body.contains("alice"), "{body}");
    snap(&browser, "account").await;

    browser
        .find(Locator::Css("main form button"))
        .await
        .expect("sign out")
        .click()
        .await
        .expect("click");
    assert_eq!(arrive_at(&browser, "/login").await, "/login");

    browser
        .find(Locator::Id("username"))
        .await
        .expect("field")
        .send_keys("alice")
        .await
        .expect("type");
    browser
        .find(Locator::Id("password"))
        .await
        .expect("field")
        .send_keys("wrong password")
        .await
        .expect("type");
    browser
        .find(Locator::Css("button.primary"))
        .await
        .expect("button")
        .click()
        .await
        .expect("submit");
    let alert = text_of_when_present(&browser, ".alert").await;
    assert!(alert.contains("incorrect"), "{alert}");
    snap(&browser, "login-failed").await;

    browser
        .find(Locator::Id("password"))
        .await
        .expect("field")
        .send_keys(PASSWORD)
        .await
        .expect("type");
    browser
        .find(Locator::Css("button.primary"))
        .await
        .expect("button")
        .click()
        .await
        .expect("submit");
    assert_eq!(arrive_at(&browser, "/account").await, "/account");
    snap(&browser, "signed-in").await;

    browser.goto(&app.url("/login")).await.expect("open login");
    assert_eq!(
        arrive_at(&browser, "/account").await,
        "/account",
        "signed-in browsers skip the form"
    );

    browser.close().await.expect("close the session");
}

#[tokio::test]
async fn a_person_approves_part_of_an_apps_request_and_denies_another_in_a_real_browser() {
    let Some(driver) = start_driver() else { return };
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let client = app.register(crate::helpers::public_client()).await;
    // The app's loopback redirect, on a port where something answers (tessera
    // itself, with a 404 page): only the URL matters.
    let port = app.address.rsplit(':').next().expect("port");
    let redirect = format!("http://127.0.0.1:{port}/cb");
    let (_, challenge) = crate::helpers::pkce_pair();
    let authorize = |scope: &str, extra: &str| {
        format!(
            "{}/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=st&code_challenge={challenge}&code_challenge_method=S256{extra}",
            app.address,
            client.id,
            redirect.replace(':', "%3A").replace('/', "%2F"),
            scope.replace(' ', "+"),
        )
    };
    let profile = tempfile::tempdir().expect("profile directory");
    let browser = connect(&driver, &profile).await;

    browser
        .goto(&authorize("openid profile", ""))
        .await
        .expect("open authorize");
    assert_eq!(
        arrive_at(&browser, "/login").await,
        "/login",
        "strangers sign in first"
    );
    snap(&browser, "login").await;
    browser
        .find(Locator::Id("username"))
        .await
        .expect("field")
        .send_keys("alice")
        .await
        .expect("type");
    browser
        .find(Locator::Id("password"))
        .await
        .expect("field")
        .send_keys(PASSWORD)
        .await
        .expect("type");
    browser
        .find(Locator::Css("button.primary"))
        .await
        .expect("button")
        .click()
        .await
        .expect("submit");

    assert_eq!(
        arrive_at(&browser, "/oauth2/authorize").await,
        "/oauth2/authorize"
    );
    let heading = text_of_when_present(&browser, "main h1").await;
    assert_eq!(heading, "Allow Public App?");
    assert!(stylesheet_applied(&browser).await);
    snap(&browser, "consent").await;
    // Untick "profile", then allow.
    let profile_box = browser
        .find(Locator::Css("input[name=scope][value=profile]"))
        .await
        .expect("profile checkbox");
    profile_box.click().await.expect("untick");
    browser
        .find(Locator::Css("button[value=allow]"))
        .await
        .expect("allow")
        .click()
        .await
        .expect("allow");
    assert_eq!(arrive_at(&browser, "/cb").await, "/cb");
    let landed = browser.current_url().await.expect("URL");
    let query: std::collections::HashMap<_, _> = landed.query_pairs().into_owned().collect();
    assert!(query.contains_key("code"), "{landed}");
    assert_eq!(query["state"], "st");
    assert_eq!(landed.port().map(|p| p.to_string()).as_deref(), Some(port));
    let granted: Vec<String> = app
        .db
        .run(|conn| {
            use diesel::prelude::*;
            use tessera::storage::schema::grants;
            Ok::<_, tessera::storage::StorageError>(grants::table.select(grants::scope).load(conn)?)
        })
        .await
        .expect("grants");
    assert_eq!(granted, ["openid"], "the unticked scope was not granted");

    // A new scope asks again; this time the person says no.
    browser
        .goto(&authorize("openid offline_access", "&prompt=consent"))
        .await
        .expect("open authorize");
    assert_eq!(
        arrive_at(&browser, "/oauth2/authorize").await,
        "/oauth2/authorize"
    );
    browser
        .find(Locator::Css("button[value=deny]"))
        .await
        .expect("deny")
        .click()
        .await
        .expect("deny");
    assert_eq!(arrive_at(&browser, "/cb").await, "/cb");
    let denied = browser.current_url().await.expect("URL");
    let query: std::collections::HashMap<_, _> = denied.query_pairs().into_owned().collect();
    assert_eq!(query["error"], "access_denied");
    assert!(!query.contains_key("code"));

    browser.close().await.expect("close the session");
}
