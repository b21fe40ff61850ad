//! SECURITY-CASES CS-04 and CO-01: what every HTML page says to browsers.

use crate::helpers::{PASSWORD, spawn_app};

fn assert_page_headers(response: &reqwest::Response, path: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("{path}: {name} missing"))
            .to_str()
            .expect("ASCII")
            .to_owned()
    };
    let csp = header("content-security-policy");
    for directive in [
        "frame-ancestors 'none'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{path}: CSP lacks {directive}: {csp}"
        );
    }
    assert_eq!(header("x-frame-options"), "DENY", "{path}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    assert_eq!(header("cache-control"), "no-store", "{path}");
    assert!(header("content-type").starts_with("text/html"), "{path}");
    assert!(!header("x-request-id").is_empty());
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin"),
        "{path}: HTML pages never carry CORS headers (CO-01)"
    );
}

#[tokio::test]
async fn every_page_carries_the_security_headers_and_no_cors() {
    let app = spawn_app().await;
    for path in ["/login", "/signup", "/no-such-page"] {
        let response = app
            .client
            .get(app.url(path))
            .header("origin", "https://evil.example")
            .send()
            .await
            .expect("GET");
        assert_page_headers(&response, path);
    }
    app.create_user("alice", PASSWORD).await;
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
    for path in ["/account", "/logout"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_page_headers(&response, path);
    }
}

#[tokio::test]
async fn a_cors_preflight_on_a_page_gets_no_allowance() {
    let app = spawn_app().await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/login"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("OPTIONS");
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert!(!response.status().is_server_error());
}

#[tokio::test]
async fn pages_load_no_third_party_resources() {
    let app = spawn_app().await;
    let html = app.get_html("/signup").await;
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "only same-origin resources"
    );
    let css = app.get("/assets/tessera.css").await;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn a_caller_supplied_request_id_is_echoed_only_when_plain() {
    let app = spawn_app().await;
    let plain = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("GET");
    assert_eq!(plain.headers()["x-request-id"], "abc-123");
    let odd = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "a b<c>")
        .send()
        .await
        .expect("GET");
    assert_ne!(odd.headers()["x-request-id"], "a b<c>");
}
