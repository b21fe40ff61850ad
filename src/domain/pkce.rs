//! PKCE (RFC 7636) with S256 only. Challenge and verifier must match the
//! RFC's ABNF, 43 to 128 unreserved characters, which oxide-auth does not
//! check (PK-02).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A `code_challenge` sent with `code_challenge_method=S256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkceChallenge(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge_method must be S256")]
    UnsupportedMethod,
    #[error("code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")]
    MalformedChallenge,
    #[error("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")]
    MalformedVerifier,
}

/// RFC 7636 §4.1: `43*128unreserved`.
pub fn is_well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl PkceChallenge {
    /// Parses a challenge; a missing method means `plain` (RFC 7636 §4.3),
    /// which tessera refuses like any method but S256 (RFC 9700 §2.1.1).
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, PkceError> {
        if method != Some("S256") {
            return Err(PkceError::UnsupportedMethod);
        }
        if !is_well_formed(challenge) {
            return Err(PkceError::MalformedChallenge);
        }
        Ok(Self(challenge.to_owned()))
    }

    pub fn from_stored(challenge: String) -> Self {
        Self(challenge)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` is well-formed and hashes to this challenge,
    /// compared in constant time.
    pub fn verify(&self, verifier: &str) -> Result<bool, PkceError> {
        if !is_well_formed(verifier) {
            return Err(PkceError::MalformedVerifier);
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Ok(super::secret::constant_time_eq(&computed, &self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_example_verifies() {
        let challenge = PkceChallenge::parse(CHALLENGE, Some("S256")).expect("valid");
        assert_eq!(challenge.verify(VERIFIER), Ok(true));
        let wrong = VERIFIER.replace('d', "e");
        assert_eq!(challenge.verify(&wrong), Ok(false));
    }

    // SECURITY-CASES PK-01, PK-02
    #[test]
    fn plain_unknown_methods_and_malformed_values_are_refused() {
        assert_eq!(
            PkceChallenge::parse(CHALLENGE, None),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            PkceChallenge::parse(CHALLENGE, Some("plain")),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            PkceChallenge::parse(CHALLENGE, Some("S512")),
            Err(PkceError::UnsupportedMethod)
        );
        for bad in [
            &"a".repeat(42),
            &"a".repeat(129),
            &format!("{}+", "a".repeat(43)),
            &format!("{}/", "a".repeat(43)),
            &format!("{}=", "a".repeat(43)),
        ] {
            assert_eq!(
                PkceChallenge::parse(bad, Some("S256")),
                Err(PkceError::MalformedChallenge),
                "{bad}"
            );
        }
        let challenge = PkceChallenge::parse(CHALLENGE, Some("S256")).expect("valid");
        assert_eq!(challenge.verify("short"), Err(PkceError::MalformedVerifier));
        assert_eq!(
            challenge.verify(&format!("{VERIFIER}=")),
            Err(PkceError::MalformedVerifier)
        );
    }
}
