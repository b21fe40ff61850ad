//! Settings: loaded once in `main` from layered sources, validated while
//! loading, then passed down explicitly. No other module reads the
//! environment.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

/// `config/default.toml`, compiled in so the binary runs from any directory.
const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

/// The profiles every binary knows, wherever it runs: `TESSERA_ENV` picks one,
/// and `config/<name>.toml` in the working directory, when present, is read
/// over it.
const PROFILES: [(&str, &str); 2] = [
    ("development", include_str!("../config/development.toml")),
    ("production", include_str!("../config/production.toml")),
];

/// Prefix of environment variables that override keys:
/// `TESSERA__SERVER__LISTEN` sets `server.listen`.
const ENV_PREFIX: &str = "TESSERA";
const ENV_SEPARATOR: &str = "__";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub accounts: AccountSettings,
    pub sessions: SessionSettings,
    pub throttle: ThrottleSettings,
    pub tokens: TokenSettings,
    pub registration: RegistrationSettings,
    pub keys: KeySettings,
    pub scopes: Vec<ScopeDefinition>,
    #[serde(default)]
    pub apis: Vec<ApiDefinition>,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub access_token_ttl_secs: i64,
    pub authorization_code_ttl_secs: i64,
    pub refresh_token_idle_ttl_secs: i64,
    pub refresh_token_absolute_ttl_secs: i64,
    pub refresh_token_reuse_grace_secs: i64,
    pub leeway_secs: u64,
    pub default_audience: String,
    pub access_token_revocation_revokes_grant: bool,
    pub revoked_grant_retention_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSettings {
    /// Dynamic Client Registration at /oauth2/register.
    pub mode: RegistrationMode,
    pub requests_per_ip_per_hour: u32,
    /// Scopes self-registered clients (DCR and developer pages) may ask for.
    pub allowed_scopes: Vec<String>,
    /// After a secret rotation the previous secret keeps working this long.
    pub secret_rotation_overlap_secs: i64,
    /// Most apps one user may register on the developer pages.
    pub max_apps_per_user: u32,
}

/// `registration.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Anyone may register a client.
    Open,
    /// Registration needs an initial access token (`tessera registration-token create`).
    Token,
    /// /oauth2/register answers 404 and is not advertised.
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub algorithm: SigningAlgorithm,
    pub id_token_algorithm: SigningAlgorithm,
    /// Base64 of 32 bytes; empty means "generate one" in development.
    pub encryption_key: secrecy::SecretString,
    pub encryption_key_file: PathBuf,
    /// A rotated key is published this long before it signs.
    pub publish_ahead_secs: i64,
    /// Rotate the access-token key automatically this often (0: never).
    pub rotation_period_secs: i64,
    /// How often each instance reads the keys again (rotations elsewhere).
    pub reload_interval_secs: u64,
}

/// The JWS algorithms tessera signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum SigningAlgorithm {
    ES256,
    EdDSA,
    RS256,
}

impl SigningAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::ES256, Self::EdDSA, Self::RS256]
            .into_iter()
            .find(|alg| alg.as_str() == raw)
    }
}

/// A scope clients may ask for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeDefinition {
    pub name: String,
    pub description: String,
}

/// A resource server: the audience of tokens carrying its scopes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiDefinition {
    pub audience: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub issuer: Url,
    pub workers: usize,
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive after the headers.
    pub body_timeout_secs: u64,
    /// Most connections each worker keeps open; beyond it, new ones wait in
    /// the listen backlog.
    pub max_connections_per_worker: usize,
    pub trusted_proxies: Vec<IpAddr>,
    pub shutdown_timeout_secs: u64,
    pub shutdown_drain_secs: u64,
    /// Where `/metrics` is served; empty: on `listen`, for loopback clients
    /// and `metrics_allowed_addresses` only.
    pub metrics_listen: String,
    /// Addresses besides loopback that may scrape `/metrics` on `listen`.
    pub metrics_allowed_addresses: Vec<IpAddr>,
}

impl ServerSettings {
    /// Whether the issuer is served over https; decides `Secure` cookies,
    /// the `__Host-` cookie prefix and HSTS.
    pub fn is_https(&self) -> bool {
        self.issuer.scheme() == "https"
    }

    /// The issuer's origin (`scheme://host[:port]`), the only origin forms
    /// may be posted from.
    pub fn origin(&self) -> String {
        self.issuer.origin().ascii_serialization()
    }

    /// The issuer as the OAuth `iss` value: no trailing slash.
    pub fn issuer_str(&self) -> &str {
        self.issuer.as_str().trim_end_matches('/')
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    /// Longest a request waits for the database (checkout and work); 0: no
    /// bound. On PostgreSQL also the server's `statement_timeout`.
    pub query_timeout_ms: u64,
    pub auto_migrate: bool,
    pub sqlite_synchronous: SqliteSynchronous,
    pub sqlite_busy_timeout_ms: u32,
    pub cache_ttl_ms: u64,
}

/// SQLite's `synchronous` pragma, as a documented choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    pub signup_enabled: bool,
    pub min_password_length: usize,
    pub signups_per_ip_per_hour: u32,
    pub password_change_revokes_grants: bool,
    pub audit_retention_secs: i64,
    /// Argon2 hashes computed at once; each holds 19 MiB (LG-03).
    pub max_concurrent_password_hashes: usize,
    /// How long a request waits for a free hasher before it is answered 503.
    pub password_hash_wait_ms: u64,
    /// Lifetime of the known-browser cookie set on sign-in (LG-02).
    pub known_browser_ttl_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    pub idle_timeout_secs: i64,
    pub absolute_timeout_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    pub account_max_failures: u32,
    pub ip_max_failures: u32,
    pub window_secs: i64,
    pub base_lock_secs: i64,
    pub max_lock_secs: i64,
    /// Authorization requests one address may park for a sign-in per ten
    /// minutes.
    pub parked_requests_per_ip: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Why the settings could not be loaded. Every message names the key or the
/// file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}` is invalid: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// Where `Settings::load` looks, so tests and the CLI can say it explicitly.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// Directory holding `<profile>.toml` overlays read over the compiled-in
    /// profile (usually `config`).
    pub config_dir: Option<PathBuf>,
    /// The profile (`TESSERA_ENV`): a compiled-in one, or a name with a file
    /// in `config_dir`.
    pub profile: Option<String>,
    /// A file given with `--config`; it must exist.
    pub file: Option<PathBuf>,
    /// Read `TESSERA__*` environment variables.
    pub use_environment: bool,
}

impl ConfigSources {
    /// The sources `tessera` uses when run normally: `config/` in the working
    /// directory, `TESSERA_ENV` (default "development"), the environment.
    pub fn standard(file: Option<PathBuf>) -> Self {
        let profile = std::env::var("TESSERA_ENV").unwrap_or_else(|_| "development".to_owned());
        Self {
            config_dir: Some(PathBuf::from("config")),
            profile: Some(profile),
            file,
            use_environment: true,
        }
    }
}

impl Settings {
    /// Loads and validates the layered configuration.
    pub fn load(sources: &ConfigSources) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_CONFIG,
            config::FileFormat::Toml,
        ));
        if let Some(profile) = &sources.profile {
            if !profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    "TESSERA_ENV",
                    "must be a plain name such as `development` or `production`",
                ));
            }
            let compiled = PROFILES.iter().find(|(name, _)| name == profile);
            if let Some((_, toml)) = compiled {
                builder =
                    builder.add_source(config::File::from_str(toml, config::FileFormat::Toml));
            }
            let overlay = sources
                .config_dir
                .as_ref()
                .map(|dir| dir.join(format!("{profile}.toml")))
                .filter(|path| path.is_file());
            match overlay {
                Some(path) => builder = builder.add_source(config::File::from(path)),
                // A typo (`prod`) must not silently run as development.
                None if compiled.is_none() => {
                    return Err(invalid(
                        "TESSERA_ENV",
                        format!(
                            "unknown profile `{profile}`: use `development` or `production`, \
                             or create config/{profile}.toml"
                        ),
                    ));
                }
                None => {}
            }
        }
        if let Some(file) = &sources.file {
            builder = builder.add_source(config::File::from(file.as_path()).required(true));
        }
        if sources.use_environment {
            builder = builder.add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator(ENV_SEPARATOR)
                    .separator(ENV_SEPARATOR)
                    .list_separator(",")
                    .with_list_parse_key("server.trusted_proxies")
                    .with_list_parse_key("registration.allowed_scopes")
                    .try_parsing(true),
            );
        }
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.keep_standard_scopes()?;
        settings.validate()?;
        Ok(settings)
    }

    /// A `[[scopes]]` list in a later layer replaces the whole list, which
    /// would silently drop `openid` and friends from an operator's file that
    /// only meant to add `notes:read`. The standard scopes of
    /// config/default.toml are always declared: a later entry of the same
    /// name changes its description, other entries add scopes.
    fn keep_standard_scopes(&mut self) -> Result<(), ConfigError> {
        let standard: Vec<ScopeDefinition> = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_CONFIG,
                config::FileFormat::Toml,
            ))
            .build()?
            .get("scopes")?;
        let missing: Vec<ScopeDefinition> = standard
            .into_iter()
            .filter(|d| !self.scopes.iter().any(|s| s.name == d.name))
            .collect();
        self.scopes.splice(0..0, missing);
        Ok(())
    }

    /// Checks what serde cannot: URL shapes, positive lifetimes, and the
    /// production profile's refusals.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_issuer(&self.server.issuer, self.environment)?;
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.listen",
                format!(
                    "`{}` is not an IP address and port such as 127.0.0.1:8080",
                    self.server.listen
                ),
            ));
        }
        if !self.server.metrics_listen.is_empty()
            && self
                .server
                .metrics_listen
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return Err(invalid(
                "server.metrics_listen",
                "must be empty or an IP address and port such as 127.0.0.1:9090",
            ));
        }
        if self.database.query_timeout_ms > 600_000 {
            return Err(invalid(
                "database.query_timeout_ms",
                "must be at most 600000 (10 minutes); 0 turns the bound off",
            ));
        }
        if !(1..=300).contains(&self.server.body_timeout_secs) {
            return Err(invalid(
                "server.body_timeout_secs",
                "must be between 1 and 300 seconds",
            ));
        }
        if !(16..=1_000_000).contains(&self.server.max_connections_per_worker) {
            return Err(invalid(
                "server.max_connections_per_worker",
                "must be between 16 and 1000000",
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        DatabaseUrl::parse(&self.database.url)?;
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.database.connect_timeout_secs == 0 {
            return Err(invalid("database.connect_timeout_secs", "must be positive"));
        }
        if self.database.cache_ttl_ms > 1000 {
            return Err(invalid(
                "database.cache_ttl_ms",
                "must be at most 1000: a revocation must reach every instance within a second",
            ));
        }
        if self.accounts.min_password_length < 8 {
            return Err(invalid(
                "accounts.min_password_length",
                "must be at least 8 (NIST SP 800-63B)",
            ));
        }
        if !(1..=64).contains(&self.accounts.max_concurrent_password_hashes) {
            return Err(invalid(
                "accounts.max_concurrent_password_hashes",
                "must be between 1 and 64 (each takes 19 MiB)",
            ));
        }
        if self.accounts.password_hash_wait_ms > 10_000 {
            return Err(invalid(
                "accounts.password_hash_wait_ms",
                "must be at most 10000",
            ));
        }
        positive(
            "accounts.known_browser_ttl_secs",
            self.accounts.known_browser_ttl_secs,
        )?;
        positive(
            "sessions.idle_timeout_secs",
            self.sessions.idle_timeout_secs,
        )?;
        positive(
            "sessions.absolute_timeout_secs",
            self.sessions.absolute_timeout_secs,
        )?;
        if self.sessions.idle_timeout_secs > self.sessions.absolute_timeout_secs {
            return Err(invalid(
                "sessions.idle_timeout_secs",
                "must not exceed sessions.absolute_timeout_secs",
            ));
        }
        let throttle = &self.throttle;
        if throttle.account_max_failures == 0 || throttle.account_max_failures > 10 {
            return Err(invalid(
                "throttle.account_max_failures",
                "must be between 1 and 10 (ASVS 6.3.1)",
            ));
        }
        if throttle.ip_max_failures == 0 {
            return Err(invalid("throttle.ip_max_failures", "must be at least 1"));
        }
        positive("throttle.window_secs", throttle.window_secs)?;
        positive("throttle.base_lock_secs", throttle.base_lock_secs)?;
        if throttle.max_lock_secs < throttle.base_lock_secs {
            return Err(invalid(
                "throttle.max_lock_secs",
                "must be at least throttle.base_lock_secs",
            ));
        }
        self.validate_tokens_and_scopes()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                format!("`{}` is not a valid level or filter", self.log.level),
            ));
        }
        Ok(())
    }
}

impl Settings {
    fn validate_tokens_and_scopes(&self) -> Result<(), ConfigError> {
        let tokens = &self.tokens;
        positive("tokens.access_token_ttl_secs", tokens.access_token_ttl_secs)?;
        if tokens.access_token_ttl_secs > 3600 {
            return Err(invalid(
                "tokens.access_token_ttl_secs",
                "must be at most 3600: revocation reaches resource servers that verify locally only at expiry",
            ));
        }
        positive(
            "tokens.authorization_code_ttl_secs",
            tokens.authorization_code_ttl_secs,
        )?;
        if tokens.authorization_code_ttl_secs > 600 {
            return Err(invalid(
                "tokens.authorization_code_ttl_secs",
                "must be at most 600 (RFC 6749 §4.1.2)",
            ));
        }
        positive(
            "tokens.refresh_token_idle_ttl_secs",
            tokens.refresh_token_idle_ttl_secs,
        )?;
        positive(
            "tokens.refresh_token_absolute_ttl_secs",
            tokens.refresh_token_absolute_ttl_secs,
        )?;
        if !(0..=300).contains(&tokens.refresh_token_reuse_grace_secs) {
            return Err(invalid(
                "tokens.refresh_token_reuse_grace_secs",
                "must be between 0 and 300",
            ));
        }
        if tokens.leeway_secs > 120 {
            return Err(invalid("tokens.leeway_secs", "must be at most 120"));
        }
        let mut names = std::collections::BTreeSet::new();
        for scope in &self.scopes {
            let valid = !scope.name.is_empty()
                && scope
                    .name
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return Err(invalid(
                    "scopes",
                    format!("`{}` is not a valid scope name (RFC 6749 §3.3)", scope.name),
                ));
            }
            if !names.insert(scope.name.as_str()) {
                return Err(invalid(
                    "scopes",
                    format!("`{}` is declared twice", scope.name),
                ));
            }
        }
        for api in &self.apis {
            if api.audience.is_empty() {
                return Err(invalid("apis", "every API needs an audience"));
            }
            if let Some(unknown) = api.scopes.iter().find(|s| !names.contains(s.as_str())) {
                return Err(invalid(
                    "apis",
                    format!(
                        "API `{}` owns scope `{unknown}`, which [[scopes]] does not declare",
                        api.audience
                    ),
                ));
            }
        }
        if let Some(unknown) = self
            .registration
            .allowed_scopes
            .iter()
            .find(|s| !names.contains(s.as_str()))
        {
            return Err(invalid(
                "registration.allowed_scopes",
                format!("`{unknown}` is not declared under [[scopes]]"),
            ));
        }
        if !(1..=10_000).contains(&self.registration.max_apps_per_user) {
            return Err(invalid(
                "registration.max_apps_per_user",
                "must be between 1 and 10000",
            ));
        }
        if !(0..=30 * 86_400).contains(&self.registration.secret_rotation_overlap_secs) {
            return Err(invalid(
                "registration.secret_rotation_overlap_secs",
                "must be between 0 and 30 days",
            ));
        }
        if self.keys.publish_ahead_secs < 0 || self.keys.rotation_period_secs < 0 {
            return Err(invalid(
                "keys.publish_ahead_secs",
                "key timings must not be negative",
            ));
        }
        use secrecy::ExposeSecret as _;
        let kek = self.keys.encryption_key.expose_secret();
        if kek.is_empty() {
            if self.environment == Environment::Production {
                return Err(invalid(
                    "keys.encryption_key",
                    "production requires a key-encryption key (base64 of 32 random bytes: head -c32 /dev/urandom | base64)",
                ));
            }
        } else {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD.decode(kek.trim());
            if !matches!(decoded, Ok(bytes) if bytes.len() == 32) {
                return Err(invalid(
                    "keys.encryption_key",
                    "must be base64 of exactly 32 bytes",
                ));
            }
        }
        Ok(())
    }

    /// The `aud` for access tokens whose scopes no API owns.
    pub fn default_audience(&self) -> String {
        if self.tokens.default_audience.is_empty() {
            self.server.issuer_str().to_owned()
        } else {
            self.tokens.default_audience.clone()
        }
    }
}

fn positive(key: &'static str, value: i64) -> Result<(), ConfigError> {
    if value <= 0 {
        return Err(invalid(key, "must be a positive number of seconds"));
    }
    Ok(())
}

fn validate_issuer(issuer: &Url, environment: Environment) -> Result<(), ConfigError> {
    const KEY: &str = "server.issuer";
    if !matches!(issuer.scheme(), "http" | "https") {
        return Err(invalid(KEY, "must be an http or https URL"));
    }
    let Some(host) = issuer.host() else {
        return Err(invalid(KEY, "must name a host"));
    };
    if issuer.query().is_some() || issuer.fragment().is_some() {
        return Err(invalid(KEY, "must not have a query or a fragment"));
    }
    if !issuer.username().is_empty() || issuer.password().is_some() {
        return Err(invalid(KEY, "must not contain credentials"));
    }
    if issuer.path() != "/" {
        return Err(invalid(
            KEY,
            "must be an origin without a path, such as https://auth.example.com",
        ));
    }
    if environment == Environment::Production {
        if issuer.scheme() != "https" && !is_loopback_host(&host) {
            return Err(invalid(
                KEY,
                "production requires an https issuer unless the host is loopback",
            ));
        }
        if let url::Host::Domain(name) = host
            && name.ends_with(".invalid")
        {
            return Err(invalid(
                KEY,
                "still holds the placeholder from config/production.toml; set TESSERA__SERVER__ISSUER to your public URL",
            ));
        }
    }
    Ok(())
}

fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(name) => *name == "localhost",
    }
}

/// A parsed `database.url`: which backend, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        const KEY: &str = "database.url";
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(invalid(KEY, "a sqlite:// URL needs a file path"));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Url::parse(url).map_err(|e| invalid(KEY, format!("not a valid URL: {e}")))?;
            return Ok(Self::Postgres(url.to_owned()));
        }
        Err(invalid(
            KEY,
            "must start with sqlite:// or postgres:// (for example sqlite://data/tessera.db)",
        ))
    }

    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Settings {
        Settings::load(&ConfigSources::default()).expect("the built-in defaults are valid")
    }

    #[test]
    fn a_file_declaring_one_scope_adds_it_to_the_standard_ones() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("tessera.toml");
        std::fs::write(
            &file,
            "[[apis]]\naudience = \"https://notes-api.example\"\nscopes = [\"notes:read\"]\n\
             [[scopes]]\nname = \"notes:read\"\ndescription = \"Read your notes\"\n\
             [[scopes]]\nname = \"email\"\ndescription = \"Your work address\"\n",
        )
        .expect("write");
        let settings = Settings::load(&ConfigSources {
            file: Some(file),
            ..ConfigSources::default()
        })
        .expect("loads");
        let names: Vec<&str> = settings.scopes.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["openid", "profile", "offline_access", "notes:read", "email"]
        );
        let email = settings
            .scopes
            .iter()
            .find(|s| s.name == "email")
            .expect("email");
        assert_eq!(email.description, "Your work address");
    }

    #[test]
    fn built_in_defaults_load_and_validate() {
        let settings = defaults();
        assert_eq!(settings.server.listen, "127.0.0.1:8080");
        assert_eq!(settings.database.url, "sqlite://data/tessera.db");
        assert_eq!(settings.environment, Environment::Development);
    }

    // SECURITY-CASES OP-06
    #[test]
    fn default_lifetimes_follow_the_security_cases() {
        let tokens = defaults().tokens;
        assert!(tokens.authorization_code_ttl_secs <= 60);
        assert!(tokens.access_token_ttl_secs <= 600);
        assert_eq!(tokens.refresh_token_idle_ttl_secs, 14 * 86_400);
        assert_eq!(tokens.refresh_token_absolute_ttl_secs, 90 * 86_400);
        assert_eq!(tokens.refresh_token_reuse_grace_secs, 0);
    }

    #[test]
    fn issuer_with_a_path_query_or_fragment_is_refused() {
        for bad in [
            "https://a.example/x",
            "https://a.example/?q=1",
            "https://a.example/#f",
            "ftp://a.example",
            "https://user:pw@a.example",
        ] {
            let url = Url::parse(bad).expect("test URL parses");
            assert!(
                validate_issuer(&url, Environment::Development).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn production_refuses_plain_http_except_on_loopback() {
        let public = Url::parse("http://auth.example.com").expect("parses");
        let loopback = Url::parse("http://127.0.0.1:8080").expect("parses");
        assert!(validate_issuer(&public, Environment::Production).is_err());
        assert!(validate_issuer(&public, Environment::Development).is_ok());
        assert!(validate_issuer(&loopback, Environment::Production).is_ok());
    }

    #[test]
    fn database_urls_pick_their_backend_by_scheme() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/x.db").expect("valid"),
            DatabaseUrl::Sqlite(PathBuf::from("data/x.db"))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").expect("valid"),
            DatabaseUrl::Sqlite(PathBuf::from("/tmp/x.db"))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://postgres@127.0.0.1/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn invalid_values_name_their_key() {
        let mut settings = defaults();
        settings.sessions.idle_timeout_secs = 0;
        let message = settings.validate().expect_err("refused").to_string();
        assert!(message.contains("sessions.idle_timeout_secs"), "{message}");
    }
}
