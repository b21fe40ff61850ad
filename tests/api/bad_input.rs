//! SECURITY-CASES IV-03, IV-04, IV-05: malformed, oversized and hostile input
//! gets a clear 4xx, never a 500, and nothing is stored.

use crate::helpers::{PASSWORD, spawn_app};

fn assert_client_error(status: reqwest::StatusCode, what: &str) {
    assert!(
        status.is_client_error(),
        "{what}: expected 4xx, got {status}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_app().await;
    let token = app.login_csrf().await;
    let huge = "a".repeat(1024 * 1024);
    let response = app
        .post_form(
            "/login",
            &[
                ("username", &huge),
                ("password", "x"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(response.status(), 413);

    // Chunked, without a length: refused once past the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..64).map(|_| Ok(vec![b'a'; 16 * 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
}

#[tokio::test]
async fn wrong_content_types_and_broken_encodings_are_400() {
    let app = spawn_app().await;
    let _ = app.login_csrf().await;
    for content_type in [
        "text/plain",
        "invalid/@@##",
        "</><script>",
        "application/json",
        "",
    ] {
        let response = app
            .client
            .post(app.url("/login"))
            .header("content-type", content_type)
            .body("username=a&password=b")
            .send()
            .await
            .expect("POST");
        assert_client_error(response.status(), content_type);
        let body = response.text().await.expect("body");
        assert!(!body.contains("<script>"), "raw input is never echoed");
    }
    for body in [
        "%zz",
        "%",
        "%ff%fe=%ff",
        "a=b&&=&c",
        &"&".repeat(10_000),
        "username=a&username=b",
    ] {
        let response = app
            .client
            .post(app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .expect("POST");
        assert_client_error(response.status(), body);
    }
}

#[tokio::test]
async fn control_characters_in_a_username_are_just_a_failed_sign_in() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    for name in [
        "alice\0",
        "alice\r\nX-Injected: 1",
        "al\u{202e}ice",
        "' OR '1'='1",
        "\"; DROP TABLE users;--",
    ] {
        let response = app.new_browser().login(name, PASSWORD).await;
        assert_eq!(response.status(), 401, "{name:?}");
        assert!(!response.headers().contains_key("x-injected"));
    }
    // Still exactly one working account (IV-06: nothing was injected).
    assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn huge_headers_and_urls_are_refused_without_a_500() {
    let app = spawn_app().await;
    let big = "a".repeat(64 * 1024);
    let response = app
        .client
        .get(app.url("/login"))
        .header("x-big", big)
        .send()
        .await;
    if let Ok(response) = response {
        assert_client_error(response.status(), "64 KiB header");
    }
    let long_url = format!("/login?return_to=/{}", "a".repeat(16 * 1024));
    let response = app.get(&long_url).await;
    assert!(
        !response.status().is_server_error(),
        "{}",
        response.status()
    );
    let mut request = app.client.get(app.url("/login"));
    for i in 0..200 {
        request = request.header(format!("x-h{i}"), "v");
    }
    if let Ok(response) = request.send().await {
        assert!(
            !response.status().is_server_error(),
            "{}",
            response.status()
        );
    }
}

#[tokio::test]
async fn repeated_query_parameters_are_a_clear_400() {
    let app = spawn_app().await;
    let response = app.get("/login?return_to=/a&return_to=/b").await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_page_that_does_not_exist_is_a_404_page() {
    let app = spawn_app().await;
    let response = app.get("/nope").await;
    assert_eq!(response.status(), 404);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("There is no page at this address.")
    );
}

// SECURITY-CASES IV-04: malformed form bodies are refused at the back
// channel, not guessed at (outside attack, finding 8).
#[tokio::test]
async fn malformed_form_bodies_get_invalid_request_at_the_back_channel() {
    let app = crate::helpers::spawn_app().await;
    let client = app.register(crate::helpers::confidential_client()).await;
    for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        for body in [
            "grant_type=client_credentials&%zz=1",
            "grant_type=client_credentials&&=&c",
            "token=abc&x=%ff%fe",
            "token=abc&x=%",
        ] {
            let response = app
                .client
                .post(app.url(path))
                .basic_auth(&client.id, client.secret.as_deref())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("POST");
            assert_eq!(response.status(), 400, "{path} {body}");
            let answer: serde_json::Value = response.json().await.expect("JSON");
            assert_eq!(answer["error"], "invalid_request", "{path} {body}");
        }
    }
}
