//! `spawn_app()`: the real server on a random port, with a fresh database
//! (a SQLite file, or a new PostgreSQL database when
//! `TESSERA_TEST_DATABASE_URL` is set), and an HTTP client that keeps
//! cookies and does not follow redirects, like a browser driven by hand.

use std::net::TcpListener;
use std::sync::{Arc, OnceLock};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use tessera::config::{ConfigSources, Settings};
use tessera::domain::NewAccount;
use tessera::startup::Application;
use tessera::storage::Db;

pub const PASSWORD: &str = "correct horse battery staple";

static TRACING: OnceLock<()> = OnceLock::new();

fn init_tracing(settings: &Settings) {
    TRACING.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tessera::telemetry::init(&settings.log);
        } else {
            tessera::telemetry::init_with_writer(&settings.log, std::io::sink);
        }
    });
}

/// The PostgreSQL server tests run against, if any.
pub fn postgres_base_url() -> Option<String> {
    std::env::var("TESSERA_TEST_DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres"))
}

/// The `host:port` of a PostgreSQL URL, for tests that put a proxy in front
/// of the server.
pub fn postgres_host_port(base: &str) -> String {
    base.trim_start_matches("postgres://")
        .trim_start_matches("postgresql://")
        .split('@')
        .next_back()
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in TESSERA_TEST_DATABASE_URL")
        .to_owned()
}

/// A database created for one test and dropped with it.
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    fn create(base: &str) -> (Self, String) {
        let base = base.trim_end_matches('/');
        let server = match base.rfind('/') {
            Some(i) if base[..i].ends_with('/') => base.to_owned(),
            Some(i) => base[..i].to_owned(),
            None => base.to_owned(),
        };
        let admin_url = format!("{server}/postgres");
        let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!(
                "TESSERA_TEST_DATABASE_URL is set but PostgreSQL at {admin_url} is unreachable: {e}"
            )
        });
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        let url = format!("{server}/{name}");
        (Self { admin_url, name }, url)
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.admin_url) {
            let _ = conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub db: Db,
    pub settings: Settings,
    /// The separate metrics listener's port, when configured.
    pub metrics_port: Option<u16>,
    /// The first browser; `app.get(..)` and friends go through it.
    pub browser: TestBrowser,
    _dir: tempfile::TempDir,
    _postgres: Option<PostgresDatabase>,
}

impl std::ops::Deref for TestApp {
    type Target = TestBrowser;
    fn deref(&self) -> &TestBrowser {
        &self.browser
    }
}

/// One browser: a cookie jar and a client that does not follow redirects.
pub struct TestBrowser {
    pub address: String,
    pub client: reqwest::Client,
    pub cookies: Arc<reqwest::cookie::Jar>,
}

impl TestBrowser {
    pub fn new(address: &str) -> Self {
        let cookies = Arc::new(reqwest::cookie::Jar::default());
        Self {
            address: address.to_owned(),
            client: client_with(cookies.clone()),
            cookies,
        }
    }
}

/// The default test settings: the built-in defaults with a fresh database.
pub fn test_settings() -> (Settings, tempfile::TempDir, Option<PostgresDatabase>) {
    let mut settings = Settings::load(&ConfigSources::default()).expect("defaults load");
    let dir = tempfile::tempdir().expect("temporary directory");
    let postgres = match postgres_base_url() {
        Some(base) => {
            let (db, url) = PostgresDatabase::create(&base);
            settings.database.url = url;
            Some(db)
        }
        None => {
            settings.database.url = format!("sqlite://{}", dir.path().join("tessera.db").display());
            None
        }
    };
    settings.keys.encryption_key_file = dir.path().join("key-encryption-key");
    settings.server.workers = 2;
    settings.database.max_connections = 16;
    settings.server.shutdown_timeout_secs = 1;
    settings.server.shutdown_drain_secs = 0;
    (settings, dir, postgres)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Boots the real server with `adjust` applied to the test settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let (settings, dir, postgres) = test_settings();
    boot(settings, adjust, dir, postgres).await
}

/// A second instance of `app`'s server: same database, same key-encryption
/// key, its own port, as behind a load balancer.
pub async fn spawn_instance_of(app: &TestApp) -> TestApp {
    let mut settings = app.settings.clone();
    settings.database.auto_migrate = false;
    let dir = tempfile::tempdir().expect("temporary directory");
    // Every instance serves the one public issuer.
    let issuer = app.settings.server.issuer.clone();
    boot(settings, move |s| s.server.issuer = issuer, dir, None).await
}

async fn boot(
    mut settings: Settings,
    adjust: impl FnOnce(&mut Settings),
    dir: tempfile::TempDir,
    postgres: Option<PostgresDatabase>,
) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a random port");
    let port = listener.local_addr().expect("bound address").port();
    settings.server.listen = format!("127.0.0.1:{port}");
    settings.server.issuer = format!("http://127.0.0.1:{port}")
        .parse()
        .expect("issuer URL");
    adjust(&mut settings);
    init_tracing(&settings);
    let app = Application::build_on(settings.clone(), listener)
        .await
        .expect("the application builds");
    let db = Db::connect(&settings.database).expect("test pool");
    let metrics_port = app.metrics_port();
    tokio::spawn(app.run_until_stopped());
    let address = format!("http://127.0.0.1:{port}");
    TestApp {
        browser: TestBrowser::new(&address),
        address,
        db,
        settings,
        metrics_port,
        _dir: dir,
        _postgres: postgres,
    }
}

/// A client that keeps cookies in `jar` and never follows redirects.
pub fn client_with(jar: Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_provider(jar)
        .build()
        .expect("HTTP client")
}

/// The value of `name="csrf_token"` in a page.
pub fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the page has a CSRF field") + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

/// All `Set-Cookie` headers of a response.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ASCII cookie").to_owned())
        .collect()
}

/// The `Set-Cookie` header for cookie `name`, if any.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("ASCII location")
        .to_owned()
}

impl TestApp {
    /// Another, independent browser against the same server.
    pub fn new_browser(&self) -> TestBrowser {
        TestBrowser::new(&self.address)
    }

    /// Creates a user directly (no HTTP, no sign-up throttle).
    pub async fn create_user(&self, username: &str, password: &str) {
        let account = NewAccount::parse(username, "", "", password.to_owned(), None, 8)
            .expect("valid test account");
        tessera::auth::admin::add_user(&self.db, account)
            .await
            .expect("user created");
    }
}

impl TestBrowser {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("body")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    /// A fresh CSRF token for this client from the sign-in page.
    pub async fn login_csrf(&self) -> String {
        csrf_token(&self.get_html("/login").await)
    }

    /// Signs in through the real form.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        let csrf = self.login_csrf().await;
        self.post_form(
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("csrf_token", &csrf),
            ],
        )
        .await
    }

    /// Signs up through the real form.
    pub async fn signup(&self, username: &str, password: &str) -> reqwest::Response {
        let csrf = csrf_token(&self.get_html("/signup").await);
        self.post_form(
            "/signup",
            &[
                ("username", username),
                ("password", password),
                ("password_confirmation", password),
                ("csrf_token", &csrf),
            ],
        )
        .await
    }

    /// The session cookie this client holds, if any.
    pub fn session_cookie(&self) -> Option<String> {
        use reqwest::cookie::CookieStore as _;
        let url = self.address.parse().expect("address URL");
        let header = self.cookies.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|pair| pair.strip_prefix("tessera_session="))
            .map(str::to_owned)
    }
}

/// A registered client as tests use it.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

/// `C1`: confidential, redirect `https://client.example/cb`.
pub fn confidential_client() -> tessera::oauth::clients::ClientRegistration {
    tessera::oauth::clients::ClientRegistration {
        name: "Client One".to_owned(),
        redirect_uris: vec!["https://client.example/cb".to_owned()],
        scopes: ["openid", "profile", "email", "offline_access"]
            .map(str::to_owned)
            .to_vec(),
        grant_types: ["authorization_code", "refresh_token", "client_credentials"]
            .map(str::to_owned)
            .to_vec(),
        ..Default::default()
    }
}

/// `P1`: public, redirects `https://app.example/cb` and `http://127.0.0.1/cb`.
pub fn public_client() -> tessera::oauth::clients::ClientRegistration {
    tessera::oauth::clients::ClientRegistration {
        name: "Public App".to_owned(),
        public: true,
        redirect_uris: vec![
            "https://app.example/cb".to_owned(),
            "http://127.0.0.1/cb".to_owned(),
        ],
        scopes: ["openid", "profile", "offline_access"]
            .map(str::to_owned)
            .to_vec(),
        ..Default::default()
    }
}

/// An RFC 7636 verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The query parameters of a URL.
pub fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(location).expect("absolute URL");
    url.query_pairs().into_owned().collect()
}

impl TestApp {
    pub async fn register(
        &self,
        registration: tessera::oauth::clients::ClientRegistration,
    ) -> TestClient {
        let settings = self.settings.clone();
        let redirect_uri = registration
            .redirect_uris
            .first()
            .cloned()
            .unwrap_or_default();
        let registered = self
            .db
            .run(move |conn| {
                tessera::oauth::clients::register(
                    conn,
                    &settings,
                    &registration,
                    tessera::domain::now(),
                )
            })
            .await
            .expect("client registered");
        TestClient {
            id: registered.client.id.as_str().to_owned(),
            secret: registered.secret.map(|s| s.expose().to_owned()),
            redirect_uri,
        }
    }

    /// A user signed in on the first browser.
    pub async fn signed_in(&self, username: &str) {
        self.create_user(username, PASSWORD).await;
        assert_eq!(self.login(username, PASSWORD).await.status(), 303);
    }
}

impl TestBrowser {
    /// `/oauth2/authorize?...` with these parameters.
    pub async fn authorize(&self, params: &[(&str, &str)]) -> reqwest::Response {
        let query = serde_urlencoded::to_string(params).expect("encodable");
        self.get(&format!("/oauth2/authorize?{query}")).await
    }

    /// Answers the consent page in `html` with `decision` and the ticked
    /// scopes (None: leave the form's defaults).
    pub async fn consent(
        &self,
        html: &str,
        decision: &str,
        scopes: Option<&[&str]>,
    ) -> reqwest::Response {
        let csrf = csrf_token(html);
        let marker = "name=\"request\" value=\"";
        let start = html.find(marker).expect("a consent form") + marker.len();
        let end = html[start..].find('"').expect("quote") + start;
        let request = &html[start..end];
        let mut form: Vec<(&str, String)> = vec![
            ("csrf_token", csrf.clone()),
            ("request", request.to_owned()),
            ("decision", decision.to_owned()),
        ];
        let defaults: Vec<String>;
        let ticked: Vec<&str> = match scopes {
            Some(scopes) => scopes.to_vec(),
            None => {
                defaults = html
                    .split("name=\"scope\" value=\"")
                    .skip(1)
                    .map(|rest| rest[..rest.find('"').expect("quote")].to_owned())
                    .collect();
                defaults.iter().map(String::as_str).collect()
            }
        };
        for scope in ticked {
            form.push(("scope", scope.to_owned()));
        }
        self.client
            .post(self.url("/oauth2/authorize"))
            .form(&form)
            .send()
            .await
            .expect("POST consent")
    }

    /// The whole front channel: authorize, approve, return the code.
    pub async fn obtain_code(
        &self,
        client: &TestClient,
        scope: &str,
        challenge: Option<&str>,
    ) -> String {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("scope", scope),
            ("state", "xyz"),
        ];
        if let Some(challenge) = challenge {
            params.push(("code_challenge", challenge));
            params.push(("code_challenge_method", "S256"));
        }
        let response = self.authorize(&params).await;
        let location = if response.status() == 200 {
            let html = response.text().await.expect("consent page");
            let answered = self.consent(&html, "allow", None).await;
            assert_eq!(answered.status(), 303, "AZ-04: consent answers with 303");
            location(&answered)
        } else {
            assert_eq!(
                response.status(),
                302,
                "remembered consent redirects at once"
            );
            location(&response)
        };
        let query = query_of(&location);
        assert_eq!(query.get("state").map(String::as_str), Some("xyz"));
        query
            .get("code")
            .cloned()
            .unwrap_or_else(|| panic!("no code in {location}"))
    }

    /// POST /oauth2/token with a form, authenticating as `client`
    /// (Basic for confidential clients, client_id for public ones).
    pub async fn token(&self, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.post(self.url("/oauth2/token"));
        let mut form: Vec<(&str, &str)> = form.to_vec();
        match &client.secret {
            Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
            None => form.push(("client_id", &client.id)),
        }
        request.form(&form).send().await.expect("POST token")
    }
}
