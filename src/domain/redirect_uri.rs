//! Redirect URIs: what may be registered (RFC 6749 §3.1.2, RFC 9700 §2.1,
//! RFC 8252 for native apps) and how a requested URI is matched against the
//! registered ones: by simple string comparison, with no decoding or
//! normalisation (RFC 9700 §4.1.3), except that a loopback IP literal may
//! carry any port (RFC 8252 §7.3).

use std::fmt;

use url::{Host, Url};

/// Why a redirect URI cannot be registered, phrased for the developer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RedirectUriError(pub String);

fn refuse(message: impl Into<String>) -> RedirectUriError {
    RedirectUriError(message.into())
}

/// A registered redirect URI, stored exactly as registered.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RedirectUri(String);

/// Schemes that execute or embed content rather than navigate to an app.
const FORBIDDEN_SCHEMES: [&str; 5] = ["javascript", "data", "vbscript", "file", "blob"];

impl RedirectUri {
    pub const MAX_LEN: usize = 2000;

    /// Validates a URI for registration:
    /// - absolute, at most 2000 characters, printable ASCII only;
    /// - no fragment, no wildcard, no user info;
    /// - `https`, or `http` only on a loopback IP literal (`127.0.0.1`,
    ///   `[::1]`), or a private-use scheme in reverse-DNS form
    ///   (`com.example.app:/cb`) for native apps;
    /// - never `javascript:`, `data:` and the like.
    pub fn parse_registration(raw: &str) -> Result<Self, RedirectUriError> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(refuse(format!(
                "a redirect URI must have 1 to {} characters",
                Self::MAX_LEN
            )));
        }
        if !raw.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(refuse(
                "a redirect URI may hold only printable ASCII, without spaces",
            ));
        }
        if raw.contains('#') {
            return Err(refuse("a redirect URI must not contain a fragment (#)"));
        }
        if raw.contains('*') {
            return Err(refuse("wildcards are not allowed in redirect URIs"));
        }
        let url = Url::parse(raw).map_err(|_| refuse("a redirect URI must be an absolute URI"))?;
        let scheme = url.scheme();
        if FORBIDDEN_SCHEMES.contains(&scheme) {
            return Err(refuse(format!("the `{scheme}:` scheme is not allowed")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse(
                "a redirect URI must not contain user information (@)",
            ));
        }
        match scheme {
            "https" => {
                if url.host().is_none() {
                    return Err(refuse("an https redirect URI needs a host"));
                }
            }
            "http" => {
                if !is_loopback_literal(url.host()) {
                    return Err(refuse(
                        "http is only allowed on a loopback address (http://127.0.0.1 or http://[::1]); use https",
                    ));
                }
            }
            _ => {
                // RFC 8252 §7.1: private-use schemes must be reverse domain
                // names, e.g. com.example.app.
                if !scheme.contains('.') {
                    return Err(refuse(
                        "a private-use scheme must be a reverse domain name such as com.example.app",
                    ));
                }
            }
        }
        Ok(Self(raw.to_owned()))
    }

    /// A URI read back from storage, validated when it was registered.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this registration admits the `requested` URI: the very same
    /// string, or, when this is an http loopback URI, the same string with
    /// any port (RFC 8252 §7.3).
    pub fn admits(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        let Some((prefix, rest)) = split_loopback(&self.0) else {
            return false;
        };
        let Some(after_host) = requested.strip_prefix(prefix) else {
            return false;
        };
        let after_port = match after_host.strip_prefix(':') {
            Some(port_and_rest) => {
                let digits = port_and_rest.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 || digits > 5 {
                    return false;
                }
                let (port, rest) = port_and_rest.split_at(digits);
                if port.parse::<u16>().is_err() {
                    return false;
                }
                rest
            }
            None => after_host,
        };
        after_port == rest
    }

    /// Whether the registration is an http loopback URI (port may vary).
    pub fn is_loopback(&self) -> bool {
        split_loopback(&self.0).is_some()
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_loopback_literal(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// For `http://127.0.0.1[:port]/rest` or `http://[::1][:port]/rest`, the
/// prefix up to the host and the part after the port.
fn split_loopback(uri: &str) -> Option<(&'static str, &str)> {
    for prefix in ["http://127.0.0.1", "http://[::1]"] {
        if let Some(after_host) = uri.strip_prefix(prefix) {
            let rest = match after_host.strip_prefix(':') {
                Some(port_and_rest) => {
                    let digits = port_and_rest.bytes().take_while(u8::is_ascii_digit).count();
                    if digits == 0 {
                        return None;
                    }
                    &port_and_rest[digits..]
                }
                None => after_host,
            };
            if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
                return Some((prefix, rest));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(raw: &str) -> RedirectUri {
        RedirectUri::parse_registration(raw).expect("valid registration")
    }

    // SECURITY-CASES RU-07
    #[test]
    fn unsafe_registrations_are_refused() {
        for bad in [
            "https://client.example/cb#x",
            "https://client.example/cb#",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "https://*.example/cb",
            "http://client.example/cb",
            "http://localhost/cb",
            "myapp:/cb",
            "/relative/cb",
            "https://user@client.example/cb",
            "https://client.example/c b",
            "",
        ] {
            assert!(
                RedirectUri::parse_registration(bad).is_err(),
                "{bad:?} must be refused"
            );
        }
        for good in [
            "https://client.example/cb",
            "https://client.example/cb?a=1",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(
                RedirectUri::parse_registration(good).is_ok(),
                "{good:?} must be accepted"
            );
        }
    }

    // SECURITY-CASES RU-03, RU-04, RU-05
    #[test]
    fn matching_is_exact_string_comparison() {
        let cb = registered("https://client.example/cb");
        assert!(cb.admits("https://client.example/cb"));
        for variant in [
            "https://client.example/cb/x",
            "https://client.example/cb/",
            "https://client.example/CB",
            "https://CLIENT.EXAMPLE/cb",
            "https://client.example:443/cb",
            "https://client.example/cb/../cb",
            "https://client.example/cb%2FX",
            "https://client.example/cb/..%2FX",
            "https://client.example/cb/%2e%2e%2FX",
            "https://client.example/cb/..%252FX",
            "https://client.example/cb/;/../../X",
            "https://client.example/cb%0A%0D/../X",
            "https://client.example/cb?x=1",
            "https://client.example/cb?code=attackercode",
            "http://client.example/cb",
            "https://client.example@evil.example/cb",
            "https://client.example%40evil.example/cb",
            "https://evil.example\\@client.example/cb",
            "https://client.example/cb#frag",
            "https://client.example/cb ",
        ] {
            assert!(!cb.admits(variant), "{variant:?} must not match");
        }
        let with_query = registered("https://client.example/cb?a=1");
        assert!(with_query.admits("https://client.example/cb?a=1"));
        assert!(!with_query.admits("https://client.example/cb?a=2"));
        assert!(!with_query.admits("https://client.example/cb?a=1&b=2"));
    }

    // SECURITY-CASES RU-06
    #[test]
    fn loopback_registrations_accept_any_port_and_nothing_else() {
        let v4 = registered("http://127.0.0.1/cb");
        assert!(v4.is_loopback());
        assert!(v4.admits("http://127.0.0.1:51004/cb"));
        assert!(v4.admits("http://127.0.0.1/cb"));
        for bad in [
            "http://127.0.0.1:51004/cb?x=1",
            "http://127.0.0.1:51004/other",
            "http://127.0.0.2:51004/cb",
            "http://127.0.0.1.evil.example:51004/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:99999/cb",
            "http://127.0.0.1:51004@evil.example/cb",
            "https://127.0.0.1:51004/cb",
        ] {
            assert!(!v4.admits(bad), "{bad:?} must not match");
        }
        let v6 = registered("http://[::1]/cb");
        assert!(v6.admits("http://[::1]:61023/cb"));
        assert!(!v6.admits("http://127.0.0.1:61023/cb"));
        let https = registered("https://client.example/cb");
        assert!(!https.is_loopback());
        assert!(!https.admits("http://127.0.0.1/cb"));
    }
}
