//! Application::build(Settings): everything `tessera serve` and the tests
//! boot, in one place.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware::from_fn, web};
use anyhow::Context as _;

use crate::auth::{self, Accounts};
use crate::config::Settings;
use crate::domain::now;
use crate::http::{self, AppState, state::CookieNames, state::Documents};
use crate::oauth::keys::{self, Keys};
use crate::oauth::metadata;
use crate::storage::Db;

/// How often expired sessions and stale throttle counters are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    db: Db,
    settings: Arc<Settings>,
    shutting_down: Arc<std::sync::atomic::AtomicBool>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Application {
    /// Binds `server.listen`, then builds as `build_on`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.server.listen)
            .with_context(|| format!("binding {}", settings.server.listen))?;
        Self::build_on(settings, listener).await
    }

    /// Connects the pool, applies migrations when `database.auto_migrate` is
    /// on and builds the HTTP server on an already bound listener (tests bind
    /// port 0 first so the issuer can name the real port).
    pub async fn build_on(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let db = Db::connect(&settings.database).context("opening the database")?;
        if settings.database.auto_migrate {
            let applied = db.migrate().await.context("applying database migrations")?;
            for version in applied {
                tracing::info!(migration = %version, "migration applied");
            }
        }
        let accounts =
            Accounts::new(db.clone(), settings.clone()).context("preparing the account service")?;
        let keys = Arc::new(Keys::new(
            db.clone(),
            settings.keys.clone(),
            settings.environment,
        ));
        // Load (or create) the signing keys now, so a misconfigured
        // key-encryption key stops start-up. Without auto-migration the
        // schema may not exist yet: then the keys load on first use.
        if let Err(error) = keys.get().await {
            if settings.database.auto_migrate {
                return Err(anyhow::Error::from(error).context("loading signing keys"));
            }
            tracing::warn!(error = ?error, "signing keys not loaded yet; run `tessera migrate`");
        }
        let documents = Arc::new(Documents {
            authorization_server: metadata::authorization_server(&settings).to_string(),
            openid_configuration: metadata::openid_configuration(&settings).to_string(),
        });
        let metrics_listener = if settings.server.metrics_listen.is_empty() {
            None
        } else {
            Some(
                TcpListener::bind(&settings.server.metrics_listen)
                    .with_context(|| format!("binding {}", settings.server.metrics_listen))?,
            )
        };
        let metrics_addr = metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
            .context("reading the metrics address")?;
        let shutting_down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let state = AppState {
            metrics: metrics.clone(),
            metrics_addr,
            shutting_down: shutting_down.clone(),
            settings: settings.clone(),
            db: db.clone(),
            cache: Arc::new(crate::storage::cache::Cache::new(
                settings.database.cache_ttl_ms,
            )),
            accounts,
            cookies: CookieNames::for_settings(&settings),
            keys,
            documents,
        };
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let server = build_server(listener, metrics_listener, state)?;
        Ok(Self {
            port,
            metrics_port: metrics_addr.map(|addr| addr.port()),
            server,
            db,
            settings,
            shutting_down,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The separate metrics listener's port, when configured.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Serves until SIGTERM/SIGINT or until the server is stopped. On a
    /// signal, `/health/ready` turns 503 at once so load balancers stop
    /// sending traffic; after `server.shutdown_drain_secs` the server stops
    /// accepting connections and in-flight requests get
    /// `server.shutdown_timeout_secs` to finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let pruner = tokio::spawn(prune_periodically(
            self.db,
            self.settings.clone(),
            self.metrics.clone(),
        ));
        let signals = tokio::spawn(stop_on_signal(
            self.server.handle(),
            self.shutting_down.clone(),
            self.settings.server.shutdown_drain_secs,
        ));
        let outcome = self.server.await;
        pruner.abort();
        signals.abort();
        outcome
    }
}

/// The soft limit on open descriptors, from `/proc/self/limits` (Linux).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Warns when the connection cap lets the process run out of descriptors
/// before it sheds load (then `accept` fails and every new client times out).
fn check_connection_cap(settings: &Settings) {
    let workers = match settings.server.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let cap = u64::try_from(workers.saturating_mul(settings.server.max_connections_per_worker))
        .unwrap_or(u64::MAX);
    if let Some(limit) = open_file_limit()
        && cap.saturating_add(256) > limit
    {
        tracing::warn!(
            open_file_limit = limit,
            connection_cap = cap,
            "server.max_connections_per_worker × workers is above the open-file limit: raise `ulimit -n` or lower the cap, or new connections fail when it is reached"
        );
    }
}

fn build_server(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
) -> anyhow::Result<Server> {
    let settings = state.settings.clone();
    let https = settings.server.is_https();
    let max_body = settings.server.max_body_bytes;
    check_connection_cap(&settings);
    let data = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(http::middleware::body_deadline))
            .wrap(from_fn(http::middleware::limit_header_size))
            .wrap(http::middleware::security_headers(https))
            .wrap(from_fn(http::middleware::trace_requests))
            .app_data(data.clone())
            .configure(|cfg| http::configure(cfg, max_body))
    })
    .max_connections(settings.server.max_connections_per_worker)
    .shutdown_timeout(settings.server.shutdown_timeout_secs)
    // tessera handles the signals itself, to turn not-ready before stopping.
    .disable_signals()
    .listen(listener)
    .context("listening")?;
    if let Some(metrics_listener) = metrics_listener {
        server = server
            .listen(metrics_listener)
            .context("listening for metrics")?;
    }
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    Ok(server.run())
}

async fn stop_on_signal(
    handle: actix_web::dev::ServerHandle,
    shutting_down: Arc<std::sync::atomic::AtomicBool>,
    drain_secs: u64,
) {
    wait_for_signal().await;
    tracing::info!(drain_secs, "shutdown requested: readiness is now 503");
    shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(drain_secs)).await;
    handle.stop(true).await;
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn prune_periodically(
    db: Db,
    settings: Arc<Settings>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut interval = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        interval.tick().await;
        match auth::prune(&db, &settings, now()).await {
            Ok(0) => {}
            Ok(removed) => {
                metrics.add(
                    &crate::metrics::PRUNED_ROWS,
                    "",
                    "",
                    u64::try_from(removed).unwrap_or(0),
                );
                tracing::info!(rows = removed, "expired rows pruned");
            }
            Err(error) => tracing::warn!(error = ?error, "pruning failed"),
        }
        let lifetime = settings.tokens.access_token_ttl_secs
            + i64::try_from(settings.tokens.leeway_secs).unwrap_or(0);
        if let Err(error) = keys::retire_superseded(&db, lifetime, now()).await {
            tracing::warn!(error = ?error, "retiring old signing keys failed");
        }
        if let Err(error) =
            keys::rotate_if_due(&db, &settings.keys, settings.environment, now()).await
        {
            tracing::warn!(error = ?error, "automatic key rotation failed");
        }
    }
}
