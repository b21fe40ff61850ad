//! `return_to`: where to send the browser after signing in or out. Only
//! same-origin relative paths are accepted (CS-06, RFC 9700 §4.11); anything
//! else is ignored rather than refused, so a bad link still lets the user in.

/// A path on this server, safe to put in a `Location` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    pub const MAX_LEN: usize = 2048;

    /// Accepts `/path?query` only: must start with a single `/`, must not
    /// start with `//` or `/\` (browsers read both as another host), and
    /// must hold only printable ASCII without backslashes (no CR/LF header
    /// injection, no encoded tricks decoded later).
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() > Self::MAX_LEN || !raw.starts_with('/') {
            return None;
        }
        if raw.starts_with("//") || raw.contains('\\') {
            return None;
        }
        // Quotes and angle brackets are escaped wherever tessera prints a
        // path, but no legitimate path needs them.
        if !raw
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && !b"\"<>`".contains(&b))
        {
            return None;
        }
        // Percent-encoded slashes and backslashes at the start decode to the
        // same tricks in some browsers and proxies.
        let lower = raw.to_ascii_lowercase();
        if lower.starts_with("/%2f") || lower.starts_with("/%5c") {
            return None;
        }
        Some(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_kept() {
        for good in ["/account", "/oauth2/authorize?client_id=a&state=b", "/"] {
            assert_eq!(ReturnTo::parse(good).map(|r| r.0), Some(good.to_owned()));
        }
    }

    // SECURITY-CASES CS-06
    #[test]
    fn anything_that_could_leave_the_origin_is_ignored() {
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/%2F%2Fevil.example",
            "/%5cevil.example",
            "javascript:alert(1)",
            "/account\r\nSet-Cookie: x=y",
            "/a b",
            "/x\"><script>",
            "",
            "account",
        ] {
            assert!(ReturnTo::parse(bad).is_none(), "{bad:?} should be ignored");
        }
    }
}
