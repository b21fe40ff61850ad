//! High-entropy secrets (session ids, CSRF keys, later codes and tokens) and
//! the SHA-256 digests stored in their place.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 random bits from the operating system's CSPRNG, base64url-encoded.
/// `Debug` prints nothing of the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// A fresh token. Fails only if the OS cannot provide randomness, in which
    /// case nothing secret may be issued at all.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Wraps a value received from a client (a cookie, a form field).
    pub fn from_presented(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 digest stored instead of the token.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(self.0.as_bytes())
    }

    /// A second secret derived from this one for another purpose (`label`),
    /// e.g. the CSRF token of a session. Knowing the derived value reveals
    /// nothing about this one, and neither equals the stored digest.
    pub fn derive(&self, label: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"tessera:");
        hasher.update(label.as_bytes());
        hasher.update(b":");
        hasher.update(self.0.as_bytes());
        URL_SAFE_NO_PAD.encode(hasher.finalize())
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

/// Hex SHA-256 of a secret, as stored in the database.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TokenDigest(String);

impl TokenDigest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(bytes)))
    }

    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl SecretToken {
    /// Whether `presented` equals this secret, in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        constant_time_eq(&self.0, presented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_carry_256_bits_and_differ() {
        let a = SecretToken::generate().expect("os randomness");
        let b = SecretToken::generate().expect("os randomness");
        assert_eq!(a.expose().len(), 43, "32 bytes in unpadded base64url");
        assert_ne!(a, b);
    }

    #[test]
    fn debug_never_prints_the_value() {
        let token = SecretToken::from_presented("hunter2-secret");
        assert!(!format!("{token:?}").contains("hunter2"));
    }

    #[test]
    fn derived_values_differ_by_label_and_from_the_digest() {
        let token = SecretToken::from_presented("abc");
        assert_ne!(token.derive("csrf"), token.derive("other"));
        assert_ne!(token.derive("csrf"), token.digest().as_str());
        assert_eq!(token.derive("csrf"), token.derive("csrf"));
    }

    #[test]
    fn digest_is_hex_sha256() {
        assert_eq!(
            TokenDigest::of(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
