//! Password hashing with Argon2id (OWASP parameters: m=19 MiB, t=2, p=1),
//! stored as PHC strings. Hashing takes tens of milliseconds on purpose, so
//! callers run it on the blocking pool.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;

/// Memory cost in KiB (19 MiB), iterations and lanes: OWASP's first
/// recommended Argon2id configuration (LG-04).
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_err(|e| HashError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A PHC string `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` with a fresh
/// 16-byte salt from the OS.
pub fn hash(password: &Password) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the stored PHC string. The parameters are read
/// from the string, so hashes made with older settings still verify. An
/// unparseable hash never matches.
pub fn verify(password: &Password, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
}

/// A hash of a random password, verified against when the username does not
/// exist so that unknown and known users take the same time (LG-01).
pub fn dummy_hash() -> Result<String, HashError> {
    let random = crate::domain::SecretToken::generate().map_err(|e| HashError(e.to_string()))?;
    hash(&Password::presented(random.expose().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // SECURITY-CASES LG-04
    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_unique_salts() {
        let password = Password::presented("correct horse".into());
        let first = hash(&password).expect("hashes");
        let second = hash(&password).expect("hashes");
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert_ne!(first, second, "salts differ");
        let salt = first.split('$').nth(4).expect("salt part");
        assert!(salt.len() >= 22, "at least 16 bytes of salt in base64");
        assert!(verify(&password, &first));
        assert!(!verify(
            &Password::presented("correct horsf".into()),
            &first
        ));
    }

    #[test]
    fn long_and_non_ascii_passwords_are_not_truncated() {
        let long = "ü".repeat(64);
        let stored = hash(&Password::presented(long.clone())).expect("hashes");
        assert!(verify(&Password::presented(long.clone()), &stored));
        let mut shorter = long;
        shorter.pop();
        assert!(!verify(&Password::presented(shorter), &stored));
    }

    #[test]
    fn a_garbage_hash_never_matches() {
        assert!(!verify(
            &Password::presented("x".into()),
            "not-a-phc-string"
        ));
    }
}
