use std::time::Duration;

use crate::helpers::{postgres_base_url, spawn_app, spawn_app_with};

#[tokio::test]
async fn liveness_and_readiness_answer_200_when_the_database_is_up() {
    let app = spawn_app().await;
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), 200);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("JSON");
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn readiness_is_503_until_migrations_are_applied_then_200_without_restart() {
    let app = spawn_app_with(|s| s.database.auto_migrate = false).await;
    let before = app.get("/health/ready").await;
    assert_eq!(before.status(), 503);
    assert!(before.headers().contains_key("retry-after"));
    let body: serde_json::Value = before.json().await.expect("JSON");
    assert_eq!(body["reason"], "migrations pending");
    assert_eq!(app.get("/health/live").await.status(), 200);

    app.db.migrate().await.expect("migrations apply");
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

/// A TCP proxy between tessera and PostgreSQL that the test can cut and
/// restore, to take the database away from a running server.
struct CuttableProxy {
    port: u16,
    cut: tokio::sync::watch::Sender<bool>,
}

impl CuttableProxy {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (cut, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut watch = watch.clone();
                if *watch.borrow() {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { port, cut }
    }

    fn set_cut(&self, cut: bool) {
        let _ = self.cut.send(cut);
    }
}

#[tokio::test]
async fn readiness_reports_a_lost_database_and_recovers_when_it_returns() {
    let Some(base) = postgres_base_url() else {
        eprintln!("skipped: needs PostgreSQL (set TESSERA_TEST_DATABASE_URL); CI runs it");
        return;
    };
    let host_port = crate::helpers::postgres_host_port(&base);
    let proxy = CuttableProxy::start(host_port.clone()).await;
    let app = spawn_app_with(|s| {
        s.database.url = s
            .database
            .url
            .replace(&host_port, &format!("127.0.0.1:{}", proxy.port));
        s.database.connect_timeout_secs = 1;
    })
    .await;
    assert_eq!(app.get("/health/ready").await.status(), 200);

    proxy.set_cut(true);
    let mut saw_unavailable = false;
    for _ in 0..20 {
        let response = app.get("/health/ready").await;
        if response.status() == 503 {
            saw_unavailable = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        saw_unavailable,
        "readiness never reported the database gone"
    );
    assert_eq!(app.get("/health/live").await.status(), 200);
    let page = app.get("/login").await;
    assert!(
        page.status() == 200 || page.status() == 503,
        "no 500 while the database is away"
    );

    proxy.set_cut(false);
    let mut recovered = false;
    for _ in 0..40 {
        if app.get("/health/ready").await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        recovered,
        "readiness did not come back after the database returned"
    );
}

// with the database unreachable the token, revocation and
// introspection endpoints answer 503 with Retry-After (never 200, never
// active), and service comes back by itself within 5 s of the database.
#[tokio::test]
async fn api_endpoints_fail_closed_while_the_database_is_unreachable() {
    let Some(base) = postgres_base_url() else {
        eprintln!("skipped: needs PostgreSQL (set TESSERA_TEST_DATABASE_URL); CI runs it");
        return;
    };
    let host_port = crate::helpers::postgres_host_port(&base);
    let proxy = CuttableProxy::start(host_port.clone()).await;
    let app = spawn_app_with(|s| {
        s.database.url = s
            .database
            .url
            .replace(&host_port, &format!("127.0.0.1:{}", proxy.port));
        s.database.connect_timeout_secs = 1;
    })
    .await;
    let client = app.register(crate::helpers::confidential_client()).await;
    let tokens: serde_json::Value = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "profile")],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let access = tokens["access_token"].as_str().expect("AT").to_owned();

    proxy.set_cut(true);
    // What the server remembers may answer until database.cache_ttl_ms has
    // passed since it was read; never after.
    tokio::time::sleep(Duration::from_millis(
        app.settings.database.cache_ttl_ms + 20,
    ))
    .await;
    let started = std::time::Instant::now();
    let token = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "profile")],
        )
        .await;
    assert_eq!(token.status(), 503);
    assert!(token.headers().contains_key("retry-after"));
    assert!(started.elapsed() < Duration::from_secs(3), "fails fast");
    let revoke = app
        .client
        .post(app.url("/oauth2/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", access.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(
        revoke.status(),
        503,
        "never 200 while nothing can be written"
    );
    assert!(revoke.headers().contains_key("retry-after"));
    let introspect = app
        .client
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", access.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(introspect.status(), 503);
    let body: serde_json::Value = introspect.json().await.unwrap_or_default();
    assert_ne!(body["active"], true);

    proxy.set_cut(false);
    let restored = std::time::Instant::now();
    loop {
        let response = app
            .token(
                &client,
                &[("grant_type", "client_credentials"), ("scope", "profile")],
            )
            .await;
        if response.status() == 200 {
            break;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(5),
            "service did not come back within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
