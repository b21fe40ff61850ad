//! The command line: `tessera serve`, `migrate`, `prune`, `config check`,
//! `user ...` (users.rs), `client ...` (clients.rs), `grant ...` (grants.rs),
//! `key ...`, `audit list` and `registration-token create`. Passwords are
//! only ever read from standard input.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

mod clients;
mod grants;
mod table;
mod users;

use crate::auth;
use crate::config::Settings;
use crate::domain::{format_date, now};
use crate::startup::Application;
use crate::storage::Db;
use clients::run_client;
use grants::run_grant;
use users::{parse_username, run_user};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "An OAuth 2 / OpenID Connect authorization server"
)]
pub struct Cli {
    /// A TOML file layered over config/default.toml and config/<TESSERA_ENV>.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (what a bare `tessera` does).
    Serve {
        /// Listen on this port instead of server.listen's (same address).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth clients (applications).
    #[command(subcommand)]
    Client(ClientCommand),
    /// The audit log: sign-ins, consents, revocations, client and key changes.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Signing keys: list and rotate.
    #[command(subcommand)]
    Key(KeyCommand),
    /// List and revoke grants (authorizations): revoking one kills every
    /// token born from it.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Initial access tokens for Dynamic Client Registration
    /// (registration.mode = "token").
    #[command(subcommand)]
    RegistrationToken(RegistrationTokenCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Delete expired sessions and stale throttle counters now.
    Prune,
    /// Measurements for the benchmark (bench/load.sh).
    #[command(subcommand, hide = true)]
    Diagnose(DiagnoseCommand),
}

#[derive(Debug, Subcommand)]
pub enum DiagnoseCommand {
    /// Prints how many access tokens one core signs per second with a fresh
    /// in-memory key of ALGORITHM: the ceiling of the token endpoint.
    SignRate {
        /// ES256, EdDSA or RS256.
        #[arg(long, default_value = "ES256")]
        algorithm: String,
        /// How long to measure.
        #[arg(long, default_value_t = 2)]
        seconds: u64,
    },
    /// Prints how many access tokens one core verifies per second (header,
    /// signature and claims, no cache) with a fresh key of ALGORITHM: the
    /// ceiling of introspecting tokens never seen before.
    VerifyRate {
        /// ES256, EdDSA or RS256.
        #[arg(long, default_value = "ES256")]
        algorithm: String,
        /// How long to measure.
        #[arg(long, default_value_t = 2)]
        seconds: u64,
    },
    /// Inserts COUNT grants of CLIENT_ID, each with a refresh token whose
    /// plaintext is `seed-rt-<n>`: bulk rows for the benchmark's cost-growth
    /// runs. Never on a production database.
    Seed {
        /// The client the grants belong to.
        #[arg(long)]
        client_id: String,
        /// How many grants to insert.
        #[arg(long)]
        count: u64,
        /// The first n (to add more later).
        #[arg(long, default_value_t = 0)]
        first: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        /// Letters, digits, `.`, `_` and `-`; what the user signs in with.
        username: String,
        /// The email address the `email` scope shares.
        #[arg(long)]
        email: Option<String>,
        /// The name the `profile` scope shares and the pages show.
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        password: PasswordStdin,
    },
    /// List users.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: sign-in is refused and their sessions end.
    Disable {
        /// The user's username.
        username: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user's username.
        username: String,
    },
    /// Set a user's password from standard input; their sessions end.
    SetPassword {
        /// The user's username.
        username: String,
        #[command(flatten)]
        password: PasswordStdin,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. Confidential clients get a secret, printed once.
    Add {
        /// The name users see on the consent page.
        #[arg(long)]
        name: String,
        /// An exact redirect URI; repeat for several.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A scope the client may ask for; repeat for several.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// A public client (native or single-page app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// A grant type it may use (authorization_code, refresh_token,
        /// client_credentials); repeat for several. Default: authorization_code
        /// and refresh_token, or client_credentials when no redirect URI is given.
        #[arg(long = "grant-type", value_name = "TYPE")]
        grant_types: Vec<String>,
        /// The app's home page (https), linked from the consent page.
        #[arg(long)]
        homepage: Option<String>,
        /// Operated by you: users are not asked for consent.
        #[arg(long)]
        first_party: bool,
        /// Issue refresh tokens even without the offline_access scope.
        #[arg(long)]
        always_refresh: bool,
        /// Where OpenID Connect logout may send the browser back; repeatable.
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// Make the client a resource server allowed to introspect tokens
        /// whose audience is AUDIENCE.
        #[arg(long, value_name = "AUDIENCE")]
        resource_server: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Show one client: everything but its secret.
    Show {
        /// The client's id.
        id: String,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret; the old one keeps working for
    /// registration.secret_rotation_overlap_secs (default 24 h) unless
    /// --revoke-previous is given.
    RotateSecret {
        /// The client's id.
        id: String,
        /// Stop the previous secret at once (it leaked) instead of letting it
        /// work through the overlap.
        #[arg(long)]
        revoke_previous: bool,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Mark a client verified (the consent page stops warning about it).
    Verify {
        /// The client's id.
        id: String,
    },
    /// Delete a client and every grant and token it holds.
    Remove {
        /// The client's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List events, newest first.
    List {
        /// Only events of the last SECONDS (default: a day).
        #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
        since: i64,
        /// Only this user's events (username).
        #[arg(long)]
        user: Option<String>,
        /// Only this client's events (client id).
        #[arg(long)]
        client: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List signing keys, newest first.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Create a new key: published in the JWKS now, signing after
    /// keys.publish_ahead_secs; the old key stays published until every token
    /// it signed has expired.
    Rotate {
        /// ES256, EdDSA or RS256 (default: keys.algorithm).
        #[arg(long)]
        algorithm: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegistrationTokenCommand {
    /// Mint a token; it is printed once and stored only as a hash.
    Create {
        /// Seconds until it expires.
        #[arg(long, default_value_t = 86_400)]
        expires_in: i64,
        /// How many registrations it allows.
        #[arg(long, default_value_t = 1)]
        uses: i32,
    },
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// List active grants, newest first.
    List {
        /// Only this user's (username).
        #[arg(long)]
        user: Option<String>,
        /// Only this client's (client id).
        #[arg(long)]
        client: Option<String>,
        /// Include revoked grants.
        #[arg(long)]
        all: bool,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one grant, or every grant of a user or of a client.
    Revoke {
        /// The grant's id (from `grant list`).
        #[arg(long, conflicts_with_all = ["user", "client"], required_unless_present_any = ["user", "client"])]
        grant: Option<String>,
        /// Every grant of this user (username).
        #[arg(long, conflicts_with = "client")]
        user: Option<String>,
        /// Every grant of this client (client id).
        #[arg(long)]
        client: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct PasswordStdin {
    /// Read the password from the first line of standard input. Required:
    /// passwords never go on the command line, where `ps` and shell history
    /// would keep them.
    #[arg(long, required = true)]
    password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration, print a summary, change nothing.
    Check,
}

/// Runs a command with loaded settings.
pub async fn run(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { port } => {
            if let Some(port) = port {
                let address: std::net::SocketAddr = settings.server.listen.parse()?;
                settings.server.listen = std::net::SocketAddr::new(address.ip(), port).to_string();
                follow_port_on_loopback(&mut settings, address.port(), port);
            }
            let issuer = settings.server.issuer_str().to_owned();
            let app = Application::build(settings).await?;
            tracing::info!(
                port = app.port(),
                url = %issuer,
                "tessera is listening on port {}; open {issuer}/ in a browser",
                app.port()
            );
            app.run_until_stopped().await.context("serving HTTP")
        }
        Command::Migrate => {
            let db = Db::connect(&settings.database)?;
            let applied = db.migrate().await.context("applying migrations")?;
            if applied.is_empty() {
                println!("The database is up to date.");
            }
            for version in applied {
                println!("applied {version}");
            }
            Ok(())
        }
        Command::User(command) => run_user(command, &settings).await,
        Command::Client(command) => run_client(command, settings).await,
        Command::Grant(command) => run_grant(command, &settings).await,
        Command::Audit(AuditCommand::List {
            since,
            user,
            client,
            json,
        }) => {
            let db = migrated(&settings).await?;
            let user_id = match user {
                Some(name) => {
                    let username = parse_username(&name)?;
                    let found = db
                        .run(move |conn| crate::storage::users::find_by_username(conn, &username))
                        .await?;
                    Some(
                        found
                            .ok_or_else(|| anyhow::anyhow!("no user named `{name}`"))?
                            .id
                            .as_str()
                            .to_owned(),
                    )
                }
                None => None,
            };
            let cutoff = now() - since.max(0);
            let events = db
                .run(move |conn| {
                    crate::storage::audit::list(
                        conn,
                        cutoff,
                        user_id.as_deref(),
                        client.as_deref(),
                        1000,
                    )
                })
                .await?;
            if json {
                let rows: Vec<_> = events
                    .iter()
                    .map(|e| {
                        json!({
                            "at": e.at, "event": e.event, "user_id": e.user_id,
                            "client_id": e.client_id, "detail": e.detail,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        vec![
                            crate::domain::format_time(e.at),
                            e.event.clone(),
                            e.user_id.clone().unwrap_or_else(|| "-".to_owned()),
                            e.client_id.clone().unwrap_or_else(|| "-".to_owned()),
                            e.detail.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table::print(
                    &["AT (UTC)", "EVENT", "USER", "CLIENT", "DETAIL"],
                    &rows,
                    "no events in that period",
                );
            }
            Ok(())
        }
        Command::Key(KeyCommand::List { json }) => {
            let db = migrated(&settings).await?;
            let keys = db.run(crate::storage::keys::list_all).await?;
            let at = now();
            let status = |k: &crate::storage::keys::StoredKey| {
                if k.retired_at.is_some() {
                    "retired"
                } else if k.activates_at > at {
                    "published"
                } else {
                    "active"
                }
            };
            if json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        json!({
                            "kid": k.kid, "algorithm": k.algorithm, "status": status(k),
                            "created_at": k.created_at, "activates_at": k.activates_at, "retired_at": k.retired_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.kid.clone(),
                            k.algorithm.clone(),
                            status(k).to_owned(),
                            format_date(k.created_at),
                        ]
                    })
                    .collect();
                table::print(
                    &["KID", "ALG", "STATUS", "CREATED"],
                    &rows,
                    "no signing keys yet; `tessera serve` creates one",
                );
            }
            Ok(())
        }
        Command::Key(KeyCommand::Rotate { algorithm }) => {
            let db = migrated(&settings).await?;
            let algorithm = match algorithm {
                Some(raw) => crate::config::SigningAlgorithm::parse(&raw).ok_or_else(|| {
                    anyhow::anyhow!("unknown algorithm `{raw}`: use ES256, EdDSA or RS256")
                })?,
                None => settings.keys.algorithm,
            };
            let key = crate::oauth::keys::rotate(
                &db,
                &settings.keys,
                settings.environment,
                algorithm,
                now(),
            )
            .await?;
            println!(
                "created {} key {}: published now, signing in {} seconds",
                key.algorithm, key.kid, settings.keys.publish_ahead_secs
            );
            Ok(())
        }
        Command::RegistrationToken(RegistrationTokenCommand::Create { expires_in, uses }) => {
            if expires_in <= 0 || uses <= 0 {
                bail!("--expires-in and --uses must be positive");
            }
            let db = migrated(&settings).await?;
            let token = db
                .run(move |conn| {
                    crate::oauth::registration::create_initial_token(conn, uses, expires_in, now())
                })
                .await
                .map_err(|e| anyhow::anyhow!("no token was created: {e:?}"))?;
            println!("{}", token.expose());
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => {
            println!("configuration is valid");
            println!("  environment: {:?}", settings.environment);
            println!("  listen:      {}", settings.server.listen);
            println!("  issuer:      {}", settings.server.issuer_str());
            println!("  database:    {}", redact_url(&settings.database.url));
            println!(
                "  sign-up:     {}",
                if settings.accounts.signup_enabled {
                    "open"
                } else {
                    "off"
                }
            );
            Ok(())
        }
        Command::Diagnose(DiagnoseCommand::SignRate { algorithm, seconds }) => {
            let (keys, claims) = diagnose_keys(&settings, &algorithm)?;
            let started = std::time::Instant::now();
            let mut signed = 0_u64;
            while started.elapsed().as_secs() < seconds {
                keys.sign_access_token(&claims)?;
                signed += 1;
            }
            println!("{:.0}", signed as f64 / started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::Diagnose(DiagnoseCommand::VerifyRate { algorithm, seconds }) => {
            let (keys, claims) = diagnose_keys(&settings, &algorithm)?;
            let token = keys.sign_access_token(&claims)?;
            let issuer = settings.server.issuer_str();
            let started = std::time::Instant::now();
            let mut verified = 0_u64;
            while started.elapsed().as_secs() < seconds {
                keys.verify_access_token(&token, issuer, 0)
                    .map_err(|e| anyhow::anyhow!("verification failed: {e:?}"))?;
                verified += 1;
            }
            println!("{:.0}", verified as f64 / started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::Diagnose(DiagnoseCommand::Seed {
            client_id,
            count,
            first,
        }) => {
            let db = migrated(&settings).await?;
            let client_id = crate::domain::ClientId::parse(&client_id)
                .ok_or_else(|| anyhow::anyhow!("`{client_id}` is not a client id"))?;
            let at = now();
            db.run_unbounded(move |conn| {
                crate::storage::seed::insert_grants(conn, &client_id, first, count, at)
            })
            .await
            .context("seeding grants")?;
            println!("inserted {count} grants with one refresh token each");
            Ok(())
        }
        Command::Prune => {
            let db = migrated(&settings).await?;
            let removed = auth::prune(&db, &settings, now()).await?;
            println!("removed {removed} expired rows");
            Ok(())
        }
    }
}

/// A fresh in-memory key of `algorithm` and claims to sign with it.
fn diagnose_keys(
    settings: &Settings,
    algorithm: &str,
) -> anyhow::Result<(crate::oauth::keys::KeySet, crate::oauth::keys::AccessClaims)> {
    let algorithm = crate::config::SigningAlgorithm::parse(algorithm)
        .ok_or_else(|| anyhow::anyhow!("unknown algorithm `{algorithm}`"))?;
    let keys = crate::oauth::keys::KeySet::ephemeral(&[algorithm])?;
    let at = now();
    let claims = crate::oauth::keys::AccessClaims {
        iss: settings.server.issuer_str().to_owned(),
        sub: "diagnose".to_owned(),
        aud: crate::oauth::keys::Audience::One("diagnose".to_owned()),
        client_id: "diagnose".to_owned(),
        scope: "profile".to_owned(),
        jti: "diagnose".to_owned(),
        iat: at,
        nbf: at,
        exp: at + 600,
        gid: "diagnose".to_owned(),
    };
    Ok((keys, claims))
}

/// Opens the database and applies migrations, so admin commands work on a
/// fresh installation.
async fn migrated(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.database)?;
    db.migrate().await.context("applying migrations")?;
    Ok(db)
}

/// `serve --port` on a development machine: when the issuer is a loopback
/// URL on the configured port, it moves with the port, or every form posted
/// to the new port would fail the origin check.
fn follow_port_on_loopback(settings: &mut Settings, configured: u16, chosen: u16) {
    let issuer = &mut settings.server.issuer;
    let loopback = match issuer.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    if loopback && issuer.port_or_known_default() == Some(configured) {
        let _ = issuer.set_port(Some(chosen));
    }
}

/// A database URL without its password, for printing.
fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// Every command, flag and argument says what it is for in `--help`.
    #[test]
    fn every_command_and_argument_has_a_description() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "tessera", &mut missing);
        assert!(missing.is_empty(), "no description: {missing:#?}");
    }

    #[test]
    fn serve_port_moves_a_loopback_issuer_only() {
        let mut settings = crate::config::Settings::load(&Default::default()).expect("defaults");
        super::follow_port_on_loopback(&mut settings, 8080, 9000);
        assert_eq!(settings.server.issuer_str(), "http://127.0.0.1:9000");
        settings.server.issuer = "https://auth.example.com".parse().expect("url");
        super::follow_port_on_loopback(&mut settings, 443, 9000);
        assert_eq!(settings.server.issuer_str(), "https://auth.example.com");
    }
}
