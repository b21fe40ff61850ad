//! The OAuth 2 protocol, framework-free: request validation, grants, codes,
//! tokens and keys. oxide-auth drives the RFC 6749 flows over tessera's own
//! primitives; tessera checks first where oxide-auth is weaker than the RFCs.

pub mod authorize;
pub mod client_auth;
pub mod clients;
pub mod connected;
pub mod error;
pub mod id_token;
pub mod introspect;
pub mod keys;
pub mod logout;
pub mod metadata;
pub mod primitives;
pub mod registration;
pub mod revoke;
pub mod token;
pub mod userinfo;

use std::collections::HashMap;

use crate::config::Settings;
use crate::domain::ScopeSet;

/// Request parameters (query or form body) with repeated keys remembered:
/// RFC 6749 §3.1 and §3.2 say parameters must not be included more than
/// once (IV-01). Empty values count as absent (IV-02).
#[derive(Debug, Default, Clone)]
pub struct Params {
    values: HashMap<String, String>,
    counts: HashMap<String, usize>,
    /// Every non-empty value of the parameters that may repeat.
    repeatable: HashMap<String, Vec<String>>,
}

/// A form body that is not `application/x-www-form-urlencoded` as RFC 6749
/// Appendix B defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedForm;

/// Parameters a request may carry more than once: RFC 8707 `resource`.
const REPEATABLE: [&str; 1] = ["resource"];

impl Params {
    /// Parses `application/x-www-form-urlencoded` text.
    pub fn parse(raw: &str) -> Self {
        let mut params = Self::default();
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            *params.counts.entry(key.to_string()).or_default() += 1;
            if !value.is_empty() {
                if REPEATABLE.contains(&key.as_ref()) {
                    params
                        .repeatable
                        .entry(key.to_string())
                        .or_default()
                        .push(value.to_string());
                }
                params.values.insert(key.into_owned(), value.into_owned());
            }
        }
        params
    }

    /// Parses a form body strictly (RFC 6749 Appendix B, SECURITY-CASES
    /// IV-04): a body with a malformed percent escape (`%zz`, a lone `%`), an
    /// escape that decodes to something other than UTF-8 (`%ff%fe`), or a
    /// pair without a name (`=x`) is refused, not guessed at.
    pub fn parse_form(raw: &str) -> Result<Self, MalformedForm> {
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name.is_empty() {
                return Err(MalformedForm);
            }
            for part in [name, value] {
                let bytes = part.as_bytes();
                let mut decoded = Vec::with_capacity(bytes.len());
                let mut i = 0;
                while i < bytes.len() {
                    match bytes[i] {
                        b'%' => {
                            let hex = bytes.get(i + 1..i + 3).ok_or(MalformedForm)?;
                            let text = std::str::from_utf8(hex).map_err(|_| MalformedForm)?;
                            decoded.push(u8::from_str_radix(text, 16).map_err(|_| MalformedForm)?);
                            i += 3;
                        }
                        b'+' => {
                            decoded.push(b' ');
                            i += 1;
                        }
                        other => {
                            decoded.push(other);
                            i += 1;
                        }
                    }
                }
                std::str::from_utf8(&decoded).map_err(|_| MalformedForm)?;
            }
        }
        Ok(Self::parse(raw))
    }

    /// The value of a parameter given once with a non-empty value.
    pub fn get(&self, key: &str) -> Option<&str> {
        if self.is_repeated(key) {
            return None;
        }
        self.values.get(key).map(String::as_str)
    }

    pub fn is_repeated(&self, key: &str) -> bool {
        self.counts.get(key).is_some_and(|count| *count > 1)
    }

    /// Some repeated parameter that must not repeat, if any.
    pub fn repeated_key(&self) -> Option<&str> {
        self.counts
            .iter()
            .find(|(key, count)| **count > 1 && !REPEATABLE.contains(&key.as_str()))
            .map(|(key, _)| key.as_str())
    }

    /// Every value of a repeatable parameter (RFC 8707 `resource`).
    pub fn all(&self, key: &str) -> &[String] {
        self.repeatable.get(key).map_or(&[], Vec::as_slice)
    }
}

/// The `aud` of access tokens (RFC 8707, RFC 9700 §2.3).
///
/// A token is only ever for the APIs its own `scope` reaches
/// ([`audiences_for`]: the APIs owning any of the scopes, and the default
/// audience where that gives it), so holding or naming a resource buys no
/// audience without its scopes (SECURITY-CASES AU-01). `allowed` is what an
/// earlier step granted (the resources named at authorization, stored with
/// the code and the refresh-token family): when not empty, the token is
/// also within it, so a later request may narrow, never widen or change the
/// audience (AU-02). `requested` (the request's `resource` values) picks
/// some of those; none picks all. Anything else is `invalid_target`. The
/// authorization endpoint calls this with `allowed` empty, so it refuses
/// a resource the requested scope does not reach.
pub fn resolve_audience(
    settings: &Settings,
    scope: &ScopeSet,
    requested: &[String],
    allowed: &[String],
) -> Result<Vec<String>, error::OAuthError> {
    let reachable = audiences_for(settings, scope);
    let granted: Vec<String> = if allowed.is_empty() {
        reachable
    } else {
        allowed
            .iter()
            .filter(|resource| reachable.contains(resource))
            .cloned()
            .collect()
    };
    if requested.is_empty() {
        if granted.is_empty() {
            // The scope asked for no longer reaches any granted resource.
            return Err(error::OAuthError::InvalidTarget(
                "the scope does not cover the resources granted".to_owned(),
            ));
        }
        return Ok(granted);
    }
    // Never echo the resource (ER-01): the description is fixed.
    if requested.iter().any(|resource| !granted.contains(resource)) {
        return Err(error::OAuthError::InvalidTarget(
            "the resource is not one the scope and the grant allow tokens for".to_owned(),
        ));
    }
    let mut audiences = requested.to_vec();
    audiences.sort();
    audiences.dedup();
    Ok(audiences)
}

/// The `aud` of access tokens for `scope`: the configured APIs owning any of
/// the scopes, or the default audience.
pub fn audiences_for(settings: &Settings, scope: &ScopeSet) -> Vec<String> {
    let mut audiences: Vec<String> = settings
        .apis
        .iter()
        .filter(|api| api.scopes.iter().any(|s| scope.contains(s)))
        .map(|api| api.audience.clone())
        .collect();
    // The issuer's own resource (userinfo) accepts tokens carrying openid.
    if audiences.is_empty() || scope.contains("openid") {
        audiences.push(settings.default_audience());
    }
    audiences.dedup();
    audiences
}

#[cfg(test)]
mod tests {
    use super::*;

    // SECURITY-CASES IV-01, IV-02
    #[test]
    fn repeated_and_empty_parameters_are_recognised() {
        let params = Params::parse("a=1&b=&c=2&c=3&d=x%20y");
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None, "empty is absent");
        assert!(params.is_repeated("c"));
        assert_eq!(params.get("c"), None);
        assert_eq!(params.repeated_key(), Some("c"));
        assert_eq!(params.get("d"), Some("x y"));
    }

    // SECURITY-CASES IV-04
    #[test]
    fn malformed_form_bodies_are_refused() {
        for bad in [
            "%zz=1", "a=%", "a=%4", "a=b&&=&c", "=x", "a=%ff%fe", "%e2%82=1",
        ] {
            assert_eq!(Params::parse_form(bad).err(), Some(MalformedForm), "{bad}");
        }
        for good in [
            "",
            "a=1&b=",
            "a=1&",
            "scope=openid+profile",
            "x=%E2%82%AC",
            "a",
        ] {
            assert!(Params::parse_form(good).is_ok(), "{good}");
        }
    }

    const NOTES: &str = "https://notes-api.example";
    const CALENDAR: &str = "https://calendar-api.example";

    fn settings_with_two_apis() -> Settings {
        let mut settings = Settings::load(&crate::config::ConfigSources::default())
            .expect("the built-in defaults are valid");
        for (scope, audience) in [("notes:read", NOTES), ("calendar:read", CALENDAR)] {
            settings.apis.push(crate::config::ApiDefinition {
                audience: audience.to_owned(),
                scopes: vec![scope.to_owned()],
            });
        }
        settings
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Scope, requested, allowed, and the audience (None: invalid_target).
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], Option<&'a [&'a str]>);

    // SECURITY-CASES AU-01, AU-02: (scope, requested, allowed) -> audience
    // or invalid_target.
    #[test]
    fn an_audience_stays_within_the_scope_and_the_grant() {
        let settings = settings_with_two_apis();
        let issuer = settings.default_audience();
        let issuer = issuer.as_str();
        let cases: &[Case<'_>] = &[
            // Nothing named: the APIs owning the scopes (and the issuer for openid).
            ("notes:read", &[], &[], Some(&[NOTES])),
            ("openid notes:read", &[], &[], Some(&[NOTES, issuer])),
            ("profile", &[], &[], Some(&[issuer])),
            // Named within the scope's reach.
            (
                "notes:read calendar:read",
                &[CALENDAR],
                &[],
                Some(&[CALENDAR]),
            ),
            ("openid notes:read", &[issuer], &[], Some(&[issuer])),
            // AU-01: an API (or the issuer) the scope does not reach.
            ("notes:read", &[CALENDAR], &[], None),
            ("profile", &[NOTES], &[], None),
            ("notes:read", &[issuer], &[], None),
            ("notes:read", &[NOTES, CALENDAR], &[], None),
            ("notes:read", &["https://elsewhere.example"], &[], None),
            // AU-02: narrowing what was granted, never widening or changing it.
            ("notes:read calendar:read", &[], &[NOTES], Some(&[NOTES])),
            ("notes:read calendar:read", &[CALENDAR], &[NOTES], None),
            (
                "notes:read calendar:read",
                &[NOTES],
                &[NOTES, CALENDAR],
                Some(&[NOTES]),
            ),
            ("notes:read", &[], &[NOTES, CALENDAR], Some(&[NOTES])),
            ("profile", &[], &[NOTES], None),
        ];
        for (scope, requested, allowed, expected) in cases {
            let scope = ScopeSet::from_stored(scope);
            let got = resolve_audience(&settings, &scope, &strings(requested), &strings(allowed));
            match expected {
                Some(audience) => assert_eq!(
                    got.ok(),
                    Some(strings(audience)),
                    "{scope} {requested:?} {allowed:?}"
                ),
                None => assert!(
                    matches!(got, Err(error::OAuthError::InvalidTarget(_))),
                    "{scope} {requested:?} {allowed:?}"
                ),
            }
        }
    }
}
