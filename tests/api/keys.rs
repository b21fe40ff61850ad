//! Key rotation: a new key is published before it signs, old tokens keep
//! verifying until the old key retires, and other instances pick it up.

use diesel::prelude::*;
use serde_json::Value;
use tessera::config::SigningAlgorithm;
use tessera::storage::StorageError;
use tessera::storage::schema::signing_keys;

use crate::helpers::{confidential_client, spawn_app_with, spawn_instance_of};
use crate::revocation::introspect;

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

#[tokio::test]
async fn a_rotated_key_is_published_first_and_old_tokens_keep_working() {
    let app = spawn_app_with(|s| s.keys.reload_interval_secs = 0).await;
    let other = spawn_instance_of(&app).await;
    let mut rs = confidential_client();
    rs.introspection_audience = Some(app.address.clone());
    let client = app.register(rs).await;
    let mint = || async {
        let body: Value = app
            .token(
                &client,
                &[("grant_type", "client_credentials"), ("scope", "profile")],
            )
            .await
            .json()
            .await
            .expect("JSON");
        body["access_token"].as_str().expect("AT").to_owned()
    };
    let jwks_kids = |jwks: Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    };
    let old_token = mint().await;
    let old_kid = kid(&old_token);

    let rotated = tessera::oauth::keys::rotate(
        &app.db,
        &app.settings.keys,
        app.settings.environment,
        SigningAlgorithm::ES256,
        tessera::domain::now(),
    )
    .await
    .expect("rotated");
    let published = jwks_kids(
        app.get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .expect("JSON"),
    );
    assert!(
        published.contains(&rotated.kid),
        "published before it signs"
    );
    assert!(published.contains(&old_kid));
    let on_other = jwks_kids(
        other
            .get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .expect("JSON"),
    );
    assert!(
        on_other.contains(&rotated.kid),
        "the other instance picked the rotation up"
    );
    assert_eq!(
        kid(&mint().await),
        old_kid,
        "not signing before its activation time"
    );

    // Activation time reached: new tokens use the new key, old ones still verify.
    let new_kid = rotated.kid.clone();
    let at = tessera::domain::now();
    app.db
        .run(move |conn| {
            diesel::update(signing_keys::table.find(new_kid))
                .set(signing_keys::activates_at.eq(at))
                .execute(conn)?;
            Ok::<_, StorageError>(())
        })
        .await
        .expect("activate");
    let new_token = mint().await;
    assert_eq!(kid(&new_token), rotated.kid);
    assert_eq!(
        introspect(&app, &client, &old_token).await.1["active"],
        true,
        "R-08: old tokens keep working"
    );
    assert_eq!(
        introspect(&other, &client, &new_token).await.1["active"],
        true
    );

    // Once every token of the old key has expired, it retires from the JWKS.
    let retired = tessera::oauth::keys::retire_superseded(&app.db, 0, tessera::domain::now() + 1)
        .await
        .expect("retire");
    assert_eq!(retired, 1);
    let published = jwks_kids(
        app.get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .expect("JSON"),
    );
    assert!(!published.contains(&old_kid));
    assert!(published.contains(&rotated.kid));
}
