//! The `tessera` binary's commands, run as a user would run them.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use diesel::prelude::*;
use tessera::storage::schema::users;
use tessera::storage::{Db, StorageError};

use crate::helpers::{PASSWORD, test_settings};

struct Cli {
    database_url: String,
    settings: tessera::config::Settings,
    _dir: tempfile::TempDir,
    _postgres: Option<crate::helpers::PostgresDatabase>,
}

impl Cli {
    fn new() -> Self {
        let (settings, dir, postgres) = test_settings();
        Self {
            database_url: settings.database.url.clone(),
            settings,
            _dir: dir,
            _postgres: postgres,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .args(args)
            .env("TESSERA__DATABASE__URL", &self.database_url)
            .env("RUST_LOG", "warn")
            .env_remove("TESSERA_ENV");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("tessera runs")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tessera starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("tessera finishes")
    }

    async fn stored_hash(&self, username: &str) -> String {
        let db = Db::connect(&self.settings.database).expect("pool");
        let username = username.to_owned();
        db.run(move |conn| {
            Ok::<_, StorageError>(
                users::table
                    .filter(users::username.eq(username))
                    .select(users::password_hash)
                    .first::<String>(conn)?,
            )
        })
        .await
        .expect("read hash")
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn user_commands_create_list_disable_and_reset_passwords() {
    let cli = Cli::new();
    let added = cli.run_with_stdin(
        &[
            "user",
            "add",
            "Alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(stdout(&added).contains("created user alice"));

    // SECURITY-CASES LG-04: the stored form is an Argon2id PHC string.
    let hash = cli.stored_hash("alice").await;
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(PASSWORD));

    let listed = cli.run(&["user", "list", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let users: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(users[0]["username"], "alice");
    assert_eq!(users[0]["email"], "alice@example.com");
    assert_eq!(users[0]["disabled"], false);

    let disabled = cli.run(&["user", "disable", "alice"]);
    assert!(disabled.status.success(), "{}", stderr(&disabled));
    let listed: serde_json::Value =
        serde_json::from_slice(&cli.run(&["user", "list", "--json"]).stdout).expect("JSON");
    assert_eq!(listed[0]["disabled"], true);
    assert!(cli.run(&["user", "enable", "alice"]).status.success());

    let reset = cli.run_with_stdin(
        &["user", "set-password", "alice", "--password-stdin"],
        "another long password\n",
    );
    assert!(reset.status.success(), "{}", stderr(&reset));
    assert_ne!(cli.stored_hash("alice").await, hash);

    let human = cli.run(&["user", "list"]);
    assert!(stdout(&human).contains("alice"));
}

#[tokio::test]
async fn passwords_are_never_taken_from_the_command_line() {
    let cli = Cli::new();
    let output = cli.run(&["user", "add", "bob"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--password-stdin"),
        "{}",
        stderr(&output)
    );

    let empty = cli.run_with_stdin(&["user", "add", "bob", "--password-stdin"], "");
    assert!(!empty.status.success());
    assert!(stderr(&empty).contains("no password on standard input"));

    let weak = cli.run_with_stdin(&["user", "add", "bob", "--password-stdin"], "short\n");
    assert!(!weak.status.success());
    assert!(stderr(&weak).contains("at least 8"), "{}", stderr(&weak));
}

#[tokio::test]
async fn duplicate_and_unknown_users_are_reported() {
    let cli = Cli::new();
    assert!(
        cli.run_with_stdin(
            &["user", "add", "carol", "--password-stdin"],
            &format!("{PASSWORD}\n")
        )
        .status
        .success()
    );
    let again = cli.run_with_stdin(
        &["user", "add", "CAROL", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(!again.status.success());
    assert!(stderr(&again).contains("taken"));
    let missing = cli.run(&["user", "disable", "nobody"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("no user named `nobody`"));
}

#[tokio::test]
async fn migrate_applies_once_then_reports_up_to_date() {
    let cli = Cli::new();
    let first = cli.run(&["migrate"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).contains("applied"));
    let second = cli.run(&["migrate"]);
    assert!(stdout(&second).contains("up to date"));
}

#[test]
fn config_check_names_the_key_at_fault() {
    let cli = Cli::new();
    let ok = cli.run(&["config", "check"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("configuration is valid"));

    for (variable, value, key) in [
        (
            "TESSERA__SERVER__ISSUER",
            "ftp://auth.example.com",
            "server.issuer",
        ),
        (
            "TESSERA__SERVER__ISSUER",
            "https://auth.example.com/path?x=1",
            "server.issuer",
        ),
        ("TESSERA__SERVER__LISTEN", "nonsense", "server.listen"),
        ("TESSERA__DATABASE__URL", "mysql://db", "database.url"),
        (
            "TESSERA__SESSIONS__IDLE_TIMEOUT_SECS",
            "0",
            "sessions.idle_timeout_secs",
        ),
        ("TESSERA__SERVER__BOGUS", "1", "bogus"),
        ("TESSERA__LOG__FORMAT", "xml", "xml"),
    ] {
        let output = cli
            .command(&["config", "check"])
            .env(variable, value)
            .output()
            .expect("runs");
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        assert!(
            stderr(&output).contains(key),
            "{variable}={value}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn production_refuses_a_plain_http_public_issuer_and_the_placeholder() {
    let cli = Cli::new();
    let output = cli
        .command(&["config", "check"])
        .env("TESSERA_ENV", "production")
        .env("TESSERA__SERVER__ISSUER", "http://auth.example.com")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("production requires an https issuer"),
        "{}",
        stderr(&output)
    );

    let placeholder = cli
        .command(&["config", "check"])
        .env("TESSERA_ENV", "production")
        .output()
        .expect("runs");
    assert_eq!(placeholder.status.code(), Some(2));
    assert!(
        stderr(&placeholder).contains("placeholder"),
        "{}",
        stderr(&placeholder)
    );

    let no_key = cli
        .command(&["config", "check"])
        .env("TESSERA_ENV", "production")
        .env("TESSERA__SERVER__ISSUER", "https://auth.example.com")
        .output()
        .expect("runs");
    assert_eq!(no_key.status.code(), Some(2));
    assert!(
        stderr(&no_key).contains("keys.encryption_key"),
        "{}",
        stderr(&no_key)
    );

    let good = cli
        .command(&["config", "check"])
        .env("TESSERA_ENV", "production")
        .env("TESSERA__SERVER__ISSUER", "https://auth.example.com")
        .env(
            "TESSERA__KEYS__ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .output()
        .expect("runs");
    assert!(good.status.success(), "{}", stderr(&good));
}

#[test]
fn a_config_file_is_layered_over_the_defaults() {
    let cli = Cli::new();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("tessera.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:9999\"\n").expect("write");
    let output = cli.run(&["--config", file.to_str().expect("UTF-8"), "config", "check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("127.0.0.1:9999"));
    let missing = cli.run(&["--config", "/nonexistent/tessera.toml", "config", "check"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[tokio::test]
async fn client_commands_register_show_rotate_verify_and_remove() {
    let cli = Cli::new();
    let added = cli.run(&[
        "client",
        "add",
        "--name",
        "Notes",
        "--redirect-uri",
        "https://notes.example/cb",
        "--scope",
        "openid",
        "--scope",
        "profile",
        "--json",
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
    let client: serde_json::Value = serde_json::from_slice(&added.stdout).expect("JSON");
    let id = client["client_id"].as_str().expect("id").to_owned();
    let secret = client["client_secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    assert!(secret.len() >= 43, "at least 256 bits");
    assert_eq!(client["client_type"], "confidential");

    let shown = cli.run(&["client", "show", &id, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    assert!(shown.get("client_secret").is_none(), "never shown again");
    assert_eq!(shown["redirect_uris"][0], "https://notes.example/cb");

    let rotated = cli.run(&["client", "rotate-secret", &id, "--json"]);
    let rotated: serde_json::Value = serde_json::from_slice(&rotated.stdout).expect("JSON");
    assert_ne!(rotated["client_secret"], secret.as_str());
    assert!(cli.run(&["client", "verify", &id]).status.success());
    let listed = cli.run(&["client", "list"]);
    assert!(stdout(&listed).contains("Notes"));

    // SECURITY-CASES OP-03: only digests at rest.
    let db = Db::connect(&cli.settings.database).expect("pool");
    let hashes: Vec<Option<String>> = db
        .run(|conn| {
            use tessera::storage::schema::clients;
            Ok::<_, StorageError>(clients::table.select(clients::secret_hash).load(conn)?)
        })
        .await
        .expect("read");
    let new_secret = rotated["client_secret"].as_str().expect("secret");
    assert!(
        hashes
            .iter()
            .flatten()
            .all(|h| h != new_secret && h != &secret)
    );

    assert!(cli.run(&["client", "remove", &id]).status.success());
    assert!(!cli.run(&["client", "show", &id]).status.success());
}

// SECURITY-CASES RU-07
#[test]
fn client_registration_refuses_unsafe_redirect_uris_and_stores_nothing() {
    let cli = Cli::new();
    for uri in [
        "https://x.example/cb#frag",
        "javascript:alert(1)",
        "https://*.example/cb",
        "http://x.example/cb",
        "myapp:/cb",
    ] {
        let output = cli.run(&[
            "client",
            "add",
            "--name",
            "Bad",
            "--redirect-uri",
            uri,
            "--scope",
            "openid",
        ]);
        assert!(!output.status.success(), "{uri}");
        assert!(
            stderr(&output).contains("invalid redirect URI"),
            "{uri}: {}",
            stderr(&output)
        );
    }
    let unknown_scope = cli.run(&[
        "client",
        "add",
        "--name",
        "Bad",
        "--redirect-uri",
        "https://x.example/cb",
        "--scope",
        "admin",
    ]);
    assert!(!unknown_scope.status.success());
    let listed = cli.run(&["client", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listed, serde_json::json!([]));
}

/// `client rotate-secret` says what is true: the previous secret keeps
/// working through the overlap, and `--revoke-previous` stops it at once.
#[tokio::test]
async fn rotate_secret_keeps_the_previous_secret_for_the_overlap_unless_told_otherwise() {
    let app = crate::helpers::spawn_app_with(|s| s.database.cache_ttl_ms = 0).await;
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .env("TESSERA__DATABASE__URL", &app.settings.database.url)
            .env("RUST_LOG", "warn")
            .env_remove("TESSERA_ENV")
            .output()
            .expect("tessera runs")
    };
    let added = cli(&["client", "add", "--name", "Billing job", "--json"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let added: serde_json::Value = serde_json::from_slice(&added.stdout).expect("JSON");
    let id = added["client_id"].as_str().expect("id").to_owned();
    let first = added["client_secret"].as_str().expect("secret").to_owned();
    let token_status = |secret: String| {
        let (client, address, id) = (app.client.clone(), app.address.clone(), id.clone());
        async move {
            client
                .post(format!("{address}/oauth2/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("token request")
                .status()
                .as_u16()
        }
    };
    assert_eq!(token_status(first.clone()).await, 200);

    let rotated = cli(&["client", "rotate-secret", &id]);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let text = stdout(&rotated);
    assert!(
        text.contains("previous secret keeps working for 24 hours")
            && text.contains("--revoke-previous")
            && !text.contains("no longer works"),
        "{text}"
    );
    let second = text
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("new secret printed")
        .to_owned();
    assert_eq!(token_status(first.clone()).await, 200, "overlap");
    assert_eq!(token_status(second.clone()).await, 200);

    let revoked = cli(&[
        "client",
        "rotate-secret",
        &id,
        "--revoke-previous",
        "--json",
    ]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let revoked: serde_json::Value = serde_json::from_slice(&revoked.stdout).expect("JSON");
    assert_eq!(revoked["previous_secret_valid_for_secs"], 0);
    let third = revoked["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert_eq!(token_status(second).await, 401, "leaked secret stopped");
    assert_eq!(token_status(first).await, 401);
    assert_eq!(token_status(third).await, 200);
}

/// The profiles are compiled in: `TESSERA_ENV=production` means production
/// in any directory, and an unknown name is refused, never development.
#[test]
fn tessera_env_names_a_compiled_profile_or_a_file_and_nothing_else() {
    let cli = Cli::new();
    let elsewhere = tempfile::tempdir().expect("dir");
    let in_dir = |env: &str| {
        cli.command(&["config", "check"])
            .current_dir(elsewhere.path())
            .env("TESSERA_ENV", env)
            .output()
            .expect("runs")
    };
    let production = in_dir("production");
    assert_eq!(production.status.code(), Some(2), "{}", stdout(&production));
    assert!(
        stderr(&production).contains("placeholder"),
        "{}",
        stderr(&production)
    );

    for typo in ["prod", "Production", "dev"] {
        let output = in_dir(typo);
        assert_eq!(output.status.code(), Some(2), "{typo}: {}", stdout(&output));
        assert!(
            stderr(&output).contains(&format!("unknown profile `{typo}`")),
            "{typo}: {}",
            stderr(&output)
        );
    }

    std::fs::create_dir(elsewhere.path().join("config")).expect("mkdir");
    std::fs::write(
        elsewhere.path().join("config/staging.toml"),
        "[server]\nlisten = \"127.0.0.1:7777\"\n",
    )
    .expect("write");
    let staging = in_dir("staging");
    assert!(staging.status.success(), "{}", stderr(&staging));
    assert!(stdout(&staging).contains("127.0.0.1:7777"));
    let development = in_dir("development");
    assert!(development.status.success(), "{}", stderr(&development));
    assert!(stdout(&development).contains("Development"));
}

/// `client show` tells everything but the secret; `client list` columns line
/// up whatever the lengths; a resource server whose audience no `[[apis]]`
/// entry names is warned about when it is registered.
#[test]
fn client_show_is_complete_lists_line_up_and_an_unowned_audience_is_explained() {
    let cli = Cli::new();
    let added = cli.run(&[
        "client",
        "add",
        "--name",
        "A rather long application name for the list",
        "--redirect-uri",
        "https://notes.example/cb",
        "--post-logout-redirect-uri",
        "https://notes.example/bye",
        "--homepage",
        "https://notes.example",
        "--json",
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
    let added: serde_json::Value = serde_json::from_slice(&added.stdout).expect("JSON");
    let id = added["client_id"].as_str().expect("id").to_owned();
    assert_eq!(
        added["post_logout_redirect_uris"][0],
        "https://notes.example/bye"
    );
    assert_eq!(added["token_endpoint_auth_method"], "client_secret_basic");

    let shown = stdout(&cli.run(&["client", "show", &id]));
    for expected in [
        "post-logout URI:",
        "https://notes.example/bye",
        "homepage:",
        "https://notes.example",
        "auth method:",
        "client_secret_basic",
        "created:",
    ] {
        assert!(shown.contains(expected), "{expected} missing from\n{shown}");
    }
    let value_column: Vec<usize> = shown
        .lines()
        .map(|l| {
            let colon = l.find(':').expect("label: value");
            let rest = &l[colon + 1..];
            colon + 1 + rest.len() - rest.trim_start().len()
        })
        .collect();
    assert!(value_column.windows(2).all(|w| w[0] == w[1]), "{shown}");

    let unowned = cli.run(&[
        "client",
        "add",
        "--name",
        "Notes API",
        "--resource-server",
        "https://notes-api.example",
    ]);
    assert!(unowned.status.success(), "{}", stderr(&unowned));
    assert!(
        stderr(&unowned).contains("no [[apis]] entry has audience `https://notes-api.example`"),
        "{}",
        stderr(&unowned)
    );
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("apis.toml");
    std::fs::write(
        &file,
        "[[apis]]\naudience = \"https://notes-api.example\"\nscopes = [\"notes:read\"]\n\
         [[scopes]]\nname = \"notes:read\"\ndescription = \"Read your notes\"\n",
    )
    .expect("write");
    let owned = cli.run(&[
        "--config",
        file.to_str().expect("UTF-8"),
        "client",
        "add",
        "--name",
        "Notes API 2",
        "--resource-server",
        "https://notes-api.example",
    ]);
    assert!(owned.status.success(), "{}", stderr(&owned));
    assert!(!stderr(&owned).contains("warning"), "{}", stderr(&owned));

    let listed = stdout(&cli.run(&["client", "list"]));
    let lines: Vec<&str> = listed.lines().collect();
    let name_at = lines[0].find("NAME").expect("header");
    let type_at = lines[0].find("TYPE").expect("header");
    for line in &lines[1..] {
        assert!(
            line[type_at..].starts_with("confidential") || line[type_at..].starts_with("public"),
            "{listed}"
        );
        assert!(
            line[name_at..].starts_with("A rather") || line[name_at..].starts_with("Notes API"),
            "{listed}"
        );
    }
}
