//! Several instances on one database, as behind a load balancer: a user's
//! journey spread across them, and a revocation on one seen by the others.

use serde_json::Value;

use crate::helpers::{confidential_client, spawn_app, spawn_app_with, spawn_instance_of};
use crate::revocation::introspect;

#[tokio::test]
async fn a_revocation_on_one_instance_is_seen_by_the_other_within_a_second() {
    let a = spawn_app().await;
    let b = spawn_instance_of(&a).await;
    let mut rs = confidential_client();
    rs.redirect_uris.clear();
    rs.grant_types = vec!["client_credentials".to_owned()];
    rs.introspection_audience = Some(a.settings.server.issuer_str().to_owned());
    let rs = a.register(rs).await;

    // Sign in and consent on A, exchange the code on B.
    a.signed_in("alice").await;
    let client = a.register(confidential_client()).await;
    let code = a.obtain_code(&client, "openid offline_access", None).await;
    let tokens: Value = b
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let access = tokens["access_token"].as_str().expect("AT");
    assert_eq!(
        introspect(&a, &rs, access).await.1["active"],
        true,
        "A accepts B's token"
    );

    // Refresh on A, revoke the new refresh token on B.
    let refreshed: Value = a
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tokens["refresh_token"].as_str().expect("RT"),
                ),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let revoked = b
        .client
        .post(b.url("/oauth2/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", refreshed["refresh_token"].as_str().expect("RT"))])
        .send()
        .await
        .expect("POST");
    assert_eq!(revoked.status(), 200);

    let started = std::time::Instant::now();
    loop {
        let answer = introspect(&a, &rs, refreshed["access_token"].as_str().expect("AT"))
            .await
            .1;
        if answer["active"] == false {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "A still says active after a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

// SECURITY-CASES CD-03 (spread over instances)
#[tokio::test]
async fn parallel_redemptions_spread_over_instances_give_one_success() {
    let a = spawn_app().await;
    let b = spawn_instance_of(&a).await;
    a.signed_in("alice").await;
    let client = a.register(confidential_client()).await;
    let code = a.obtain_code(&client, "openid", None).await;
    let attempts = (0..20).map(|i| {
        let browser = if i % 2 == 0 {
            a.new_browser()
        } else {
            b.new_browser()
        };
        let client = client.clone();
        let code = code.clone();
        async move {
            browser
                .token(
                    &client,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", &client.redirect_uri),
                    ],
                )
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
}

/// The first browser of `app`, pointed at another instance: same cookies,
/// as a load balancer would route the same browser anywhere.
fn same_browser_via(
    app: &crate::helpers::TestApp,
    instance: &crate::helpers::TestApp,
) -> crate::helpers::TestBrowser {
    crate::helpers::TestBrowser {
        address: instance.address.clone(),
        client: app.browser.client.clone(),
        cookies: app.browser.cookies.clone(),
    }
}

#[tokio::test]
async fn one_journey_spread_over_three_instances() {
    let a = spawn_app().await;
    let b = spawn_instance_of(&a).await;
    let c = spawn_instance_of(&a).await;
    let client = a.register(confidential_client()).await;
    a.signed_in("alice").await;

    // Consent on B.
    let via_b = same_browser_via(&a, &b);
    let page = via_b
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", &client.redirect_uri),
            ("scope", "openid offline_access"),
            ("state", "s"),
        ])
        .await;
    assert_eq!(page.status(), 200, "B knows A's session");
    let answered = via_b
        .consent(&page.text().await.expect("page"), "allow", None)
        .await;
    let code = crate::helpers::query_of(&crate::helpers::location(&answered))["code"].clone();
    // Code exchanged on C, refreshed on A, revoked on B, introspected on C.
    let tokens: Value = c
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let refreshed: Value = a
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tokens["refresh_token"].as_str().expect("RT"),
                ),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let revoked = b
        .client
        .post(b.url("/oauth2/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", refreshed["refresh_token"].as_str().expect("RT"))])
        .send()
        .await
        .expect("POST");
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        introspect(&c, &client, refreshed["access_token"].as_str().expect("AT"))
            .await
            .1["active"],
        false
    );
}

// SECURITY-CASES RT-03, LG-03 (spread over instances)
#[tokio::test]
async fn parallel_refreshes_and_failed_sign_ins_count_across_instances() {
    let a = spawn_app_with(|s| s.throttle.ip_max_failures = 1000).await;
    let b = spawn_instance_of(&a).await;
    a.signed_in("alice").await;
    let client = a.register(confidential_client()).await;
    let code = a.obtain_code(&client, "openid offline_access", None).await;
    let tokens: Value = a
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let refresh = tokens["refresh_token"].as_str().expect("RT").to_owned();
    let attempts = (0..10).map(|i| {
        let browser = if i % 2 == 0 {
            a.new_browser()
        } else {
            b.new_browser()
        };
        let client = client.clone();
        let refresh = refresh.clone();
        async move {
            browser
                .token(
                    &client,
                    &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                )
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert!(
        statuses.iter().filter(|s| **s == 200).count() <= 1,
        "{statuses:?}"
    );

    let failures = (0..10).map(|i| {
        let browser = if i % 2 == 0 {
            a.new_browser()
        } else {
            b.new_browser()
        };
        async move {
            browser
                .login("alice", "wrong password")
                .await
                .status()
                .as_u16()
        }
    });
    let _ = futures_util::future::join_all(failures).await;
    use diesel::prelude::*;
    let counted: i32 =
        a.db.run(|conn| {
            Ok::<_, tessera::storage::StorageError>(
                tessera::storage::schema::throttles::table
                    .find("account:alice")
                    .select(tessera::storage::schema::throttles::failures)
                    .first(conn)?,
            )
        })
        .await
        .expect("counter");
    assert_eq!(counted, 10, "one shared counter across instances");
}
