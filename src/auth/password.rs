//! Password hashing with Argon2id (OWASP parameters: m=19 MiB, t=2, p=1),
//! stored as PHC strings. Hashing takes tens of milliseconds and 19 MiB on
//! purpose, so requests hash through [`Hashers`]: a bounded number at a time,
//! on the blocking pool, each in a pooled, pre-sized memory buffer (LG-03).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

use crate::domain::Password;

/// Memory cost in KiB (19 MiB), iterations and lanes: OWASP's first
/// recommended Argon2id configuration (LG-04).
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn params() -> Result<Params, HashError> {
    Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_err(|e| HashError(e.to_string()))
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params()?))
}

/// Blocks in one pooled buffer: enough for tessera's own parameters.
fn pooled_block_count() -> usize {
    // m KiB = m blocks of 1 KiB (Argon2 rounds down to a multiple of 4·p).
    MEMORY_KIB as usize
}

/// A PHC string `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` with a fresh
/// 16-byte salt from the OS. Allocates its own memory: for the CLI and
/// tests; requests go through [`Hashers::hash`].
pub fn hash(password: &Password) -> Result<String, HashError> {
    hash_in(password, &mut vec![Block::default(); pooled_block_count()])
}

/// [`hash`] computed in `memory` (at least [`pooled_block_count`] blocks).
fn hash_in(password: &Password, memory: &mut [Block]) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| HashError(e.to_string()))?;
    let params = params()?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2()?
        .hash_password_into_with_memory(
            password.expose().as_bytes(),
            salt_bytes,
            &mut output,
            memory,
        )
        .map_err(|e| HashError(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| HashError(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).map_err(|e| HashError(e.to_string()))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the stored PHC string. The parameters are read
/// from the string, so hashes made with older settings still verify. An
/// unparseable hash never matches. Allocates its own memory (CLI, tests).
pub fn verify(password: &Password, stored: &str) -> bool {
    verify_in(password, stored, &mut [])
}

/// [`verify`] computed in `memory`, which grows (for this call only) when
/// the stored hash asks for more memory than the pooled buffer holds.
fn verify_in(password: &Password, stored: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let needed = params.block_count();
    let mut own;
    let blocks: &mut [Block] = if memory.len() >= needed {
        memory
    } else {
        // A stored hash with a larger `m` than ours gets its own buffer.
        own = vec![Block::default(); needed];
        &mut own[..]
    };
    let mut output = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.expose().as_bytes(),
        salt_bytes,
        &mut output,
        blocks,
    );
    computed.is_ok() && bool::from(output.as_slice().ct_eq(expected.as_bytes()))
}

/// A hash of a random password, verified against when the username does not
/// exist so that unknown and known users take the same time (LG-01).
pub fn dummy_hash() -> Result<String, HashError> {
    let random = crate::domain::SecretToken::generate().map_err(|e| HashError(e.to_string()))?;
    hash(&Password::presented(random.expose().to_owned()))
}

/// Why [`Hashers`] did not hash.
#[derive(Debug, thiserror::Error)]
pub enum HasherError {
    /// Every permit stayed taken for the whole wait: the server is busy.
    #[error("every password hasher stayed busy")]
    Busy,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("a password task was cancelled")]
    Task(#[from] tokio::task::JoinError),
}

/// At most `permits` password hashes at once, each in one of as many
/// pooled 19 MiB buffers (LG-03). Without the bound a burst of sign-ins runs
/// one Argon2 per blocking thread (512 by default: ~10 GB); with fresh
/// allocations glibc keeps the freed buffers in per-thread arenas, so the
/// peak never goes back. Buffers are made on first use and then kept, so
/// memory stays at `permits × 19 MiB` at most. Cheap to clone.
#[derive(Clone)]
pub struct Hashers {
    permits: Arc<Semaphore>,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    wait: Duration,
}

impl Hashers {
    pub fn new(permits: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            buffers: Arc::new(Mutex::new(Vec::new())),
            wait,
        }
    }

    /// Hashes a new password (sign-up, password change).
    pub async fn hash(&self, password: Password) -> Result<String, HasherError> {
        Ok(self.run(move |memory| hash_in(&password, memory)).await??)
    }

    /// Checks a password against a stored PHC string.
    pub async fn verify(&self, password: Password, stored: Arc<str>) -> Result<bool, HasherError> {
        self.run(move |memory| verify_in(&password, &stored, memory))
            .await
    }

    /// Runs `work` on the blocking pool with a pooled buffer, after waiting
    /// at most `wait` for a permit.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HasherError> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| HasherError::Busy)?
            .map_err(|_| HasherError::Busy)?;
        let buffers = self.buffers.clone();
        let span = tracing::Span::current();
        let result = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut memory = take_buffer(&buffers);
            let result = work(&mut memory);
            if let Ok(mut pool) = buffers.lock() {
                pool.push(memory);
            }
            drop(permit);
            result
        })
        .await?;
        Ok(result)
    }
}

/// A buffer from the pool, or a new one (first uses; or after a panic lost one).
fn take_buffer(buffers: &Mutex<Vec<Vec<Block>>>) -> Vec<Block> {
    buffers
        .lock()
        .ok()
        .and_then(|mut pool| pool.pop())
        .unwrap_or_else(|| vec![Block::default(); pooled_block_count()])
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

    // SECURITY-CASES LG-04: the pooled path writes the same PHC strings the
    // argon2 crate's own hasher and verifier read, and a reused (dirty)
    // buffer changes nothing.
    #[test]
    fn pooled_buffers_produce_standard_phc_hashes_and_can_be_reused() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let password = Password::presented("correct horse".into());
        let mut memory = vec![Block::default(); pooled_block_count()];
        let first = hash_in(&password, &mut memory).expect("hashes");
        let second = hash_in(&password, &mut memory).expect("hashes again in the same buffer");
        for stored in [&first, &second] {
            let parsed = PasswordHash::new(stored).expect("PHC");
            assert!(
                Argon2::default()
                    .verify_password(b"correct horse", &parsed)
                    .is_ok()
            );
            assert!(verify_in(&password, stored, &mut memory));
        }
        let salt = SaltString::generate(&mut OsRng);
        let standard = argon2()
            .expect("params")
            .hash_password(b"correct horse", &salt)
            .expect("hashes")
            .to_string();
        assert!(verify_in(&password, &standard, &mut memory));
        assert!(!verify_in(
            &Password::presented("correct horsf".into()),
            &standard,
            &mut memory
        ));
    }

    #[test]
    fn a_hash_needing_more_memory_than_the_pool_still_verifies() {
        use argon2::password_hash::PasswordHasher as _;
        let bigger = Params::new(MEMORY_KIB * 2, 1, 1, None).expect("params");
        let salt = SaltString::generate(&mut OsRng);
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, bigger)
            .hash_password(b"pw", &salt)
            .expect("hashes")
            .to_string();
        let mut memory = vec![Block::default(); pooled_block_count()];
        assert!(verify_in(
            &Password::presented("pw".into()),
            &stored,
            &mut memory
        ));
        assert_eq!(
            memory.len(),
            pooled_block_count(),
            "the pooled buffer did not grow"
        );
    }

    #[tokio::test]
    async fn hashers_refuse_when_every_permit_stays_busy() {
        let hashers = Hashers::new(1, Duration::from_millis(10));
        let held = hashers
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("permit");
        let refused = hashers.hash(Password::presented("pw".into())).await;
        assert!(matches!(refused, Err(HasherError::Busy)), "{refused:?}");
        drop(held);
        let stored = hashers
            .hash(Password::presented("pw".into()))
            .await
            .expect("hashes once a permit is free");
        assert!(
            hashers
                .verify(Password::presented("pw".into()), stored.into())
                .await
                .expect("verifies")
        );
    }

    #[test]
    fn a_garbage_hash_never_matches() {
        assert!(!verify(
            &Password::presented("x".into()),
            "not-a-phc-string"
        ));
    }
}
