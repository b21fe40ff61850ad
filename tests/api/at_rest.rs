//! SECURITY-CASES OP-03, OP-05: what the database holds after a real flow,
//! and how guessable the secrets are.

use crate::helpers::{PASSWORD, confidential_client, spawn_app};

#[tokio::test]
async fn the_database_file_holds_no_issued_secret() {
    let app = spawn_app().await;
    let Some(path) = app
        .settings
        .database
        .url
        .strip_prefix("sqlite://")
        .map(std::path::PathBuf::from)
    else {
        eprintln!(
            "skipped on PostgreSQL: this test reads the SQLite file byte by byte; the same code paths store digests on both"
        );
        return;
    };
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let code = app
        .obtain_code(&client, "openid offline_access", None)
        .await;
    let tokens: serde_json::Value = app
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
    let access = tokens["access_token"].as_str().expect("AT").to_owned();
    let session = app.session_cookie().expect("session");

    let mut bytes = std::fs::read(&path).expect("database file");
    if let Ok(wal) = std::fs::read(path.with_extension("db-wal")) {
        bytes.extend(wal);
    }
    let haystack = String::from_utf8_lossy(&bytes);
    for (what, secret) in [
        ("authorization code", code.as_str()),
        ("refresh token", refresh.as_str()),
        ("access token", access.as_str()),
        ("client secret", client.secret.as_deref().expect("secret")),
        ("password", PASSWORD),
        ("session id", session.as_str()),
    ] {
        assert!(
            !haystack.contains(secret),
            "the {what} is stored in the clear"
        );
    }
    assert!(
        !haystack.contains("BEGIN PRIVATE KEY"),
        "OP-04: no plaintext private key"
    );
}

#[tokio::test]
async fn codes_and_tokens_are_long_random_and_mutations_are_refused() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let mut codes = std::collections::HashSet::new();
    for _ in 0..5 {
        let code = app.obtain_code(&client, "openid", None).await;
        assert_eq!(code.len(), 43, "256 bits, base64url");
        assert!(codes.insert(code));
    }
    let code = codes.iter().next().expect("a code").clone();
    let mut mutated = code.clone().into_bytes();
    mutated[10] = if mutated[10] == b'a' { b'b' } else { b'a' };
    let mutated = String::from_utf8(mutated).expect("ASCII");
    for guess in [
        mutated.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
    ] {
        let response = app
            .token(
                &client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", guess),
                    ("redirect_uri", &client.redirect_uri),
                ],
            )
            .await;
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_grant");
    }
}

#[tokio::test]
async fn pruning_deletes_expired_codes_refresh_tokens_and_sessions() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let client = app.register(confidential_client()).await;
    let code = app
        .obtain_code(&client, "openid offline_access", None)
        .await;
    let _ = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
            ],
        )
        .await;
    assert_eq!(counts(&app.db).await.expect("counts"), (1, 1, 1));
    let far_future = tessera::domain::now() + 365 * 86_400;
    let removed = tessera::auth::prune(&app.db, &app.settings, far_future)
        .await
        .expect("prune");
    assert!(
        removed >= 3,
        "codes, refresh tokens and sessions (and old audit events): {removed}"
    );
    assert_eq!(counts(&app.db).await.expect("counts"), (0, 0, 0));
}

async fn counts(
    db: &tessera::storage::Db,
) -> Result<(i64, i64, i64), tessera::storage::StorageError> {
    use diesel::prelude::*;
    use tessera::storage::schema::{authorization_codes, refresh_tokens, sessions};
    db.run(|conn| {
        Ok((
            authorization_codes::table.count().get_result::<i64>(conn)?,
            refresh_tokens::table.count().get_result::<i64>(conn)?,
            sessions::table.count().get_result::<i64>(conn)?,
        ))
    })
    .await
}

#[tokio::test]
async fn pruning_deletes_expired_parked_authorization_requests() {
    use diesel::prelude::*;
    let app = spawn_app().await;
    let client = app.register(confidential_client()).await;
    // No session: the request is parked while the browser signs in.
    let response = app
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", &client.redirect_uri),
            ("scope", "openid"),
            ("state", "xyz"),
        ])
        .await;
    assert_eq!(response.status(), 303);
    let parked = || {
        app.db.run(|conn| {
            tessera::storage::schema::authorization_resumes::table
                .count()
                .get_result::<i64>(conn)
                .map_err(tessera::storage::StorageError::from)
        })
    };
    assert_eq!(parked().await.expect("count"), 1);
    let far_future = tessera::domain::now() + 365 * 86_400;
    tessera::auth::prune(&app.db, &app.settings, far_future)
        .await
        .expect("prune");
    assert_eq!(parked().await.expect("count"), 0);
}
