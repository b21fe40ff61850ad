//! Signing keys: generated with aws-lc-rs, private parts encrypted at rest
//! with AES-256-GCM under the key-encryption key (OP-04), parsed once and
//! kept in memory; the JWKS document serialised once; JWTs signed with the
//! parsed aws-lc-rs key (JWS compact serialisation, RFC 7515 §7.1) and
//! verified with jsonwebtoken under an algorithm allow-list (JW-01..JW-06).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{self as aws_signature, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{Environment, KeySettings, SigningAlgorithm};
use crate::domain::UnixTime;
use crate::storage::keys::{self as stored_keys, StoredKey};
use crate::storage::{Db, StorageError};

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

#[derive(thiserror::Error)]
pub enum KeyError {
    #[error("the key-encryption key is missing or malformed: {0}")]
    EncryptionKey(String),
    #[error("could not read or write the key-encryption key file {path}")]
    EncryptionKeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("signing key {kid} could not be decrypted: wrong key-encryption key?")]
    Decrypt { kid: String },
    #[error("generating or encoding a key failed: {0}")]
    Crypto(String),
    #[error("signing a token failed")]
    Sign(#[source] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl std::fmt::Debug for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::telemetry::write_error_chain(f, self)
    }
}

/// `aud`: one audience or several (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn from_list(mut audiences: Vec<String>) -> Self {
        if audiences.len() == 1 {
            Self::One(audiences.remove(0))
        } else {
            Self::Many(audiences)
        }
    }

    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// The claims of a tessera access token (RFC 9068 plus the grant id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user id, or the client id for client credentials.
    pub sub: String,
    pub aud: Audience,
    pub client_id: String,
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// The grant (authorization) this token belongs to.
    pub gid: String,
}

/// One key pair, parsed.
struct SigningKey {
    algorithm: Algorithm,
    signer: Signer,
    /// The protected headers, serialised and base64url-encoded once.
    access_token_header: String,
    id_token_header: String,
    decoding: DecodingKey,
}

/// A private key parsed once. jsonwebtoken's `encode` parses the PKCS#8
/// document again, with a public-point check, on every call: that cost
/// more than the ECDSA signature itself (docs/benchmarks.md).
enum Signer {
    Ecdsa(aws_signature::EcdsaKeyPair),
    Ed25519(aws_signature::Ed25519KeyPair),
    Rsa(aws_signature::RsaKeyPair),
}

impl Signer {
    fn parse(algorithm: SigningAlgorithm, private: &[u8]) -> Result<Self, KeyError> {
        let bad = |e: aws_lc_rs::error::KeyRejected| KeyError::Crypto(e.to_string());
        Ok(match algorithm {
            SigningAlgorithm::ES256 => Self::Ecdsa(
                aws_signature::EcdsaKeyPair::from_pkcs8(
                    &aws_signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    private,
                )
                .map_err(bad)?,
            ),
            SigningAlgorithm::EdDSA => {
                Self::Ed25519(aws_signature::Ed25519KeyPair::from_pkcs8(private).map_err(bad)?)
            }
            SigningAlgorithm::RS256 => {
                Self::Rsa(aws_signature::RsaKeyPair::from_der(private).map_err(bad)?)
            }
        })
    }

    /// The JWS signature of `message` (ES256: r || s, 64 bytes).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |_| KeyError::Crypto("signing failed".to_owned());
        match self {
            Self::Ecdsa(pair) => Ok(pair
                .sign(&SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Self::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Self::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &aws_signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

impl SigningKey {
    /// `header.payload.signature` with `claims` as the payload.
    fn sign_jws(&self, encoded_header: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims)
            .map_err(|e| KeyError::Crypto(format!("claims do not serialise: {e}")))?;
        let mut token = String::with_capacity(encoded_header.len() + payload.len() * 4 / 3 + 400);
        token.push_str(encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.signer.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }
}

/// A protected header `{"typ", "alg", "kid"}`, base64url-encoded.
fn encoded_header(algorithm: Algorithm, kid: &str, typ: &str) -> Result<String, KeyError> {
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    header.typ = Some(typ.to_owned());
    let json = serde_json::to_vec(&header)
        .map_err(|e| KeyError::Crypto(format!("header does not serialise: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// Every active key, the one that signs, and the JWKS document.
pub struct KeySet {
    keys: HashMap<String, Arc<SigningKey>>,
    /// The newest key of each algorithm signs.
    signers: HashMap<&'static str, Arc<SigningKey>>,
    /// The key that signs access tokens.
    signer: Arc<SigningKey>,
    jwks: Arc<str>,
    /// Recently verified access tokens by SHA-256, so repeated introspection
    /// skips the signature check. Only the signature result is cached; the
    /// revocation state is read on every call.
    verified: std::sync::Mutex<HashMap<[u8; 32], AccessClaims>>,
}

/// Most verified tokens remembered; past it the cache starts over.
const VERIFIED_CACHE_CAPACITY: usize = 50_000;

/// The key set, loaded on first use: a server started before its database
/// was migrated (`database.auto_migrate = false`) loads its keys once the
/// schema is there, without a restart.
pub struct Keys {
    db: Db,
    settings: KeySettings,
    environment: Environment,
    current: std::sync::RwLock<Option<(Arc<KeySet>, std::time::Instant)>>,
}

impl Keys {
    pub fn new(db: Db, settings: KeySettings, environment: Environment) -> Self {
        Self {
            db,
            settings,
            environment,
            current: std::sync::RwLock::new(None),
        }
    }

    /// The loaded key set, loading (or creating) it when needed and reading
    /// it again every `keys.reload_interval_secs`, so a rotation made on
    /// another instance (or a key reaching its activation time) is picked
    /// up. If a reload fails the previous set keeps serving.
    pub async fn get(&self) -> Result<Arc<KeySet>, KeyError> {
        let cached = self.current.read().ok().and_then(|guard| guard.clone());
        if let Some((set, loaded_at)) = &cached
            && loaded_at.elapsed()
                < std::time::Duration::from_secs(self.settings.reload_interval_secs)
        {
            return Ok(set.clone());
        }
        let loaded = KeySet::load_or_create(&self.db, &self.settings, self.environment).await;
        let set = match (loaded, cached) {
            (Ok(set), _) => Arc::new(set),
            (Err(error), Some((previous, _))) => {
                tracing::warn!(error = ?error, "reloading signing keys failed; keeping the loaded ones");
                previous
            }
            (Err(error), None) => return Err(error),
        };
        if let Ok(mut guard) = self.current.write() {
            *guard = Some((set.clone(), std::time::Instant::now()));
        }
        Ok(set)
    }
}

/// Creates a new key of `algorithm` that is published at once and starts
/// signing after `settings.publish_ahead_secs`, so resource servers that
/// cache the JWKS know it before they see a token signed with it.
pub async fn rotate(
    db: &Db,
    settings: &KeySettings,
    environment: Environment,
    algorithm: SigningAlgorithm,
    now: UnixTime,
) -> Result<StoredKey, KeyError> {
    let kek = load_encryption_key(settings, environment)?;
    let mut key = generate(algorithm, &kek, now)?;
    key.activates_at = now + settings.publish_ahead_secs;
    let stored = key.clone();
    db.run(move |conn| stored_keys::insert(conn, &stored))
        .await?;
    tracing::info!(key.id = %key.kid, key.alg = %key.algorithm, activates_at = key.activates_at, "signing key rotated");
    Ok(key)
}

/// Retires keys whose successor (same algorithm) has been signing for
/// longer than `token_lifetime_secs`: every token they signed has expired,
/// so they leave the JWKS. Returns how many were retired.
pub async fn retire_superseded(
    db: &Db,
    token_lifetime_secs: i64,
    now: UnixTime,
) -> Result<usize, KeyError> {
    let keys = db.run(stored_keys::list_active).await?;
    let mut retired = 0;
    // Sorted by activation, as `KeySet` picks its signers: any later key of
    // the same algorithm that activated long enough ago supersedes.
    for (position, key) in keys.iter().enumerate() {
        let superseded = keys[position + 1..].iter().any(|newer| {
            newer.algorithm == key.algorithm && newer.activates_at + token_lifetime_secs < now
        });
        if superseded {
            let kid = key.kid.clone();
            db.run(move |conn| stored_keys::retire(conn, &kid, now))
                .await?;
            tracing::info!(key.id = %key.kid, "signing key retired");
            retired += 1;
        }
    }
    Ok(retired)
}

/// Rotates the access-token key when the newest one is older than
/// `settings.rotation_period_secs` (0: never).
pub async fn rotate_if_due(
    db: &Db,
    settings: &KeySettings,
    environment: Environment,
    now: UnixTime,
) -> Result<bool, KeyError> {
    if settings.rotation_period_secs <= 0 {
        return Ok(false);
    }
    let keys = db.run(stored_keys::list_active).await?;
    let newest = keys
        .iter()
        .filter(|k| k.algorithm == settings.algorithm.as_str())
        .map(|k| k.created_at)
        .max();
    if newest.is_some_and(|created| created + settings.rotation_period_secs > now) {
        return Ok(false);
    }
    rotate(db, settings, environment, settings.algorithm, now).await?;
    Ok(true)
}

/// Why a presented JWT is not accepted. Deliberately coarse: callers answer
/// "invalid token" whatever the reason.
#[derive(Debug, thiserror::Error)]
pub enum TokenRejected {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's header is not acceptable (alg, kid or typ)")]
    Header,
    #[error("the signature or a claim did not verify")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("the token has expired or is not valid yet")]
    Expired,
}

impl KeySet {
    /// Loads the active keys (decrypting them), creating one when there is
    /// none, so a fresh installation and every restart sign with stored keys.
    pub async fn load_or_create(
        db: &Db,
        settings: &KeySettings,
        environment: Environment,
    ) -> Result<Self, KeyError> {
        let kek = load_encryption_key(settings, environment)?;
        let mut stored = db.run(stored_keys::list_active).await?;
        // One key for access tokens, one for ID tokens (RS256 by default,
        // which every OpenID Connect library verifies).
        for algorithm in [settings.algorithm, settings.id_token_algorithm] {
            if stored.iter().any(|k| k.algorithm == algorithm.as_str()) {
                continue;
            }
            let key = generate(algorithm, &kek, crate::domain::now())?;
            tracing::info!(key.id = %key.kid, key.alg = %key.algorithm, "signing key created");
            let to_insert = key.clone();
            db.run(move |conn| stored_keys::insert(conn, &to_insert))
                .await?;
            stored.push(key);
        }
        Self::from_stored(&stored, &kek, settings.algorithm)
    }

    /// A key set with fresh keys of `algorithms` that exists only in memory
    /// (encrypted under a random key-encryption key), for benchmarks and
    /// tools. tessera itself always loads its keys from the database.
    pub fn ephemeral(algorithms: &[SigningAlgorithm]) -> Result<Self, KeyError> {
        let mut kek_bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut kek_bytes)
            .map_err(|_| KeyError::Crypto("no randomness".to_owned()))?;
        let kek = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &kek_bytes)
                .map_err(|_| KeyError::Crypto("bad key".to_owned()))?,
        );
        let stored = algorithms
            .iter()
            .map(|algorithm| generate(*algorithm, &kek, crate::domain::now()))
            .collect::<Result<Vec<_>, _>>()?;
        let first = algorithms
            .first()
            .copied()
            .unwrap_or(SigningAlgorithm::ES256);
        Self::from_stored(&stored, &kek, first)
    }

    fn from_stored(
        stored: &[StoredKey],
        kek: &LessSafeKey,
        access_algorithm: SigningAlgorithm,
    ) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        let mut jwks = Vec::new();
        let mut signers = HashMap::new();
        for key in stored {
            let Some(algorithm) = SigningAlgorithm::parse(&key.algorithm) else {
                tracing::warn!(key.id = %key.kid, "skipping a key with an unknown algorithm");
                continue;
            };
            let private =
                decrypt(kek, &key.private_key_encrypted).ok_or_else(|| KeyError::Decrypt {
                    kid: key.kid.clone(),
                })?;
            let jwk: serde_json::Value = serde_json::from_str(&key.public_jwk)
                .map_err(|e| KeyError::Crypto(e.to_string()))?;
            let parsed = Arc::new(parse_key(&key.kid, algorithm, &private, &jwk)?);
            jwks.push(jwk);
            keys.insert(key.kid.clone(), parsed.clone());
            // Stored by activation: the newest activated key of each
            // algorithm signs; a key not active yet is only published.
            let now = crate::domain::now();
            if key.activates_at <= now || !signers.contains_key(algorithm.as_str()) {
                signers.insert(algorithm.as_str(), parsed);
            }
        }
        let signer = signers
            .get(access_algorithm.as_str())
            .or_else(|| signers.values().next())
            .cloned()
            .ok_or_else(|| KeyError::Crypto("no usable signing key".to_owned()))?;
        let jwks = json!({ "keys": jwks }).to_string().into();
        Ok(Self {
            keys,
            signers,
            signer,
            jwks,
            verified: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The JWKS document, serialised once.
    pub fn jwks_json(&self) -> Arc<str> {
        self.jwks.clone()
    }

    /// Signs access-token claims with the current key, `typ: at+jwt`.
    pub fn sign_access_token(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        self.signer
            .sign_jws(&self.signer.access_token_header, claims)
    }

    /// Signs OpenID Connect ID token claims (`typ: JWT`) with the newest key
    /// of `algorithm`, or the access-token key when there is none.
    pub fn sign_id_token(
        &self,
        claims: &serde_json::Value,
        algorithm: SigningAlgorithm,
    ) -> Result<String, KeyError> {
        let key = self.signers.get(algorithm.as_str()).unwrap_or(&self.signer);
        key.sign_jws(&key.id_token_header, claims)
    }

    /// The hash OpenID Connect's `at_hash` uses with `algorithm`: the left
    /// half of SHA-256 (ES256, RS256) or SHA-512 (EdDSA with Ed25519),
    /// base64url.
    pub fn at_hash(access_token: &str, algorithm: SigningAlgorithm) -> String {
        use sha2::Digest as _;
        let digest = match algorithm {
            SigningAlgorithm::EdDSA => sha2::Sha512::digest(access_token.as_bytes()).to_vec(),
            _ => sha2::Sha256::digest(access_token.as_bytes()).to_vec(),
        };
        URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
    }

    /// Verifies an ID token tessera issued (for `id_token_hint`): signature
    /// with one of its own keys, `typ: JWT`, `iss`; expiry is not checked,
    /// a hint may be old. Returns the claims.
    pub fn verify_id_token_hint(&self, token: &str, issuer: &str) -> Option<serde_json::Value> {
        if token.len() > 16_384 {
            return None;
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        let key = self.keys.get(header.kid.as_deref()?)?;
        if header.alg != key.algorithm || header.typ.as_deref() != Some("JWT") {
            return None;
        }
        let mut validation = Validation::new(key.algorithm);
        validation.algorithms = vec![key.algorithm];
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["iss", "sub", "aud"]);
        jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }

    /// `verify_access_token` with a bounded cache of tokens that verified
    /// before: a hit still checks `exp` and `nbf` against `now`, so a cached
    /// token never outlives its lifetime. Tokens that fail are not cached.
    pub fn verify_access_token_cached(
        &self,
        token: &str,
        issuer: &str,
        leeway_secs: u64,
        now: UnixTime,
    ) -> Result<AccessClaims, TokenRejected> {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let leeway = i64::try_from(leeway_secs).unwrap_or(0);
        if let Some(claims) = self
            .verified
            .lock()
            .ok()
            .and_then(|cache| cache.get(&digest).cloned())
        {
            if claims.exp + leeway > now && claims.nbf - leeway <= now {
                return Ok(claims);
            }
            return Err(TokenRejected::Expired);
        }
        let claims = self.verify_access_token(token, issuer, leeway_secs)?;
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= VERIFIED_CACHE_CAPACITY {
                // Freeing 50,000 entries takes milliseconds: never while
                // holding the lock every introspection needs.
                crate::storage::cache::drop_elsewhere(std::mem::take(&mut *cache));
            }
            cache.insert(digest, claims.clone());
        }
        Ok(claims)
    }

    /// Verifies an access token: the header must name one of tessera's own
    /// keys by `kid` with that key's algorithm (no `none`, no HMAC, no
    /// `jku`/`x5u`/`jwk` followed), `typ` must be `at+jwt`, and the
    /// signature, `iss`, `exp` and `nbf` must hold with `leeway_secs`.
    pub fn verify_access_token(
        &self,
        token: &str,
        issuer: &str,
        leeway_secs: u64,
    ) -> Result<AccessClaims, TokenRejected> {
        if token.len() > 8192 {
            return Err(TokenRejected::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejected::Malformed)?;
        let kid = header.kid.as_deref().ok_or(TokenRejected::Header)?;
        let key = self.keys.get(kid).ok_or(TokenRejected::Header)?;
        if header.alg != key.algorithm || header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(TokenRejected::Header);
        }
        let mut validation = Validation::new(key.algorithm);
        validation.algorithms = vec![key.algorithm];
        validation.leeway = leeway_secs;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.validate_aud = false;
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub", "aud"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(TokenRejected::Invalid)
    }
}

/// The key-encryption key: from configuration, or in development generated
/// once into `encryption_key_file` (mode 0600). Production never generates
/// one (the configuration check refuses to start without it).
fn load_encryption_key(
    settings: &KeySettings,
    environment: Environment,
) -> Result<LessSafeKey, KeyError> {
    let configured = settings.encryption_key.expose_secret().trim().to_owned();
    let bytes = if !configured.is_empty() {
        STANDARD
            .decode(configured)
            .map_err(|_| KeyError::EncryptionKey("keys.encryption_key is not base64".to_owned()))?
    } else if environment == Environment::Production {
        return Err(KeyError::EncryptionKey(
            "production requires keys.encryption_key".to_owned(),
        ));
    } else {
        read_or_create_key_file(&settings.encryption_key_file)?
    };
    let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
        .map_err(|_| KeyError::EncryptionKey("it must be exactly 32 bytes".to_owned()))?;
    Ok(LessSafeKey::new(unbound))
}

fn read_or_create_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    let io_error = |source| KeyError::EncryptionKeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => STANDARD.decode(text.trim()).map_err(|_| {
            KeyError::EncryptionKey(format!("{} does not hold base64", path.display()))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = vec![0u8; 32];
            SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| KeyError::Crypto("no randomness".to_owned()))?;
            if let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(io_error)?;
            }
            match write_private_file(path, STANDARD.encode(&bytes).as_bytes()) {
                Ok(()) => {}
                // Another process created it first: use theirs.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    return read_or_create_key_file(path);
                }
                Err(error) => return Err(io_error(error)),
            }
            tracing::warn!(
                path = %path.display(),
                "generated a development key-encryption key; set keys.encryption_key in production"
            );
            Ok(bytes)
        }
        Err(error) => Err(io_error(error)),
    }
}

#[cfg(unix)]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(not(unix))]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

fn encrypt(kek: &LessSafeKey, plaintext: &[u8]) -> Result<String, KeyError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| KeyError::Crypto("no randomness".to_owned()))?;
    let mut sealed = plaintext.to_vec();
    kek.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(b"tessera-signing-key"),
        &mut sealed,
    )
    .map_err(|_| KeyError::Crypto("encryption failed".to_owned()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(STANDARD.encode(out))
}

fn decrypt(kek: &LessSafeKey, encoded: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(encoded).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut sealed = sealed.to_vec();
    let plain = kek
        .open_in_place(nonce, Aad::from(b"tessera-signing-key"), &mut sealed)
        .ok()?;
    Some(plain.to_vec())
}

/// Generates a key pair, returning it ready to store: private part
/// encrypted, public part as a JWK.
pub(crate) fn generate(
    algorithm: SigningAlgorithm,
    kek: &LessSafeKey,
    now: UnixTime,
) -> Result<StoredKey, KeyError> {
    let crypto = |e: aws_lc_rs::error::Unspecified| KeyError::Crypto(e.to_string());
    let kid = uuid::Uuid::new_v4().simple().to_string();
    let (private, jwk) = match algorithm {
        SigningAlgorithm::ES256 => {
            let pair = aws_signature::EcdsaKeyPair::generate(
                &aws_signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            )
            .map_err(crypto)?;
            let pkcs8 = pair.to_pkcs8v1().map_err(crypto)?;
            // Uncompressed point: 0x04 || X || Y.
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(KeyError::Crypto(
                    "unexpected P-256 public key size".to_owned(),
                ));
            }
            let jwk = json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
        SigningAlgorithm::EdDSA => {
            let pair = aws_signature::Ed25519KeyPair::generate().map_err(crypto)?;
            // The short PKCS#8 v1 form, which jsonwebtoken reads.
            let pkcs8 = pair.to_pkcs8v1().map_err(crypto)?;
            let jwk = json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
        SigningAlgorithm::RS256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(crypto)?;
            let pkcs8 =
                AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(&pair).map_err(crypto)?;
            // jsonwebtoken signs RSA with a PKCS#1 RSAPrivateKey, which
            // PKCS#8 wraps in an OCTET STRING.
            let pkcs1 = der::pkcs8_inner_key(pkcs8.as_ref())
                .ok_or_else(|| KeyError::Crypto("unexpected PKCS#8 layout".to_owned()))?;
            let (n, e) = der::rsa_public_components(pair.public_key().as_ref())
                .ok_or_else(|| KeyError::Crypto("unexpected RSA public key layout".to_owned()))?;
            let jwk = json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e),
            });
            (pkcs1.to_vec(), jwk)
        }
    };
    Ok(StoredKey {
        kid,
        algorithm: algorithm.as_str().to_owned(),
        private_key_encrypted: encrypt(kek, &private)?,
        public_jwk: jwk.to_string(),
        created_at: now,
        activates_at: now,
        retired_at: None,
    })
}

fn parse_key(
    kid: &str,
    algorithm: SigningAlgorithm,
    private: &[u8],
    jwk: &serde_json::Value,
) -> Result<SigningKey, KeyError> {
    let field = |name: &str| {
        jwk[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| KeyError::Crypto(format!("JWK of {kid} lacks `{name}`")))
    };
    let bad = |e: jsonwebtoken::errors::Error| KeyError::Crypto(e.to_string());
    let signer = Signer::parse(algorithm, private)?;
    let (alg, decoding) = match algorithm {
        SigningAlgorithm::ES256 => (
            Algorithm::ES256,
            DecodingKey::from_ec_components(&field("x")?, &field("y")?).map_err(bad)?,
        ),
        SigningAlgorithm::EdDSA => (
            Algorithm::EdDSA,
            DecodingKey::from_ed_components(&field("x")?).map_err(bad)?,
        ),
        SigningAlgorithm::RS256 => (
            Algorithm::RS256,
            DecodingKey::from_rsa_components(&field("n")?, &field("e")?).map_err(bad)?,
        ),
    };
    Ok(SigningKey {
        algorithm: alg,
        signer,
        access_token_header: encoded_header(alg, kid, ACCESS_TOKEN_TYPE)?,
        id_token_header: encoded_header(alg, kid, "JWT")?,
        decoding,
    })
}

/// Just enough DER reading for the two RSA layouts above.
mod der {
    /// Reads one TLV; returns (tag, content, rest).
    fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let len = rest[..count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[count..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    /// PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING }
    pub fn pkcs8_inner_key(pkcs8: &[u8]) -> Option<&[u8]> {
        let (0x30, body, _) = read(pkcs8)? else {
            return None;
        };
        let (0x02, _, body) = read(body)? else {
            return None;
        };
        let (0x30, _, body) = read(body)? else {
            return None;
        };
        let (0x04, key, _) = read(body)? else {
            return None;
        };
        Some(key)
    }

    /// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER },
    /// without the sign-padding zero byte.
    pub fn rsa_public_components(pkcs1: &[u8]) -> Option<(&[u8], &[u8])> {
        let (0x30, body, _) = read(pkcs1)? else {
            return None;
        };
        let (0x02, n, body) = read(body)? else {
            return None;
        };
        let (0x02, e, _) = read(body)? else {
            return None;
        };
        Some((trim_zero(n), trim_zero(e)))
    }

    fn trim_zero(value: &[u8]) -> &[u8] {
        match value.split_first() {
            Some((0, rest)) if !rest.is_empty() => rest,
            _ => value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::EncodingKey;

    fn kek() -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("32 bytes"))
    }

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://auth.example".into(),
            sub: "user-1".into(),
            aud: Audience::One("https://api.example".into()),
            client_id: "client-1".into(),
            scope: "read".into(),
            jti: "jti-1".into(),
            iat: now,
            nbf: now,
            exp: now + 600,
            gid: "grant-1".into(),
        }
    }

    #[test]
    fn every_algorithm_signs_tokens_its_own_key_set_verifies() {
        let now = crate::domain::now();
        for algorithm in [
            SigningAlgorithm::ES256,
            SigningAlgorithm::EdDSA,
            SigningAlgorithm::RS256,
        ] {
            let stored = generate(algorithm, &kek(), now).expect("generates");
            assert!(
                !stored.private_key_encrypted.contains("PRIVATE"),
                "encrypted at rest"
            );
            let set = KeySet::from_stored(&[stored], &kek(), algorithm).expect("loads");
            let token = set.sign_access_token(&claims(now)).expect("signs");
            let verified = set
                .verify_access_token(&token, "https://auth.example", 5)
                .expect("verifies");
            assert_eq!(verified, claims(now), "{algorithm:?}");
            assert!(
                set.verify_access_token(&token, "https://other.example", 5)
                    .is_err()
            );
        }
    }

    // SECURITY-CASES OP-04
    #[test]
    fn a_wrong_key_encryption_key_cannot_decrypt() {
        let stored = generate(SigningAlgorithm::ES256, &kek(), 0).expect("generates");
        let other = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[8u8; 32]).expect("32 bytes"));
        assert!(matches!(
            KeySet::from_stored(&[stored], &other, SigningAlgorithm::ES256),
            Err(KeyError::Decrypt { .. })
        ));
    }

    fn es256_set() -> (KeySet, StoredKey) {
        let stored = generate(SigningAlgorithm::ES256, &kek(), 0).expect("generates");
        (
            KeySet::from_stored(
                std::slice::from_ref(&stored),
                &kek(),
                SigningAlgorithm::ES256,
            )
            .expect("loads"),
            stored,
        )
    }

    fn b64(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    const ISS: &str = "https://auth.example";

    // SECURITY-CASES JW-01
    #[test]
    fn unsigned_and_headerless_tokens_are_rejected() {
        let (set, stored) = es256_set();
        let payload = b64(&serde_json::to_value(claims(crate::domain::now())).expect("JSON"));
        for header in [
            json!({"alg": "none", "typ": "at+jwt", "kid": stored.kid}),
            json!({"alg": null, "typ": "at+jwt", "kid": stored.kid}),
            json!({"typ": "JWT"}),
            json!({}),
        ] {
            for signature in ["", "AAAA"] {
                let token = format!("{}.{payload}.{signature}", b64(&header));
                assert!(set.verify_access_token(&token, ISS, 5).is_err(), "{header}");
            }
        }
        assert!(set.verify_access_token("garbage", ISS, 5).is_err());
        assert!(set.verify_access_token("", ISS, 5).is_err());
    }

    // SECURITY-CASES JW-02
    #[test]
    fn an_hmac_token_keyed_with_the_public_key_is_rejected() {
        let (set, stored) = es256_set();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(stored.kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        let forged = jsonwebtoken::encode(
            &header,
            &claims(crate::domain::now()),
            &EncodingKey::from_secret(stored.public_jwk.as_bytes()).expect("HMAC key"),
        )
        .expect("HMAC signs");
        assert!(set.verify_access_token(&forged, ISS, 5).is_err());
    }

    // SECURITY-CASES JW-03
    #[test]
    fn kid_is_only_looked_up_in_the_own_key_set_and_jku_is_ignored() {
        let (set, stored) = es256_set();
        let now = crate::domain::now();
        let attacker = generate(SigningAlgorithm::ES256, &kek(), 0).expect("generates");
        let private = decrypt(&kek(), &attacker.private_key_encrypted).expect("decrypts");
        let long_kid = "k".repeat(10_000);
        for kid in [
            "../../../../dev/null",
            "' OR '1'='1",
            long_kid.as_str(),
            "unknown",
        ] {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some(kid.to_owned());
            header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
            let token =
                jsonwebtoken::encode(&header, &claims(now), &EncodingKey::from_ec_der(&private))
                    .expect("signs");
            assert!(
                set.verify_access_token(&token, ISS, 5).is_err(),
                "kid {kid:.20}"
            );
        }
        // JW-04 too: the attacker's key under tessera's kid, with a jku.
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(stored.kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.jku = Some("https://evil.example/jwks.json".to_owned());
        let token =
            jsonwebtoken::encode(&header, &claims(now), &EncodingKey::from_ec_der(&private))
                .expect("signs");
        assert!(set.verify_access_token(&token, ISS, 5).is_err());
    }

    // SECURITY-CASES JW-04, JW-05, JW-06
    #[test]
    fn signature_issuer_lifetime_and_type_are_all_checked() {
        let (set, _) = es256_set();
        let now = crate::domain::now();
        let good = set.sign_access_token(&claims(now)).expect("signs");
        assert!(set.verify_access_token(&good, ISS, 5).is_ok());
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 5;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ASCII");
        assert!(
            set.verify_access_token(&flipped, ISS, 5).is_err(),
            "flipped signature"
        );
        assert!(
            set.verify_access_token(&good, "https://other.example", 5)
                .is_err(),
            "iss"
        );
        let mut expired = claims(now);
        expired.exp = now - 6;
        let expired = set.sign_access_token(&expired).expect("signs");
        assert!(
            set.verify_access_token(&expired, ISS, 5).is_err(),
            "exp past leeway"
        );
        let mut early = claims(now);
        early.nbf = now + 120;
        let early = set.sign_access_token(&early).expect("signs");
        assert!(
            set.verify_access_token(&early, ISS, 5).is_err(),
            "nbf in the future"
        );
        // An ID token (typ JWT) is never an access token.
        let id_token = set
            .signer
            .sign_jws(&set.signer.id_token_header, &claims(now))
            .expect("signs");
        assert!(set.verify_access_token(&id_token, ISS, 5).is_err(), "typ");
    }

    #[test]
    fn cached_verification_still_honours_expiry() {
        let (set, _) = es256_set();
        let now = crate::domain::now();
        let token = set.sign_access_token(&claims(now)).expect("signs");
        assert!(set.verify_access_token_cached(&token, ISS, 5, now).is_ok());
        assert!(
            set.verify_access_token_cached(&token, ISS, 5, now).is_ok(),
            "a hit"
        );
        assert!(
            set.verify_access_token_cached(&token, ISS, 5, now + 700)
                .is_err(),
            "a cached token expires with its exp"
        );
        assert!(
            set.verify_access_token_cached("garbage", ISS, 5, now)
                .is_err()
        );
    }
}
