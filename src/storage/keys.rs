//! Queries on `signing_keys`. Private parts arrive and leave encrypted.

use diesel::prelude::*;

use super::models::SigningKeyRow;
use super::schema::signing_keys;
use super::{DbConnection, StorageError};
use crate::domain::UnixTime;

/// A stored key pair; `private_key_encrypted` is opaque to storage.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub algorithm: String,
    pub private_key_encrypted: String,
    pub public_jwk: String,
    pub created_at: UnixTime,
    /// When it starts signing (published in the JWKS before that).
    pub activates_at: UnixTime,
    pub retired_at: Option<UnixTime>,
}

impl From<SigningKeyRow> for StoredKey {
    fn from(row: SigningKeyRow) -> Self {
        Self {
            kid: row.kid,
            algorithm: row.algorithm,
            private_key_encrypted: row.private_key_encrypted,
            public_jwk: row.public_jwk,
            created_at: row.created_at,
            activates_at: row.activates_at,
            retired_at: row.retired_at,
        }
    }
}

pub fn insert(conn: &mut DbConnection, key: &StoredKey) -> Result<(), StorageError> {
    let row = SigningKeyRow {
        kid: key.kid.clone(),
        algorithm: key.algorithm.clone(),
        private_key_encrypted: key.private_key_encrypted.clone(),
        public_jwk: key.public_jwk.clone(),
        created_at: key.created_at,
        retired_at: None,
        activates_at: key.activates_at,
    };
    diesel::insert_into(signing_keys::table)
        .values(&row)
        .execute(conn)?;
    let detail = format!("{} key {}", key.algorithm, key.kid);
    super::audit::record(
        conn,
        "key.created",
        None,
        None,
        Some(&detail),
        key.created_at,
    )?;
    Ok(())
}

/// Keys not retired, oldest activation first.
pub fn list_active(conn: &mut DbConnection) -> Result<Vec<StoredKey>, StorageError> {
    Ok(signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .order((
            signing_keys::activates_at.asc(),
            signing_keys::created_at.asc(),
        ))
        .select(SigningKeyRow::as_select())
        .load(conn)?
        .into_iter()
        .map(StoredKey::from)
        .collect())
}

/// Every key, retired ones too, newest first (`tessera key list`).
pub fn list_all(conn: &mut DbConnection) -> Result<Vec<StoredKey>, StorageError> {
    Ok(signing_keys::table
        .order(signing_keys::created_at.desc())
        .select(SigningKeyRow::as_select())
        .load(conn)?
        .into_iter()
        .map(StoredKey::from)
        .collect())
}

/// Marks a key retired: it leaves the JWKS.
pub fn retire(conn: &mut DbConnection, kid: &str, now: UnixTime) -> Result<(), StorageError> {
    diesel::update(
        signing_keys::table
            .find(kid)
            .filter(signing_keys::retired_at.is_null()),
    )
    .set(signing_keys::retired_at.eq(now))
    .execute(conn)?;
    super::audit::record(conn, "key.retired", None, None, Some(kid), now)?;
    Ok(())
}
