//! Slow clients cannot hold connections for ever (reliability review):
//! a request body that trickles in is abandoned after
//! `server.body_timeout_secs` and its connection closed.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn a_body_that_trickles_in_is_abandoned_and_its_connection_closed() {
    let app = spawn_app_with(|s| s.server.body_timeout_secs = 1).await;
    let host = app.address.trim_start_matches("http://").to_owned();
    for path in ["/oauth2/token", "/login", "/oauth2/register"] {
        let mut stream = tokio::net::TcpStream::connect(&host)
            .await
            .expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 100\r\n\r\ngrant_type=cl"
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        // The rest never comes. The server must answer and close on its own;
        // the bound here only keeps a broken server from hanging the suite.
        let mut answer = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            stream.read_to_end(&mut answer),
        )
        .await;
        assert!(read.is_ok(), "{path}: the connection was kept open");
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 4"),
            "{path}: a client error, never a 5xx: {text}"
        );
    }
    // The server is still there for everyone else.
    assert_eq!(app.get("/health/live").await.status(), 200);
}

#[tokio::test]
async fn a_body_that_arrives_in_time_is_served() {
    let app = spawn_app_with(|s| s.server.body_timeout_secs = 5).await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .expect("connect");
    let body = "grant_type=client_credentials";
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    for chunk in body.as_bytes().chunks(8) {
        stream.write_all(chunk).await.expect("write");
        stream.flush().await.expect("flush");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer);
    // No client authentication: 401 invalid_client, read to the end.
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
}
