//! End-user authentication: accounts, password checks with throttling, and
//! browser sessions. Framework-free: `http/` turns these results into pages.

pub mod password;
pub mod throttle;

use std::sync::Arc;

use crate::config::Settings;
use crate::domain::{NewAccount, Password, SecretToken, UnixTime, User, Username, now};
use crate::storage::sessions::ActiveSession;
use crate::storage::{Db, StorageError, sessions, throttles, users};
use throttle::{ThrottleKeys, lock_remaining};

/// What can go wrong signing up, signing in or using a session.
#[derive(thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password or disabled account: deliberately one
    /// case, so the answer does not tell which (LG-01).
    #[error("the username or password is incorrect")]
    InvalidCredentials,
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: i64 },
    #[error("the username is already taken")]
    UsernameTaken,
    #[error("sign-up is disabled")]
    SignupDisabled,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("password hashing failed")]
    Hashing(#[from] password::HashError),
    #[error("the operating system could not provide randomness")]
    Randomness(#[from] getrandom::Error),
    #[error("a password task was cancelled")]
    Task(#[from] tokio::task::JoinError),
}

impl std::fmt::Debug for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::telemetry::write_error_chain(f, self)
    }
}

/// A successful sign-in: the user and the new session id for the cookie.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    pub session: SecretToken,
}

/// A session found from its cookie.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub token: SecretToken,
    pub session: ActiveSession,
}

impl CurrentSession {
    pub fn user(&self) -> &User {
        &self.session.user
    }
}

/// Accounts and sessions over the database. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
    settings: Arc<Settings>,
    /// Verified against when a username is unknown (LG-01).
    dummy_hash: Arc<str>,
}

/// Only write `last_seen_at` when it is at least this old, so browsing does
/// not cost a database write per request.
const TOUCH_INTERVAL_SECS: i64 = 60;

impl Accounts {
    pub fn new(db: Db, settings: Arc<Settings>) -> Result<Self, AuthError> {
        Ok(Self {
            db,
            settings,
            dummy_hash: password::dummy_hash()?.into(),
        })
    }

    /// Creates an account. Validation of the fields is the caller's job
    /// (`NewAccount::parse`); this hashes, stores and signs the user in.
    #[tracing::instrument(skip_all, fields(user.name = %account.username, client.ip = %client_ip))]
    pub async fn sign_up(
        &self,
        account: NewAccount,
        client_ip: &str,
        previous_session: Option<SecretToken>,
    ) -> Result<SignedIn, AuthError> {
        if !self.settings.accounts.signup_enabled {
            return Err(AuthError::SignupDisabled);
        }
        let key = format!("signup-ip:{client_ip}");
        let limit = self.settings.accounts.signups_per_ip_per_hour;
        let record = self
            .db
            .run(move |conn| throttles::record_failure(conn, &key, now(), now() - 3600))
            .await?;
        if record.failures > limit {
            tracing::warn!("sign-up refused: too many from this address");
            return Err(AuthError::Throttled {
                retry_after_secs: (record.window_started_at + 3600 - now()).max(1),
            });
        }
        let (account, hash) = tokio::task::spawn_blocking(move || {
            let hash = password::hash(&account.password);
            (account, hash)
        })
        .await?;
        let hash = hash?;
        let ip = client_ip.to_owned();
        let user = self
            .db
            .run(move |conn| {
                let user = users::insert(conn, &account, hash, now())?;
                let detail = format!("signed up from {ip}");
                crate::storage::audit::record(
                    conn,
                    "user.created",
                    Some(user.id.as_str()),
                    None,
                    Some(&detail),
                    now(),
                )?;
                Ok(user)
            })
            .await
            .map_err(|e| match e {
                StorageError::Duplicate(_) => AuthError::UsernameTaken,
                other => AuthError::Storage(other),
            })?;
        tracing::info!(user.id = %user.id, "account created");
        let session = self.start_session(&user, previous_session).await?;
        Ok(SignedIn { user, session })
    }

    /// Checks a username and password, with per-account and per-address
    /// throttling shared across instances (LG-02, LG-03). Every outcome but
    /// success and throttling is `InvalidCredentials`.
    #[tracing::instrument(skip_all, fields(client.ip = %client_ip))]
    pub async fn sign_in(
        &self,
        username: &str,
        password: Password,
        client_ip: &str,
        previous_session: Option<SecretToken>,
    ) -> Result<SignedIn, AuthError> {
        let keys = ThrottleKeys::for_attempt(&Username::throttle_key(username), client_ip);
        let parsed = Username::parse(username).ok();
        let lookup_keys = keys.clone();
        let (account_lock, ip_lock, found) = self
            .db
            .run(move |conn| {
                let account = throttles::find(conn, &lookup_keys.account)?;
                let ip = throttles::find(conn, &lookup_keys.ip)?;
                let found = match &parsed {
                    Some(name) => users::find_with_hash(conn, name)?,
                    None => None,
                };
                Ok::<_, StorageError>((account, ip, found))
            })
            .await?;
        let settings = &self.settings.throttle;
        let at = now();
        let locked = [
            account_lock
                .and_then(|r| lock_remaining(&r, settings.account_max_failures, settings, at)),
            ip_lock.and_then(|r| lock_remaining(&r, settings.ip_max_failures, settings, at)),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(retry_after_secs) = locked {
            // Still counted, so a locked key stays locked while it is hammered;
            // the password is not even checked (a right one would fail too).
            self.record_failure(keys, "sign_in.throttled", None, client_ip)
                .await?;
            tracing::info!(retry_after_secs, "sign-in refused: throttled");
            return Err(AuthError::Throttled { retry_after_secs });
        }

        let dummy = self.dummy_hash.clone();
        let (user, matches) = tokio::task::spawn_blocking(move || match found {
            Some((user, hash)) => {
                let matches = password::verify(&password, &hash);
                (Some(user), matches)
            }
            None => {
                // Same work as for a real user, so timing tells nothing.
                let _ = password::verify(&password, &dummy);
                (None, false)
            }
        })
        .await?;
        let user = match user {
            Some(user) if matches && !user.disabled => user,
            other => {
                let user_id = other.map(|user| user.id.as_str().to_owned());
                self.record_failure(keys, "sign_in.failed", user_id, client_ip)
                    .await?;
                tracing::info!("sign-in failed");
                return Err(AuthError::InvalidCredentials);
            }
        };
        let account_key = keys.account;
        let user_id = user.id.as_str().to_owned();
        let detail = format!("from {client_ip}");
        self.db
            .run(move |conn| {
                throttles::clear(conn, &account_key)?;
                crate::storage::audit::record(
                    conn,
                    "sign_in.succeeded",
                    Some(&user_id),
                    None,
                    Some(&detail),
                    now(),
                )
            })
            .await?;
        tracing::info!(user.id = %user.id, "sign-in succeeded");
        let session = self.start_session(&user, previous_session).await?;
        Ok(SignedIn { user, session })
    }

    /// Counts a failure against the account and address keys, and audits it
    /// (with the user id when the name exists; never the typed name, which is
    /// sometimes a password typed in the wrong field).
    async fn record_failure(
        &self,
        keys: ThrottleKeys,
        event: &'static str,
        user_id: Option<String>,
        client_ip: &str,
    ) -> Result<(), AuthError> {
        let window = self.settings.throttle.window_secs;
        let detail = format!("from {client_ip}");
        self.db
            .run(move |conn| {
                let at = now();
                throttles::record_failure(conn, &keys.account, at, at - window)?;
                throttles::record_failure(conn, &keys.ip, at, at - window)?;
                crate::storage::audit::record(
                    conn,
                    event,
                    user_id.as_deref(),
                    None,
                    Some(&detail),
                    at,
                )?;
                Ok::<_, StorageError>(())
            })
            .await?;
        Ok(())
    }

    /// Issues a brand-new session id for `user` and ends `previous` (the
    /// session the browser had before), so a planted or old id never becomes
    /// a signed-in one (LG-05) and a re-authentication as someone else never
    /// keeps the first user's session (LG-06).
    async fn start_session(
        &self,
        user: &User,
        previous: Option<SecretToken>,
    ) -> Result<SecretToken, AuthError> {
        let token = SecretToken::generate()?;
        let digest = token.digest();
        let user_id = user.id.clone();
        let lifetime = self.settings.sessions.absolute_timeout_secs;
        self.db
            .run(move |conn| {
                if let Some(previous) = previous {
                    sessions::delete(conn, &previous.digest())?;
                }
                let at = now();
                sessions::insert(conn, &digest, &user_id, at, at + lifetime)
            })
            .await?;
        Ok(token)
    }

    /// The live session a cookie names, if any. Expired, unknown and
    /// disabled-user sessions are all `None`.
    pub async fn current_session(
        &self,
        token: SecretToken,
    ) -> Result<Option<CurrentSession>, AuthError> {
        let idle = self.settings.sessions.idle_timeout_secs;
        let digest = token.digest();
        let found = self
            .db
            .run(move |conn| {
                let at = now();
                let found = sessions::find_active(conn, &digest, at, idle)?;
                if let Some(session) = &found
                    && at - session.last_seen_at >= TOUCH_INTERVAL_SECS
                {
                    sessions::touch(conn, &digest, at)?;
                }
                Ok::<_, StorageError>(found)
            })
            .await?;
        Ok(found.map(|session| CurrentSession { token, session }))
    }

    /// Ends a session (sign-out).
    pub async fn end_session(&self, token: SecretToken) -> Result<(), AuthError> {
        let digest = token.digest();
        self.db
            .run(move |conn| sessions::delete(conn, &digest))
            .await?;
        Ok(())
    }
}

/// Helpers shared by the CLI, which works without sessions or throttles.
pub mod admin {
    use super::*;

    /// Creates a user from the command line (no throttling, no session).
    pub async fn add_user(db: &Db, account: NewAccount) -> Result<User, AuthError> {
        let (account, hash) = tokio::task::spawn_blocking(move || {
            let hash = password::hash(&account.password);
            (account, hash)
        })
        .await?;
        let hash = hash?;
        db.run(move |conn| {
            let user = users::insert(conn, &account, hash, now())?;
            crate::storage::audit::record(
                conn,
                "user.created",
                Some(user.id.as_str()),
                None,
                Some("by an operator"),
                now(),
            )?;
            Ok(user)
        })
        .await
        .map_err(|e| match e {
            StorageError::Duplicate(_) => AuthError::UsernameTaken,
            other => AuthError::Storage(other),
        })
    }

    /// Sets a new password and ends every session of the user.
    pub async fn set_password(
        db: &Db,
        username: Username,
        password: Password,
        revoke_grants: bool,
    ) -> Result<Option<User>, AuthError> {
        let hash = tokio::task::spawn_blocking(move || password::hash(&password)).await??;
        Ok(db
            .run(move |conn| {
                users::update_password_hash(conn, &username, hash, None, revoke_grants, now())
            })
            .await?)
    }

    /// Disables (or enables again) a user; disabling ends their sessions.
    pub async fn set_disabled(
        db: &Db,
        username: Username,
        disabled: bool,
    ) -> Result<Option<User>, AuthError> {
        Ok(db
            .run(move |conn| users::set_disabled(conn, &username, disabled, now()))
            .await?)
    }

    pub async fn list_users(db: &Db) -> Result<Vec<User>, AuthError> {
        Ok(db.run(users::list).await?)
    }
}

/// Deletes expired sessions, stale throttle counters, unanswered consent
/// requests, expired codes and expired refresh tokens in small batches.
/// Returns how many rows went.
pub async fn prune(db: &Db, settings: &Settings, at: UnixTime) -> Result<usize, AuthError> {
    const BATCH: i64 = 500;
    let idle = settings.sessions.idle_timeout_secs;
    let retention = settings.tokens.revoked_grant_retention_secs;
    let audit_retention = settings.accounts.audit_retention_secs;
    // Sign-up counters use a one-hour window; keep every counter at least that long.
    let stale = at - (settings.throttle.window_secs + settings.throttle.max_lock_secs).max(3600);
    let mut total = 0;
    loop {
        let removed = db
            .run(move |conn| {
                let sessions = sessions::delete_expired(conn, at, idle, BATCH)?;
                let counters = throttles::delete_stale(conn, stale, BATCH)?;
                let pending = crate::storage::pending::delete_expired(conn, at, BATCH)?;
                // Used codes are kept until they expire so a replay is
                // recognised; after that they are only history.
                let codes = crate::storage::codes::delete_expired(conn, at, BATCH)?;
                let refresh = crate::storage::refresh_tokens::delete_expired(conn, at, BATCH)?;
                let denylist = crate::storage::revoked_tokens::delete_expired(conn, at, BATCH)?;
                let grants =
                    crate::storage::grants::delete_revoked_before(conn, at - retention, BATCH)?;
                let audit =
                    crate::storage::audit::delete_before(conn, at - audit_retention, BATCH)?;
                Ok::<_, StorageError>(
                    sessions + counters + pending + codes + refresh + denylist + grants + audit,
                )
            })
            .await?;
        total += removed;
        if removed == 0 {
            return Ok(total);
        }
    }
}
