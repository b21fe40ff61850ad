//! End-user authentication: accounts, password checks with throttling, and
//! browser sessions. Framework-free: `http/` turns these results into pages.

pub mod password;
pub mod throttle;

use std::sync::Arc;

use crate::config::Settings;
use crate::domain::{NewAccount, Password, SecretToken, UnixTime, User, Username, now};
use crate::storage::sessions::ActiveSession;
use crate::storage::throttles::Reservation;
use crate::storage::{Db, StorageError, known_browsers, sessions, throttles, users};
use throttle::{ThrottleKeys, address_key, lock_remaining};

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
    /// Every password hasher stayed busy for the whole wait (LG-03).
    #[error("every password hasher is busy")]
    Busy,
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

impl From<password::HasherError> for AuthError {
    fn from(error: password::HasherError) -> Self {
        match error {
            password::HasherError::Busy => Self::Busy,
            password::HasherError::Hash(hash) => Self::Hashing(hash),
            password::HasherError::Task(task) => Self::Task(task),
        }
    }
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
    /// A new known-browser token for the cookie, when the browser was not
    /// yet known to this account (LG-02).
    pub known_browser: Option<SecretToken>,
}

/// A sign-in attempt after its counters were reserved.
struct Attempt {
    found: Option<(User, String)>,
    keys: ThrottleKeys,
    is_known_browser: bool,
    /// For a known browser: the account-wide key, which its attempts still
    /// count toward (without being refused by it).
    account_wide: Option<String>,
    account: Reservation,
    ip: Reservation,
}

/// Signed-in browsers kept per account (the newest); older ones are signed
/// out.
const SESSIONS_PER_USER: i64 = 50;

/// Known browsers kept per account (the newest): each has counters of its
/// own, so their number bounds the guesses a password holder could buy.
const KNOWN_BROWSERS_PER_USER: i64 = 5;

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
    /// Every password hash and check made while serving requests (LG-03).
    hashers: password::Hashers,
}

/// Only write `last_seen_at` when it is at least this old, so browsing does
/// not cost a database write per request.
const TOUCH_INTERVAL_SECS: i64 = 60;

impl Accounts {
    pub fn new(db: Db, settings: Arc<Settings>) -> Result<Self, AuthError> {
        Ok(Self {
            db,
            dummy_hash: password::dummy_hash()?.into(),
            hashers: password::Hashers::new(
                settings.accounts.max_concurrent_password_hashes,
                std::time::Duration::from_millis(settings.accounts.password_hash_wait_ms),
            ),
            settings,
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
        // Every sign-up answer counts, "taken" included (see docs/security.md).
        let key = format!("signup-ip:{}", address_key(client_ip));
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
        let password = Password::presented(account.password.expose().to_owned());
        let hash = self.hashers.hash(password).await?;
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
        Ok(SignedIn {
            user,
            session,
            known_browser: None,
        })
    }

    /// Checks a username and password, with per-account and per-address
    /// throttling shared across instances (LG-02, LG-03). Every outcome but
    /// success, throttling and a busy server is `InvalidCredentials`.
    ///
    /// The attempt is counted (reserved) atomically before the password is
    /// hashed, so of a parallel burst at most the limit is ever checked; a
    /// success gives the address its count back and clears the account's.
    /// A browser presenting a valid known-browser token for this account is
    /// counted on a counter of its own instead of the account-wide one, so
    /// failures from elsewhere never lock the owner out of that browser.
    #[tracing::instrument(skip_all, fields(client.ip = %client_ip))]
    pub async fn sign_in(
        &self,
        username: &str,
        password: Password,
        client_ip: &str,
        previous_session: Option<SecretToken>,
        known_browser: Option<SecretToken>,
    ) -> Result<SignedIn, AuthError> {
        let keys = ThrottleKeys::for_attempt(&Username::throttle_key(username), client_ip);
        let parsed = Username::parse(username).ok();
        let presented = known_browser.map(|token| token.digest());
        let window = self.settings.throttle.window_secs;
        let attempt = self
            .db
            .write(move |conn| {
                let at = now();
                let found = match &parsed {
                    Some(name) => users::find_with_hash(conn, name)?,
                    None => None,
                };
                let is_known_browser = match (&found, &presented) {
                    (Some((user, _)), Some(digest)) => {
                        known_browsers::is_known_for(conn, digest, &user.id, at)?
                    }
                    _ => false,
                };
                let (keys, account_wide) = match (&presented, is_known_browser) {
                    (Some(digest), true) => {
                        let account_wide = keys.account.clone();
                        (keys.for_known_browser(digest), Some(account_wide))
                    }
                    _ => (keys, None),
                };
                // SECURITY-CASES LG-03: counted before the hash, in order.
                let account = throttles::reserve(conn, &keys.account, at, at - window)?;
                let ip = throttles::reserve(conn, &keys.ip, at, at - window)?;
                // A known browser's attempts count toward the account too, so
                // several browsers never multiply the guesses everyone else
                // may make; the account-wide lock does not refuse it.
                if let Some(key) = &account_wide {
                    throttles::reserve(conn, key, at, at - window)?;
                }
                Ok::<_, StorageError>(Attempt {
                    found,
                    keys,
                    is_known_browser,
                    account_wide,
                    account,
                    ip,
                })
            })
            .await?;
        if let Some(retry_after_secs) = self.lock_of(&attempt) {
            // Counted all the same, so a locked key stays locked while it is
            // hammered; the password is not even checked (a right one would
            // fail too).
            self.audit_attempt("sign_in.throttled", None, client_ip)
                .await?;
            tracing::info!(retry_after_secs, "sign-in refused: throttled");
            return Err(AuthError::Throttled { retry_after_secs });
        }

        let Attempt {
            found,
            keys,
            is_known_browser,
            account_wide,
            ..
        } = attempt;
        let (user, stored) = match found {
            Some((user, hash)) => (Some(user), Arc::<str>::from(hash)),
            // Same work as for a real user, so timing tells nothing (LG-01).
            None => (None, self.dummy_hash.clone()),
        };
        let matches = match self.hashers.verify(password, stored).await {
            Ok(matches) => matches,
            Err(password::HasherError::Busy) => {
                // Nothing was checked: the attempt does not count.
                let (account, ip) = (keys.account, keys.ip);
                let account_wide = account_wide.clone();
                self.db
                    .write(move |conn| {
                        throttles::release(conn, &account)?;
                        if let Some(key) = &account_wide {
                            throttles::release(conn, key)?;
                        }
                        throttles::release(conn, &ip)
                    })
                    .await?;
                tracing::warn!("sign-in refused: every password hasher is busy");
                return Err(AuthError::Busy);
            }
            Err(other) => return Err(other.into()),
        };
        let user = match user {
            Some(user) if matches && !user.disabled => user,
            other => {
                let user_id = other.map(|user| user.id.as_str().to_owned());
                self.audit_attempt("sign_in.failed", user_id, client_ip)
                    .await?;
                tracing::info!("sign-in failed");
                return Err(AuthError::InvalidCredentials);
            }
        };
        let new_browser = if is_known_browser {
            None
        } else {
            Some(SecretToken::generate()?)
        };
        let browser_digest = new_browser.as_ref().map(SecretToken::digest);
        let browser_lifetime = self.settings.accounts.known_browser_ttl_secs;
        let user_id = user.id.clone();
        let detail = format!("from {client_ip}");
        self.db
            .write(move |conn| {
                let at = now();
                // The counter this attempt used (the account's, or this
                // browser's own) starts again; the address only gets its
                // reserved count back.
                throttles::clear(conn, &keys.account)?;
                throttles::release(conn, &keys.ip)?;
                if let Some(key) = &account_wide {
                    // The account's lock keeps holding everyone else.
                    throttles::release(conn, key)?;
                }
                if let Some(digest) = &browser_digest {
                    known_browsers::insert(conn, digest, &user_id, at, at + browser_lifetime)?;
                    known_browsers::keep_newest(conn, &user_id, KNOWN_BROWSERS_PER_USER)?;
                }
                crate::storage::audit::record(
                    conn,
                    "sign_in.succeeded",
                    Some(user_id.as_str()),
                    None,
                    Some(&detail),
                    at,
                )
            })
            .await?;
        tracing::info!(user.id = %user.id, known_browser = is_known_browser, "sign-in succeeded");
        let session = self.start_session(&user, previous_session).await?;
        Ok(SignedIn {
            user,
            session,
            known_browser: new_browser,
        })
    }

    /// How long the attempt's account (or browser) or address key is locked,
    /// judged by the counters as they were just before this attempt.
    fn lock_of(&self, attempt: &Attempt) -> Option<i64> {
        let settings = &self.settings.throttle;
        let at = now();
        // A known browser is not held by its address's lock either: one
        // stranger behind the same NAT must not lock the owner out (OWASP's
        // warning about lockout as denial of service). Its own counter, and
        // its count toward the account, still apply.
        let checks = [
            Some((attempt.account, settings.account_max_failures)),
            (!attempt.is_known_browser).then_some((attempt.ip, settings.ip_max_failures)),
        ];
        checks
            .into_iter()
            .flatten()
            .filter_map(|(reservation, max)| {
                lock_remaining(&reservation.before, max, settings, at)?;
                // Tell the wait that now applies, this attempt included.
                Some(lock_remaining(&reservation.after, max, settings, at).unwrap_or(1))
            })
            .max()
    }

    /// Audits a sign-in attempt (with the user id when the name exists;
    /// never the typed name, which is sometimes a password typed in the
    /// wrong field). The attempt was already counted by its reservation.
    async fn audit_attempt(
        &self,
        event: &'static str,
        user_id: Option<String>,
        client_ip: &str,
    ) -> Result<(), AuthError> {
        let detail = format!("from {client_ip}");
        self.db
            .write(move |conn| {
                crate::storage::audit::record(
                    conn,
                    event,
                    user_id.as_deref(),
                    None,
                    Some(&detail),
                    now(),
                )
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
                sessions::insert(conn, &digest, &user_id, at, at + lifetime)?;
                sessions::keep_newest(conn, &user_id, SESSIONS_PER_USER)?;
                Ok::<_, StorageError>(())
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

/// Deletes expired sessions and known browsers, stale throttle counters, unanswered consent
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
                let sessions = sessions::delete_expired(conn, at, idle, BATCH)?
                    + known_browsers::delete_expired(conn, at, BATCH)?;
                let counters = throttles::delete_stale(conn, stale, BATCH)?;
                let pending = crate::storage::pending::delete_expired(conn, at, BATCH)?
                    + crate::storage::resumes::delete_expired(conn, at, BATCH)?;
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
