//! RFC 7009 §2: "the invalidation takes place immediately". Introspections
//! racing a revocation on the instance that revoked must never answer
//! `active: true` once the revocation's 200 is out (reliability review,
//! finding 1: the memory was retired before the commit, so a read between
//! the two was remembered as current).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::Value;

use crate::helpers::{TestApp, TestClient, confidential_client, spawn_app};

async fn access_token(app: &TestApp, client: &TestClient) -> String {
    let tokens: Value = app
        .token(
            client,
            &[("grant_type", "client_credentials"), ("scope", "profile")],
        )
        .await
        .json()
        .await
        .expect("JSON");
    tokens["access_token"].as_str().expect("AT").to_owned()
}

#[tokio::test]
async fn no_introspection_sent_after_a_revocations_200_says_active() {
    let app = Arc::new(spawn_app().await);
    let client = app.register(confidential_client()).await;
    let stale = Arc::new(AtomicUsize::new(0));
    for _trial in 0..25 {
        let token = access_token(&app, &client).await;
        let answered = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut introspectors = Vec::new();
        for _ in 0..4 {
            let (app, client, token) = (app.clone(), client.clone(), token.clone());
            let (answered, stop, stale) = (answered.clone(), stop.clone(), stale.clone());
            introspectors.push(tokio::spawn(async move {
                let mut after = 0;
                while !stop.load(Ordering::SeqCst) || after < 3 {
                    let sent_after_200 = answered.load(Ordering::SeqCst);
                    let response = app
                        .client
                        .post(app.url("/oauth2/introspect"))
                        .basic_auth(&client.id, client.secret.as_deref())
                        .form(&[("token", token.as_str())])
                        .send()
                        .await
                        .expect("POST introspect");
                    let body: Value = response.json().await.expect("JSON");
                    if sent_after_200 {
                        after += 1;
                        if body["active"] == true {
                            stale.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }));
        }
        // Let the introspections warm the memory first.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let revoked = app
            .client
            .post(app.url("/oauth2/revoke"))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&[("token", token.as_str())])
            .send()
            .await
            .expect("POST revoke");
        assert_eq!(revoked.status(), 200);
        answered.store(true, Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        for introspector in introspectors {
            introspector.await.expect("introspector");
        }
    }
    assert_eq!(
        stale.load(Ordering::SeqCst),
        0,
        "introspections sent after the revocation's 200 answered active"
    );
}
