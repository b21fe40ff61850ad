//! AppState: everything a handler may reach. No globals.

use std::sync::Arc;

use crate::auth::Accounts;
use crate::config::Settings;
use crate::oauth::keys::Keys;
use crate::storage::Db;

/// Shared by every worker; cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    /// Set on SIGTERM: readiness answers 503 while requests drain.
    pub shutting_down: Arc<std::sync::atomic::AtomicBool>,
    pub settings: Arc<Settings>,
    pub db: Db,
    /// The short memory of hot-path rows (storage::cache).
    pub cache: Arc<crate::storage::cache::Cache>,
    pub accounts: Accounts,
    pub cookies: CookieNames,
    pub keys: Arc<Keys>,
    /// Discovery documents, serialised once.
    pub documents: Arc<Documents>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The separate metrics listener's address, when one is configured.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// Pre-serialised public documents.
pub struct Documents {
    pub authorization_server: String,
    pub openid_configuration: String,
}

/// Cookie names. With an https issuer they carry the `__Host-` prefix, which
/// makes browsers insist on `Secure`, `Path=/` and no `Domain` (LG-07);
/// browsers refuse that prefix on plain http, so local development uses
/// bare names.
#[derive(Clone, Debug)]
pub struct CookieNames {
    pub session: &'static str,
    pub csrf: &'static str,
    pub secure: bool,
}

impl CookieNames {
    pub fn for_settings(settings: &Settings) -> Self {
        if settings.server.is_https() {
            Self {
                session: "__Host-tessera_session",
                csrf: "__Host-tessera_csrf",
                secure: true,
            }
        } else {
            Self {
                session: "tessera_session",
                csrf: "tessera_csrf",
                secure: false,
            }
        }
    }
}
