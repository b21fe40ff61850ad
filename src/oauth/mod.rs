//! The OAuth 2 protocol, framework-free: request validation, grants, codes,
//! tokens and keys. oxide-auth drives the RFC 6749 flows over tessera's own
//! primitives; tessera checks first where oxide-auth is weaker than the RFCs.

pub mod authorize;
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
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` text.
    pub fn parse(raw: &str) -> Self {
        let mut params = Self::default();
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            *params.counts.entry(key.to_string()).or_default() += 1;
            if !value.is_empty() {
                params.values.insert(key.into_owned(), value.into_owned());
            }
        }
        params
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

    /// Some repeated parameter, if any.
    pub fn repeated_key(&self) -> Option<&str> {
        self.counts
            .iter()
            .find(|(_, count)| **count > 1)
            .map(|(key, _)| key.as_str())
    }
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
}
