//! The authorization endpoint's GET, start to finish: resume a parked
//! request, validate, decide whether the browser must sign in (first, or
//! again), honour `id_token_hint`, then hand a signed-in user to `decide`.
//!
//! A request that needs a sign-in is parked server-side and the sign-in page
//! returns to `/oauth2/authorize?resume=<id>` (review F13): `state` and
//! `nonce` of any allowed length survive, and `prompt` is kept (F7).

use super::{AuthorizationRequest, Decision, KeySet, Rejection, decide, validate};
use crate::config::Settings;
use crate::domain::{SecretToken, TokenDigest, UnixTime, UserId};
use crate::oauth::Params;
use crate::oauth::error::OAuthError;
use crate::storage::resumes::{self, ParkedRequest};
use crate::storage::{DbConnection, throttles};

/// How long a parked request waits for the sign-in (seconds).
const RESUME_TTL_SECS: i64 = 900;
/// Longest `login_hint` used (and parked); `validate` ignores longer ones.
const MAX_LOGIN_HINT_LEN: usize = 256;
/// The window of `throttle.parked_requests_per_ip` (review F13: bounded
/// rows; they also expire after `RESUME_TTL_SECS` and are pruned).
const PARK_WINDOW_SECS: i64 = 600;

/// The parameters worth parking: everything `validate` reads. Anything
/// else is ignored by the endpoint anyway (AZ-02) and would only make the
/// row bigger.
const RECOGNISED: [&str; 14] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
    "max_age",
    "login_hint",
    "id_token_hint",
    "response_mode",
    "resource",
];

/// Who is asking: the session, the browser (the SHA-256 of its
/// resume-binding cookie, which survives signing in) and its address.
pub struct Seen<'a> {
    pub session: Option<&'a SessionView>,
    pub browser: &'a TokenDigest,
    pub client_ip: &'a str,
}

/// The parked request `id` names, if it is live and was parked by this very
/// browser: a leaked resume link is useless anywhere else.
fn parked_by(
    conn: &mut DbConnection,
    id: &SecretToken,
    browser: &TokenDigest,
    now: UnixTime,
) -> Result<Option<ParkedRequest>, Rejection> {
    Ok(resumes::find(conn, &id.digest(), now)?.filter(|parked| {
        parked
            .browser_hash
            .as_deref()
            .is_some_and(|stored| crate::domain::constant_time_eq(stored, browser.as_str()))
    }))
}

/// The browser's session as the endpoint needs it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub user_id: UserId,
    pub auth_time: UnixTime,
    /// The SHA-256 of the session cookie: tells one sign-in from the next.
    pub token_digest: TokenDigest,
}

/// What the endpoint does next.
#[derive(Debug)]
pub enum Step {
    /// Sign in (again), then come back to `/oauth2/authorize?resume=<id>`.
    SignIn {
        resume_id: SecretToken,
        login_hint: Option<String>,
        /// A session exists: the sign-in page must show the form anyway.
        reauth: bool,
    },
    /// Ask which account to use: the `id_token_hint` names another account
    /// than the signed-in one (review F15), or the client sent
    /// `prompt=select_account`.
    ChooseAccount {
        resume_id: SecretToken,
        client_name: String,
        reason: ChoiceReason,
    },
    /// A signed-in user: a code or the consent page.
    Decided(Decision),
}

/// Why the account chooser is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceReason {
    /// The client's `id_token_hint` names another account.
    OtherAccountExpected,
    /// The client asked (`prompt=select_account`).
    Asked,
}

/// Runs the endpoint for `raw_query` in one blocking call.
pub fn begin(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    raw_query: &str,
    seen: &Seen<'_>,
    now: UnixTime,
) -> Result<Step, Rejection> {
    match steps(conn, settings, keys, raw_query, seen, now) {
        Err(Rejection::Redirect(mut redirect)) if redirect.unverified_client.is_some() => {
            if vouched_for(conn, raw_query, seen, now)? {
                redirect.unverified_client = None;
            }
            Err(Rejection::Redirect(redirect))
        }
        other => other,
    }
}

/// RFC 9700 §4.11.2, RU-10: an error redirect to an unverified
/// self-registered client happens at once only for a user who vouched for
/// that client before (an active grant to it) or who has just signed in on
/// tessera's page for this very request. Anyone else, signed in or not,
/// sees the interstitial naming the destination: a phishing link through
/// tessera reaches signed-in users most of all.
fn vouched_for(
    conn: &mut DbConnection,
    raw_query: &str,
    seen: &Seen<'_>,
    now: UnixTime,
) -> Result<bool, Rejection> {
    let Some(current) = seen.session else {
        return Ok(false);
    };
    let presented = Params::parse(raw_query);
    let (query, parked_at) = match presented.get("resume") {
        Some(id) if id.len() <= 128 => {
            match parked_by(conn, &SecretToken::from_presented(id), seen.browser, now)? {
                Some(parked) => (parked.query, Some(parked.created_at)),
                None => return Ok(false),
            }
        }
        _ => (raw_query.to_owned(), None),
    };
    if parked_at.is_some_and(|parked_at| current.auth_time >= parked_at) {
        return Ok(true);
    }
    let Some(client_id) = Params::parse(&query)
        .get("client_id")
        .and_then(crate::domain::ClientId::parse)
    else {
        return Ok(false);
    };
    Ok(
        crate::storage::grants::find_active_for(conn, Some(&current.user_id), &client_id)?
            .is_some(),
    )
}

fn steps(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    raw_query: &str,
    seen: &Seen<'_>,
    now: UnixTime,
) -> Result<Step, Rejection> {
    let session = seen.session;
    let presented = Params::parse(raw_query);
    let resumed = match presented.get("resume") {
        None => None,
        Some(id) => {
            let id = (id.len() <= 128)
                .then(|| SecretToken::from_presented(id))
                .ok_or_else(expired)?;
            let parked = parked_by(conn, &id, seen.browser, now)?.ok_or_else(expired)?;
            Some((id, parked))
        }
    };
    let params = match &resumed {
        Some((_, parked)) => Params::parse(&parked.query),
        None => presented.clone(),
    };
    let request = validate(conn, settings, keys, &params)?;
    tracing::Span::current().record("client.id", request.client.id.as_str());
    let parked = resumed.as_ref().map(|(_, parked)| parked);
    let signed_in = session.filter(|current| is_fresh_enough(&request, parked, current, now));
    let Some(current) = signed_in else {
        if request.prompt.none {
            return Err(request.error(OAuthError::LoginRequired(
                "the user must sign in".to_owned(),
            )));
        }
        let resume_id = park(conn, settings, &params, resumed, seen, now)?;
        return Ok(Step::SignIn {
            resume_id,
            login_hint: request.login_hint.clone(),
            reauth: session.is_some(),
        });
    };
    // Review F15: the client expects another account than the signed-in
    // one; or it asked the user to choose (OIDC Core §3.1.2.1
    // `select_account`). "Continue as …" on the chooser answers it, and so
    // does a sign-in made after the request was parked ("Use another
    // account"), so the chooser never loops.
    let continue_as_current = resumed.is_some() && presented.get("continue") == Some("1");
    let signed_in_since = parked.is_some_and(|parked| {
        current.auth_time >= parked.created_at
            && parked.session_hash.as_deref() != Some(current.token_digest.as_str())
    });
    let reason = if request
        .hint_subject
        .as_deref()
        .is_some_and(|subject| subject != current.user_id.as_str())
    {
        Some(ChoiceReason::OtherAccountExpected)
    } else if request.prompt.select_account && !signed_in_since {
        Some(ChoiceReason::Asked)
    } else {
        None
    };
    if let Some(reason) = reason.filter(|_| !continue_as_current) {
        if request.prompt.none {
            return Err(request.error(OAuthError::LoginRequired(
                "another account is signed in".to_owned(),
            )));
        }
        let client_name = request.client.name.clone();
        let resume_id = park(conn, settings, &params, resumed, seen, now)?;
        return Ok(Step::ChooseAccount {
            resume_id,
            client_name,
            reason,
        });
    }
    let decision = decide(
        conn,
        settings,
        keys,
        request,
        &current.user_id,
        current.auth_time,
        now,
    )?;
    if let Some((id, _)) = &resumed {
        // Used: the sign-in round trip is over.
        resumes::delete(conn, &id.digest())?;
    }
    Ok(Step::Decided(decision))
}

fn expired() -> Rejection {
    Rejection::Page(
        "This sign-in request has expired. Go back to the application and start again.".to_owned(),
    )
}

/// Whether `current` may answer `request` without signing in again. A
/// resumed request that asked for a fresh sign-in (`prompt=login`,
/// `max_age`) needs a session that began after it was parked, and not the
/// session that was there when it was (review F13: prompt=login is kept
/// across sign-in without looping).
fn is_fresh_enough(
    request: &AuthorizationRequest,
    parked: Option<&ParkedRequest>,
    current: &SessionView,
    now: UnixTime,
) -> bool {
    match parked {
        None => !request.needs_fresh_sign_in(current.auth_time, now),
        Some(_) if !request.asks_for_fresh_sign_in() => true,
        Some(parked) => {
            current.auth_time >= parked.created_at
                && parked.session_hash.as_deref() != Some(current.token_digest.as_str())
                // A fresh sign-in can still grow older than `max_age` (a
                // user who waits on the account chooser).
                && request
                    .max_age
                    .is_none_or(|max_age| now - current.auth_time <= max_age)
        }
    }
}

/// Parks the recognised parameters under a new random id (or keeps the
/// already parked row when the request was resumed), counting new rows per
/// address.
fn park(
    conn: &mut DbConnection,
    settings: &Settings,
    params: &Params,
    resumed: Option<(SecretToken, ParkedRequest)>,
    seen: &Seen<'_>,
    now: UnixTime,
) -> Result<SecretToken, Rejection> {
    let (session, client_ip) = (seen.session, seen.client_ip);
    if let Some((id, _)) = resumed {
        return Ok(id);
    }
    let key = format!(
        "authorize-park-ip:{}",
        crate::auth::throttle::address_key(client_ip)
    );
    let record = throttles::record_failure(conn, &key, now, now - PARK_WINDOW_SECS)?;
    if record.failures > settings.throttle.parked_requests_per_ip {
        return Err(Rejection::TooMany {
            retry_after_secs: (record.window_started_at + PARK_WINDOW_SECS - now).max(1),
        });
    }
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for key in RECOGNISED {
        if key == "resource" {
            pairs.extend(params.all(key).iter().map(|value| (key, value.as_str())));
        } else if let Some(value) = params.get(key) {
            // A hint `validate` ignores for its length is not stored either.
            if key == "login_hint" && value.len() > MAX_LOGIN_HINT_LEN {
                continue;
            }
            pairs.push((key, value));
        }
    }
    let query = serde_urlencoded::to_string(&pairs)
        .map_err(|e| Rejection::Failed(OAuthError::Internal(e.into())))?;
    let id =
        SecretToken::generate().map_err(|e| Rejection::Failed(OAuthError::Internal(e.into())))?;
    resumes::insert(
        conn,
        &id.digest(),
        &ParkedRequest {
            query,
            session_hash: session.map(|s| s.token_digest.as_str().to_owned()),
            browser_hash: Some(seen.browser.as_str().to_owned()),
            created_at: now,
            expires_at: now + RESUME_TTL_SECS,
        },
    )?;
    Ok(id)
}
