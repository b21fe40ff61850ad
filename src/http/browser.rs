//! The browser side of a request: its session (from the session cookie), its
//! CSRF token, its known-browser token, the cookies a response must set, and
//! where it connects from.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use super::error::PageError;
use super::state::{AppState, CookieNames};
use crate::auth::CurrentSession;
use crate::domain::SecretToken;

/// Largest cookie value read; anything longer is not one of ours.
const MAX_COOKIE_VALUE: usize = 128;

/// The known-browser cookie (LG-02), named like the others: with the
/// `__Host-` prefix on https issuers.
fn known_browser_cookie_name(cookies: &CookieNames) -> &'static str {
    if cookies.secure {
        "__Host-tessera_browser"
    } else {
        "tessera_browser"
    }
}

/// The resume-binding cookie: names the browser that parked an
/// authorization request while it signs in, and survives the sign-in.
fn resume_cookie_name(cookies: &CookieNames) -> &'static str {
    if cookies.secure {
        "__Host-tessera_resume"
    } else {
        "tessera_resume"
    }
}

/// The browser making a request.
pub struct Browser {
    /// The signed-in session, if the session cookie names a live one.
    pub session: Option<CurrentSession>,
    /// The session cookie's value even when it names no live session, so
    /// sign-in can delete whatever it pointed to.
    pub presented_session: Option<SecretToken>,
    /// The known-browser cookie: this browser signed in before (LG-02).
    /// Only a token; which account it belongs to is checked at sign-in.
    pub known_browser: Option<SecretToken>,
    /// The pre-sign-in CSRF cookie (set on the first form page).
    csrf_cookie: Option<SecretToken>,
    /// A CSRF cookie created for this response, to be set on it.
    new_csrf_cookie: Option<SecretToken>,
    /// The resume-binding cookie, and one created for this response.
    resume_cookie: Option<SecretToken>,
    new_resume_cookie: bool,
    cookies: CookieNames,
}

impl FromRequest for Browser {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let read = |name: &str| {
            req.cookie(name)
                .map(|c| c.value().to_owned())
                .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_VALUE)
                .map(SecretToken::from_presented)
        };
        let (session_cookie, csrf_cookie, known_browser, resume_cookie) = match &state {
            Some(state) => (
                read(state.cookies.session),
                read(state.cookies.csrf),
                read(known_browser_cookie_name(&state.cookies)),
                read(resume_cookie_name(&state.cookies)),
            ),
            None => (None, None, None, None),
        };
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                PageError::Internal(anyhow::anyhow!("AppState is not registered"))
            })?;
            let session = match session_cookie.clone() {
                Some(token) => state.accounts.current_session(token).await?,
                None => None,
            };
            Ok(Browser {
                session,
                presented_session: session_cookie,
                known_browser,
                csrf_cookie,
                new_csrf_cookie: None,
                resume_cookie,
                new_resume_cookie: false,
                cookies: state.cookies.clone(),
            })
        })
    }
}

impl Browser {
    /// The CSRF token forms on this page must carry. Signed in, it is derived
    /// from the session id, so it is bound to that session; before sign-in,
    /// from a random per-browser cookie created here if missing (CS-01).
    pub fn csrf_token(&mut self) -> Result<String, PageError> {
        if let Some(current) = &self.session {
            return Ok(current.token.derive("csrf-session"));
        }
        if self.csrf_cookie.is_none() {
            let fresh = SecretToken::generate()
                .map_err(|e| PageError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
            self.csrf_cookie = Some(fresh.clone());
            self.new_csrf_cookie = Some(fresh);
        }
        Ok(self
            .csrf_cookie
            .as_ref()
            .map(|cookie| cookie.derive("csrf-browser"))
            .unwrap_or_default())
    }

    /// Refuses a form post whose CSRF token is missing, wrong, or was made for
    /// another browser or session, and posts coming from another origin.
    pub fn verify_form(
        &self,
        req: &HttpRequest,
        presented: &str,
        expected_origin: &str,
    ) -> Result<(), PageError> {
        verify_same_origin(req, expected_origin)?;
        let expected = match (&self.session, &self.csrf_cookie) {
            (Some(current), _) => current.token.derive("csrf-session"),
            (None, Some(cookie)) => cookie.derive("csrf-browser"),
            (None, None) => {
                return Err(PageError::Forbidden(
                    "Your browser did not send tessera's cookie with this form. Allow cookies for this site, reload the page and try again.".to_owned(),
                ));
            }
        };
        if presented.is_empty() || !SecretToken::from_presented(expected).matches(presented) {
            tracing::info!("form refused: CSRF token missing or invalid");
            return Err(PageError::Forbidden(
                "This form has expired or was not sent from tessera's own page. Go back, reload the page and try again.".to_owned(),
            ));
        }
        Ok(())
    }

    /// What names this browser to a request it parks while it signs in:
    /// the SHA-256 of its resume-binding cookie, created here if missing (and
    /// set by [`Browser::finish`]).
    pub fn resume_binding(&mut self) -> Result<crate::domain::TokenDigest, PageError> {
        if self.resume_cookie.is_none() {
            let fresh = SecretToken::generate()
                .map_err(|e| PageError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
            self.resume_cookie = Some(fresh);
            self.new_resume_cookie = true;
        }
        Ok(self
            .resume_cookie
            .as_ref()
            .map(SecretToken::digest)
            .unwrap_or_else(|| crate::domain::TokenDigest::of(b"")))
    }

    /// Adds the cookies this response must carry (a new CSRF or
    /// resume-binding cookie).
    pub fn finish(&self, mut response: HttpResponse) -> HttpResponse {
        if let Some(token) = &self.new_csrf_cookie {
            let cookie = self.cookie(self.cookies.csrf, token.expose().to_owned(), None);
            let _ = response.add_cookie(&cookie);
        }
        if self.new_resume_cookie
            && let Some(token) = &self.resume_cookie
        {
            let name = resume_cookie_name(&self.cookies);
            let _ = response.add_cookie(&self.cookie(name, token.expose().to_owned(), None));
        }
        response
    }

    /// Sets the session cookie for a new sign-in, and drops the pre-sign-in
    /// CSRF cookie (signed-in forms use the session's token).
    pub fn sign_in_cookies(
        &self,
        response: &mut HttpResponse,
        session: &SecretToken,
        max_age_secs: i64,
    ) {
        let cookie = self.cookie(
            self.cookies.session,
            session.expose().to_owned(),
            Some(CookieDuration::seconds(max_age_secs)),
        );
        let _ = response.add_cookie(&cookie);
        let _ = response.add_cookie(&self.removal(self.cookies.csrf));
    }

    /// Sets the long-lived known-browser cookie after a sign-in from a browser
    /// not yet known to the account (LG-02). Sign-out keeps it: it is what
    /// lets the owner back in while the account is locked.
    pub fn remember_browser(
        &self,
        response: &mut HttpResponse,
        token: &SecretToken,
        max_age_secs: i64,
    ) {
        let cookie = self.cookie(
            known_browser_cookie_name(&self.cookies),
            token.expose().to_owned(),
            Some(CookieDuration::seconds(max_age_secs)),
        );
        let _ = response.add_cookie(&cookie);
    }

    /// Expires the session cookie (sign-out).
    pub fn sign_out_cookies(&self, response: &mut HttpResponse) {
        let _ = response.add_cookie(&self.removal(self.cookies.session));
    }

    /// Every cookie tessera sets: HttpOnly, SameSite=Lax (Strict would drop
    /// the session on a client's top-level redirect to /authorize), Path=/,
    /// no Domain, Secure when the issuer is https (LG-07).
    fn cookie(
        &self,
        name: &'static str,
        value: String,
        max_age: Option<CookieDuration>,
    ) -> Cookie<'static> {
        let mut builder = Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.cookies.secure);
        if let Some(max_age) = max_age {
            builder = builder.max_age(max_age);
        }
        builder.finish()
    }

    fn removal(&self, name: &'static str) -> Cookie<'static> {
        let mut cookie = self.cookie(name, String::new(), Some(CookieDuration::ZERO));
        cookie.make_removal();
        cookie
    }
}

/// Refuses cross-origin form posts by the headers browsers send (CS-01):
/// `Sec-Fetch-Site` must say same-origin (or `none`: typed or bookmarked),
/// and an `Origin` must be the issuer's. `Origin: null` is let through to
/// the CSRF check: browsers send it for same-origin posts from pages with
/// `Referrer-Policy: no-referrer`, which every tessera page has.
fn verify_same_origin(req: &HttpRequest, expected_origin: &str) -> Result<(), PageError> {
    let refuse = |why: &str| {
        tracing::info!(reason = why, "form refused: cross-origin post");
        Err(PageError::Forbidden(format!(
            "This form was sent from another site. Open tessera at {expected_origin} and try again."
        )))
    };
    if let Some(site) = req.headers().get("sec-fetch-site")
        && !matches!(site.to_str().unwrap_or(""), "same-origin" | "none")
    {
        return refuse("Sec-Fetch-Site is not same-origin");
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if origin != "null" && origin != expected_origin {
            return refuse("Origin is another site");
        }
    }
    Ok(())
}

/// The client's address for throttling: the TCP peer, or, when the peer is
/// a trusted proxy, the right-most forwarded entry that is not a trusted
/// proxy itself (entries left of it are client-controlled). Forwarded
/// entries come from `X-Forwarded-For`, or from RFC 7239 `Forwarded`
/// (`for=`) when there is no `X-Forwarded-For`.
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> String {
    let Some(peer) = req.peer_addr().map(|addr| addr.ip()) else {
        return "unknown".to_owned();
    };
    let header = |name: &str| -> Vec<String> {
        req.headers()
            .get_all(name)
            .filter_map(|value| value.to_str().ok())
            .map(str::to_owned)
            .collect()
    };
    client_address(
        peer,
        trusted_proxies,
        &header("x-forwarded-for"),
        &header("forwarded"),
    )
}

/// [`client_ip`] without the request, for tests. An entry a trusted proxy
/// forwarded that carries a port (`203.0.113.7:4711`, `[2001:db8::1]:443`,
/// as some load balancers write it) counts as its address. One that cannot
/// be read at all is still the client's, under a key of its own: falling
/// back to the proxy's address would put every forwarded client under one
/// key, and strangers could lock everyone out.
pub fn client_address(
    peer: IpAddr,
    trusted_proxies: &[IpAddr],
    x_forwarded_for: &[String],
    forwarded: &[String],
) -> String {
    if !trusted_proxies.contains(&peer) {
        return peer.to_string();
    }
    let mut entries: Vec<String> = x_forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .map(|entry| entry.trim().to_owned())
        .filter(|entry| !entry.is_empty())
        .collect();
    if entries.is_empty() {
        entries = forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .flat_map(|element| element.split(';'))
            .filter_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.eq_ignore_ascii_case("for")
                    .then(|| value.trim().trim_matches('"').to_owned())
            })
            .collect();
    }
    for entry in entries.iter().rev() {
        match forwarded_ip(entry) {
            Some(ip) if trusted_proxies.contains(&ip) => continue,
            Some(ip) => return ip.to_string(),
            None => {
                tracing::debug!("a forwarded client address could not be read");
                let digest = crate::domain::TokenDigest::of(entry.as_bytes());
                return format!("forwarded:{}", &digest.as_str()[..16]);
            }
        }
    }
    peer.to_string()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:80`,
/// `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().expect("IP")
    }

    #[test]
    fn forwarded_addresses_are_read_with_or_without_ports_and_never_fall_back_to_the_proxy() {
        let proxy = ip("127.0.0.2");
        let trusted = [proxy];
        let xff = |v: &str| vec![v.to_owned()];
        for (header, client) in [
            ("203.0.113.7", "203.0.113.7"),
            ("203.0.113.7:4711", "203.0.113.7"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            // Left of the right-most untrusted entry is the client's own text.
            ("6.6.6.6, 203.0.113.7:1", "203.0.113.7"),
            // A trusted proxy in the chain is skipped.
            ("203.0.113.7, 127.0.0.2", "203.0.113.7"),
        ] {
            assert_eq!(
                client_address(proxy, &trusted, &xff(header), &[]),
                client,
                "{header}"
            );
        }
        let garbage = client_address(proxy, &trusted, &xff("not an address"), &[]);
        assert!(garbage.starts_with("forwarded:"), "{garbage}");
        assert_ne!(
            garbage,
            client_address(proxy, &trusted, &xff("another garbage"), &[]),
            "unreadable entries are told apart, never one shared key"
        );
        assert_eq!(
            client_address(
                proxy,
                &trusted,
                &[],
                &["for=\"[2001:db8::7]:80\";proto=https".to_owned()]
            ),
            "2001:db8::7",
            "RFC 7239 Forwarded when there is no X-Forwarded-For"
        );
        assert_eq!(client_address(proxy, &trusted, &[], &[]), "127.0.0.2");
        assert_eq!(
            client_address(ip("198.51.100.1"), &trusted, &xff("203.0.113.7"), &[]),
            "198.51.100.1",
            "an untrusted peer's header is ignored"
        );
    }
}
