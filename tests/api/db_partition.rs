//! A database path that swallows traffic without closing anything (a
//! partition, a stalled proxy), then heals with new connections working
//! while the old ones stay dead: requests answer 503 instead of hanging, and
//! service comes back by itself (reliability review, finding 2). PostgreSQL
//! only: SQLite has no network path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{TestApp, confidential_client, postgres_base_url, spawn_app_with};

/// A TCP proxy that can stall: every connection open at that moment, and
/// every one accepted while stalled, stops forwarding for good, with its
/// sockets held open, like a path that drops packets. After `heal`, new
/// connections forward again.
struct StallingProxy {
    port: u16,
    stalled: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
}

impl StallingProxy {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("address").port();
        let stalled = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let (accept_stalled, accept_generation) = (stalled.clone(), generation.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                if accept_stalled.load(Ordering::SeqCst) {
                    held.push(inbound);
                    continue;
                }
                let born = accept_generation.load(Ordering::SeqCst);
                let generation = accept_generation.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut in_read, mut in_write) = inbound.into_split();
                    let (mut out_read, mut out_write) = outbound.into_split();
                    let live = move || generation.load(Ordering::SeqCst) == born;
                    let live_back = live.clone();
                    let up = async move {
                        let mut buffer = vec![0; 16 * 1024];
                        while let Ok(n) = in_read.read(&mut buffer).await {
                            if n == 0 {
                                break;
                            }
                            if !live() {
                                // Swallowed: hold the sockets, forward nothing.
                                std::future::pending::<()>().await;
                            }
                            if out_write.write_all(&buffer[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let down = async move {
                        let mut buffer = vec![0; 16 * 1024];
                        while let Ok(n) = out_read.read(&mut buffer).await {
                            if n == 0 {
                                break;
                            }
                            if !live_back() {
                                std::future::pending::<()>().await;
                            }
                            if in_write.write_all(&buffer[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Self {
            port,
            stalled,
            generation,
        }
    }

    fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }
}

async fn through_proxy() -> Option<(StallingProxy, TestApp)> {
    let base = postgres_base_url()?;
    let host_port = crate::helpers::postgres_host_port(&base);
    let proxy = StallingProxy::start(host_port.clone()).await;
    let port = proxy.port;
    let app = spawn_app_with(move |s| {
        s.database.url = s
            .database
            .url
            .replace(&host_port, &format!("127.0.0.1:{port}"));
        s.database.connect_timeout_secs = 1;
        s.database.query_timeout_ms = 1000;
        s.database.max_connections = 4;
        // Every request reads the database: nothing answers from memory.
        s.database.cache_ttl_ms = 0;
    })
    .await;
    Some((proxy, app))
}

// Reliability review, finding 2; SECURITY-CASES RV-05 (fail closed).
#[tokio::test]
async fn a_stalled_database_path_gives_503_and_service_returns_after_it_heals() {
    let Some((proxy, app)) = through_proxy().await else {
        eprintln!("skipped: needs PostgreSQL (set TESSERA_TEST_DATABASE_URL); CI runs it");
        return;
    };
    let client = app.register(confidential_client()).await;
    let cc = [("grant_type", "client_credentials"), ("scope", "profile")];
    let tokens: serde_json::Value = app.token(&client, &cc).await.json().await.expect("JSON");
    let access = tokens["access_token"].as_str().expect("AT").to_owned();

    proxy.stall();
    // A burst larger than the pool: every answer is a 503 with Retry-After
    // (never a hang, never a 200 for a revocation, never active). The outer
    // bound only keeps a broken server from hanging the suite.
    let mut burst = Vec::new();
    for i in 0..12 {
        let app = &app;
        let client = &client;
        let access = access.clone();
        burst.push(async move {
            let response = match i % 3 {
                0 => app.token(client, &cc).await,
                1 => app
                    .client
                    .post(app.url("/oauth2/revoke"))
                    .basic_auth(&client.id, client.secret.as_deref())
                    .form(&[("token", access.as_str())])
                    .send()
                    .await
                    .expect("POST"),
                _ => app
                    .client
                    .post(app.url("/oauth2/introspect"))
                    .basic_auth(&client.id, client.secret.as_deref())
                    .form(&[("token", access.as_str())])
                    .send()
                    .await
                    .expect("POST"),
            };
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, retry_after, body)
        });
    }
    let answers = tokio::time::timeout(
        Duration::from_secs(60),
        futures_util::future::join_all(burst),
    )
    .await
    .expect("every request was answered");
    for (status, retry_after, body) in &answers {
        assert_eq!(*status, 503, "{body}");
        assert!(retry_after);
        assert_ne!(body["active"], true);
    }
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);

    proxy.heal();
    let mut recovered = false;
    for _ in 0..100 {
        let token = app.token(&client, &cc).await;
        if token.status() == 200 {
            recovered = true;
            break;
        }
        assert_eq!(token.status(), 503, "only 503 while recovering");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recovered,
        "service never came back after the path healed (old connections are dead for good)"
    );
    assert_eq!(app.get("/health/ready").await.status(), 200);
    let revoked = app
        .client
        .post(app.url("/oauth2/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", access.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(revoked.status(), 200, "writes work again too");
}

/// A pool of one connection with a short query bound, on whichever backend
/// the suite runs.
async fn small_db(
    query_timeout_ms: u64,
) -> (
    tessera::storage::Db,
    tempfile::TempDir,
    Option<crate::helpers::PostgresDatabase>,
) {
    let (mut settings, dir, postgres) = crate::helpers::test_settings();
    settings.database.max_connections = 1;
    settings.database.query_timeout_ms = query_timeout_ms;
    let db = tessera::storage::Db::connect(&settings.database).expect("pool");
    db.migrate().await.expect("migrations");
    (db, dir, postgres)
}

// Review of the timeout: work whose caller already answered 503 must not
// run later behind its back (a code exchange committed after a 503 would
// make the honest retry look like reuse).
#[tokio::test]
async fn work_given_up_before_it_began_never_runs() {
    let (db, _dir, _postgres) = small_db(300).await;
    let busy = db.clone();
    let holder = tokio::spawn(async move {
        busy.run_unbounded(|_conn| {
            std::thread::sleep(Duration::from_millis(1200));
            Ok::<_, tessera::storage::StorageError>(())
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let waited = db
        .run(move |_conn| {
            flag.store(true, Ordering::SeqCst);
            Ok::<_, tessera::storage::StorageError>(())
        })
        .await;
    assert!(
        matches!(waited, Err(tessera::storage::StorageError::TimedOut)),
        "{waited:?}"
    );
    holder.await.expect("holder").expect("holder ran");
    // The connection is free again; had the given-up work been queued, it
    // would have run by now.
    db.run(|_conn| Ok::<_, tessera::storage::StorageError>(()))
        .await
        .expect("the pool serves again");
    assert!(!ran.load(Ordering::SeqCst), "given-up work ran anyway");
}

// Migrations and bulk seeding are not bounded, on PostgreSQL either (the
// server-side statement_timeout is lifted for them).
#[tokio::test]
async fn unbounded_work_outlives_the_query_timeout() {
    let (db, _dir, _postgres) = small_db(200).await;
    let slow = db
        .run_unbounded(|conn| {
            use diesel::RunQueryDsl as _;
            let sql = match conn {
                tessera::storage::DbConnection::Postgres(_) => "SELECT pg_sleep(0.5)",
                tessera::storage::DbConnection::Sqlite(_) => "SELECT 1",
            };
            if matches!(conn, tessera::storage::DbConnection::Sqlite(_)) {
                std::thread::sleep(Duration::from_millis(500));
            }
            diesel::sql_query(sql)
                .execute(conn)
                .map_err(tessera::storage::StorageError::from)
        })
        .await;
    assert!(slow.is_ok(), "{slow:?}");
    let bounded = db
        .run(|conn| {
            use diesel::RunQueryDsl as _;
            if matches!(conn, tessera::storage::DbConnection::Postgres(_)) {
                diesel::sql_query("SELECT pg_sleep(0.5)")
                    .execute(conn)
                    .map_err(tessera::storage::StorageError::from)?;
            } else {
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok::<_, tessera::storage::StorageError>(())
        })
        .await;
    assert!(bounded.is_err(), "the ordinary path is bounded");
}

// Outside attack, finding 3: when PostgreSQL's statement_timeout fires
// before tessera's own bound, the request is "unavailable" (503), not a 500.
#[tokio::test]
async fn a_statement_cancelled_by_the_server_counts_as_unavailable() {
    if postgres_base_url().is_none() {
        eprintln!("skipped: needs PostgreSQL (set TESSERA_TEST_DATABASE_URL); CI runs it");
        return;
    }
    let (db, _dir, _postgres) = small_db(0).await;
    let cancelled = db
        .run_unbounded(|conn| {
            use diesel::RunQueryDsl as _;
            use diesel::connection::SimpleConnection as _;
            conn.batch_execute("SET statement_timeout = 50")?;
            diesel::sql_query("SELECT pg_sleep(1)").execute(conn)?;
            Ok::<_, tessera::storage::StorageError>(())
        })
        .await;
    let error = cancelled.expect_err("the server cancelled it");
    assert!(error.is_unavailable(), "{error:?}");
}
