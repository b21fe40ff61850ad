//! Queries on `grants`: one row per authorization; revoking it revokes every
//! code, refresh token and access token born from it.

use diesel::prelude::*;

use super::models::GrantRow;
use super::schema::grants;
use super::{DbConnection, StorageError};
use crate::domain::{ClientId, ScopeSet, UnixTime, UserId};

/// A grant as the protocol layer sees it.
#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub user_id: Option<UserId>,
    pub client_id: ClientId,
    pub scope: ScopeSet,
    pub created_at: UnixTime,
    pub last_used_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    pub revoked_reason: Option<String>,
}

impl Grant {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

impl From<GrantRow> for Grant {
    fn from(row: GrantRow) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id.map(UserId::from_stored),
            client_id: ClientId::from_stored(row.client_id),
            scope: ScopeSet::from_stored(&row.scope),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
            revoked_reason: row.revoked_reason,
        }
    }
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Grant>, StorageError> {
    Ok(grants::table
        .find(id)
        .select(GrantRow::as_select())
        .first(conn)
        .optional()?
        .map(Grant::from))
}

/// The user's active grant to a client (remembered consent), if any.
pub fn find_active_for(
    conn: &mut DbConnection,
    user_id: Option<&UserId>,
    client_id: &ClientId,
) -> Result<Option<Grant>, StorageError> {
    let query = grants::table
        .filter(grants::client_id.eq(client_id.as_str()))
        .filter(grants::revoked_at.is_null())
        .select(GrantRow::as_select())
        .order(grants::created_at.desc());
    let row = match user_id {
        Some(user) => query
            .filter(grants::user_id.eq(user.as_str()))
            .first(conn)
            .optional()?,
        None => query
            .filter(grants::user_id.is_null())
            .first(conn)
            .optional()?,
    };
    Ok(row.map(Grant::from))
}

pub fn insert(
    conn: &mut DbConnection,
    user_id: Option<&UserId>,
    client_id: &ClientId,
    scope: &ScopeSet,
    now: UnixTime,
) -> Result<Grant, StorageError> {
    let row = GrantRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.map(|u| u.as_str().to_owned()),
        client_id: client_id.as_str().to_owned(),
        scope: scope.to_string(),
        created_at: now,
        last_used_at: now,
        revoked_at: None,
        revoked_reason: None,
    };
    diesel::insert_into(grants::table)
        .values(&row)
        .execute(conn)?;
    Ok(row.into())
}

/// Sets the grant's scope (incremental consent merges new scopes in).
pub fn update_scope(
    conn: &mut DbConnection,
    id: &str,
    scope: &ScopeSet,
    now: UnixTime,
) -> Result<(), StorageError> {
    diesel::update(grants::table.find(id))
        .set((
            grants::scope.eq(scope.to_string()),
            grants::last_used_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn touch(conn: &mut DbConnection, id: &str, now: UnixTime) -> Result<(), StorageError> {
    diesel::update(grants::table.find(id))
        .set(grants::last_used_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// Revokes a grant and records why. Returns whether it was active.
pub fn revoke(
    conn: &mut DbConnection,
    id: &str,
    reason: &str,
    now: UnixTime,
) -> Result<bool, StorageError> {
    let updated = diesel::update(grants::table.find(id).filter(grants::revoked_at.is_null()))
        .set((
            grants::revoked_at.eq(now),
            grants::revoked_reason.eq(reason),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}
