//! Scopes: space-separated tokens of RFC 6749 Appendix A's NQCHAR
//! (`%x21 / %x23-5B / %x5D-7E`), bounded in size (SC-02).

use std::collections::BTreeSet;
use std::fmt;

/// Largest `scope` parameter accepted, in bytes, and most tokens in it.
pub const MAX_SCOPE_BYTES: usize = 1024;
pub const MAX_SCOPE_TOKENS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("the scope parameter is longer than {MAX_SCOPE_BYTES} bytes")]
    TooLong,
    #[error("the scope parameter has more than {MAX_SCOPE_TOKENS} scopes")]
    TooMany,
    #[error("the scope parameter contains characters RFC 6749 does not allow")]
    InvalidCharacter,
}

/// A set of scope tokens, ordered so it prints the same way every time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses the wire form. Runs of single spaces separate tokens; anything
    /// outside NQCHAR (control characters, `"`, `\`, non-ASCII) is refused.
    pub fn parse(raw: &str) -> Result<Self, ScopeError> {
        if raw.len() > MAX_SCOPE_BYTES {
            return Err(ScopeError::TooLong);
        }
        let mut tokens = BTreeSet::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            if !token.bytes().all(is_nqchar) {
                return Err(ScopeError::InvalidCharacter);
            }
            tokens.insert(token.to_owned());
            if tokens.len() > MAX_SCOPE_TOKENS {
                return Err(ScopeError::TooMany);
            }
        }
        Ok(Self(tokens))
    }

    /// Scopes read back from storage.
    pub fn from_stored(raw: &str) -> Self {
        Self(
            raw.split(' ')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    pub fn from_tokens<I: IntoIterator<Item = S>, S: Into<String>>(tokens: I) -> Self {
        Self(tokens.into_iter().map(Into::into).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.union(&other.0).cloned().collect())
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

fn is_nqchar(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_into_a_sorted_set() {
        let scopes = ScopeSet::parse("write openid  read openid").expect("valid");
        assert_eq!(scopes.to_string(), "openid read write");
    }

    // SECURITY-CASES SC-02
    #[test]
    fn hostile_scope_input_is_refused() {
        assert_eq!(ScopeSet::parse("a\"b"), Err(ScopeError::InvalidCharacter));
        assert_eq!(ScopeSet::parse("a\\b"), Err(ScopeError::InvalidCharacter));
        assert_eq!(ScopeSet::parse("a\0b"), Err(ScopeError::InvalidCharacter));
        assert_eq!(ScopeSet::parse("a\tb"), Err(ScopeError::InvalidCharacter));
        assert_eq!(ScopeSet::parse("ümlaut"), Err(ScopeError::InvalidCharacter));
        assert_eq!(ScopeSet::parse(&"a".repeat(2000)), Err(ScopeError::TooLong));
        let many: Vec<String> = (0..51).map(|i| format!("s{i}")).collect();
        assert_eq!(ScopeSet::parse(&many.join(" ")), Err(ScopeError::TooMany));
    }

    #[test]
    fn set_operations_behave() {
        let granted = ScopeSet::parse("openid read write").expect("valid");
        let asked = ScopeSet::parse("read admin").expect("valid");
        assert!(!asked.is_subset(&granted));
        assert_eq!(asked.difference(&granted).to_string(), "admin");
        assert_eq!(asked.intersection(&granted).to_string(), "read");
    }
}
