//! SECURITY-CASES OP-02: the real binary, at the most verbose log level,
//! never logs a password, a session id or a CSRF token.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::{PASSWORD, TestBrowser, csrf_token, test_settings};

/// `tessera serve` as a child process whose stderr is collected.
struct Served {
    child: std::process::Child,
    log: Arc<Mutex<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(database_url: &str, dir: &std::path::Path) -> (Served, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env("TESSERA__DATABASE__URL", database_url)
        .env("TESSERA__KEYS__ENCRYPTION_KEY_FILE", dir.join("kek"))
        .env("TESSERA__SERVER__LISTEN", "127.0.0.1:0")
        .env("TESSERA__LOG__FORMAT", "json")
        .env("RUST_LOG", "trace")
        .env_remove("TESSERA_ENV")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("tessera is listening")
                && let Some(port) = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["port"].as_u64())
            {
                let _ = port_tx.send(port);
            }
            let mut log = sink.lock().expect("log lock");
            log.push_str(&line);
            log.push('\n');
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("tessera reported its port");
    (Served { child, log }, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn nothing_secret_reaches_the_logs_even_at_trace_level() {
    let (settings, dir, _postgres) = test_settings();
    let (served, address) = serve(&settings.database.url, dir.path());
    let browser = TestBrowser::new(&address);

    let signup_page = browser.get_html("/signup").await;
    let signup_csrf = csrf_token(&signup_page);
    let response = browser.signup("alice", PASSWORD).await;
    assert_eq!(response.status(), 303);
    let session = browser.session_cookie().expect("signed in");
    let account_csrf = csrf_token(&browser.get_html("/account").await);
    let wrong = TestBrowser::new(&address);
    assert_eq!(
        wrong
            .login("alice", "a wrong secret password")
            .await
            .status(),
        401
    );
    let signed_out = browser
        .post_form("/logout", &[("csrf_token", &account_csrf)])
        .await;
    assert_eq!(signed_out.status(), 303);
    assert_eq!(browser.login("alice", PASSWORD).await.status(), 303);
    let second_session = browser.session_cookie().expect("signed in again");

    let log = served.log.lock().expect("log lock").clone();
    assert!(
        log.contains("sign-in failed"),
        "the log was captured: {log}"
    );
    // The start-up line says where to point a browser.
    assert!(
        log.lines().any(|l| l.contains("tessera is listening")
            && l.contains("open http://127.0.0.1:8080/ in a browser")
            && l.contains(r#""url":"http://127.0.0.1:8080""#)),
        "{log}"
    );
    for (what, secret) in [
        ("password", PASSWORD),
        ("wrong password", "a wrong secret password"),
        ("session id", session.as_str()),
        ("second session id", second_session.as_str()),
        ("sign-up CSRF token", signup_csrf.as_str()),
        ("account CSRF token", account_csrf.as_str()),
    ] {
        assert!(!log.contains(secret), "the {what} appears in the logs");
    }
}

// Graceful shutdown: readiness turns 503 first, then the process exits 0.
#[tokio::test]
async fn sigterm_turns_readiness_off_then_exits_cleanly() {
    let (settings, dir, _postgres) = test_settings();
    let (mut served, address) = serve(&settings.database.url, dir.path());
    let browser = TestBrowser::new(&address);
    assert_eq!(browser.get("/health/ready").await.status(), 200);
    let pid = served.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let mut saw_draining = false;
    for _ in 0..20 {
        match browser
            .client
            .get(browser.url("/health/ready"))
            .send()
            .await
        {
            Ok(response) if response.status() == 503 => {
                saw_draining = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => break,
        }
    }
    assert!(
        saw_draining,
        "readiness said 503 before the server went away"
    );
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = served.child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tessera did not exit within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// kill -9 and restart: what was answered 200 is still there, and keys and
// sessions survive (R-04, R-09).
#[tokio::test]
async fn a_killed_server_restarts_with_its_sessions_keys_grants_and_revocations() {
    let (settings, dir, _postgres) = test_settings();
    let (mut first, address) = serve(&settings.database.url, dir.path());
    let browser = TestBrowser::new(&address);
    assert_eq!(browser.signup("alice", PASSWORD).await.status(), 303);
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .env("TESSERA__DATABASE__URL", &settings.database.url)
            .env("RUST_LOG", "warn")
            .env_remove("TESSERA_ENV")
            .output()
            .expect("tessera runs")
    };
    let added = cli(&[
        "client",
        "add",
        "--name",
        "svc",
        "--grant-type",
        "client_credentials",
        "--scope",
        "profile",
        "--json",
    ]);
    let client: serde_json::Value = serde_json::from_slice(&added.stdout).expect("JSON");
    let (id, secret) = (
        client["client_id"].as_str().expect("id"),
        client["client_secret"].as_str().expect("secret"),
    );
    let mint = |browser: &TestBrowser| {
        browser
            .client
            .post(browser.url("/oauth2/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "profile")])
            .send()
    };
    let kept: serde_json::Value = mint(&browser)
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let revoked: serde_json::Value = mint(&browser)
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let revocation = browser
        .client
        .post(browser.url("/oauth2/revoke"))
        .basic_auth(id, Some(secret))
        .form(&[("token", revoked["access_token"].as_str().expect("AT"))])
        .send()
        .await
        .expect("POST");
    assert_eq!(revocation.status(), 200);
    let jwks_before = browser.get_html("/.well-known/jwks.json").await;

    // kill -9: no graceful anything.
    first.child.kill().expect("SIGKILL");
    let _ = first.child.wait();
    drop(first);
    let (_second, address) = serve(&settings.database.url, dir.path());
    let after = TestBrowser::new(&address);
    // The session cookie is per host, not per port: the same jar carries it.
    after.cookies.add_cookie_str(
        &format!(
            "tessera_session={}; Path=/",
            browser.session_cookie().expect("session")
        ),
        &address.parse().expect("URL"),
    );
    assert_eq!(
        after.get("/account").await.status(),
        200,
        "the session survived"
    );
    assert_eq!(
        after.get_html("/.well-known/jwks.json").await,
        jwks_before,
        "the keys survived"
    );
    let introspect = |token: &str| {
        after
            .client
            .post(after.url("/oauth2/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token.to_owned())])
            .send()
    };
    let kept_state: serde_json::Value = introspect(kept["access_token"].as_str().expect("AT"))
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        kept_state["active"], true,
        "tokens issued before the crash keep working"
    );
    let revoked_state: serde_json::Value =
        introspect(revoked["access_token"].as_str().expect("AT"))
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON");
    assert_eq!(
        revoked_state["active"], false,
        "the revocation answered 200 survived"
    );
}
