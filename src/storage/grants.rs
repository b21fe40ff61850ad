//! Queries on `grants`: one row per authorization; revoking it revokes every
//! code, refresh token and access token born from it.

use diesel::prelude::*;

use super::models::{ClientRow, GrantRow};
use super::schema::{clients, grants};
use super::{DbConnection, StorageError};
use crate::domain::{Client, ClientId, ScopeSet, UnixTime, UserId};

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

/// Revokes a grant and records why, on the grant and in the audit log.
/// Returns whether it was active.
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
    if updated == 1
        && let Some(grant) = find(conn, id)?
    {
        let detail = format!("grant {id}: {reason}");
        let user = grant.user_id.as_ref().map(UserId::as_str);
        super::audit::record(
            conn,
            "grant.revoked",
            user,
            Some(grant.client_id.as_str()),
            Some(&detail),
            now,
        )?;
    }
    Ok(updated == 1)
}

/// Active grants of a user with their clients, newest first (connected apps).
pub fn list_active_for_user(
    conn: &mut DbConnection,
    user_id: &UserId,
) -> Result<Vec<(Grant, Client)>, StorageError> {
    let rows = grants::table
        .inner_join(clients::table)
        .filter(grants::user_id.eq(user_id.as_str()))
        .filter(grants::revoked_at.is_null())
        .order(grants::created_at.desc())
        .select((GrantRow::as_select(), ClientRow::as_select()))
        .load::<(GrantRow, ClientRow)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(g, c)| (g.into(), c.into_client()))
        .collect())
}

/// Grants filtered by user and/or client (all when both are `None`),
/// newest first, at most `limit`.
pub fn list(
    conn: &mut DbConnection,
    user_id: Option<&UserId>,
    client_id: Option<&ClientId>,
    include_revoked: bool,
    limit: i64,
) -> Result<Vec<Grant>, StorageError> {
    let mut query = grants::table
        .select(GrantRow::as_select())
        .order(grants::created_at.desc())
        .limit(limit)
        .into_boxed();
    if let Some(user) = user_id {
        query = query.filter(grants::user_id.eq(user.as_str().to_owned()));
    }
    if let Some(client) = client_id {
        query = query.filter(grants::client_id.eq(client.as_str().to_owned()));
    }
    if !include_revoked {
        query = query.filter(grants::revoked_at.is_null());
    }
    Ok(query.load(conn)?.into_iter().map(Grant::from).collect())
}

/// Revokes every active grant of a user. Returns how many.
pub fn revoke_for_user(
    conn: &mut DbConnection,
    user_id: &UserId,
    reason: &str,
    now: UnixTime,
) -> Result<usize, StorageError> {
    let revoked = diesel::update(
        grants::table
            .filter(grants::user_id.eq(user_id.as_str()))
            .filter(grants::revoked_at.is_null()),
    )
    .set((
        grants::revoked_at.eq(now),
        grants::revoked_reason.eq(reason),
    ))
    .execute(conn)?;
    if revoked > 0 {
        let detail = format!("{revoked} grant(s): {reason}");
        super::audit::record(
            conn,
            "grant.revoked",
            Some(user_id.as_str()),
            None,
            Some(&detail),
            now,
        )?;
    }
    Ok(revoked)
}

/// Revokes every active grant of a client (its users' and its own standing
/// client-credentials grant). Returns how many.
pub fn revoke_for_client(
    conn: &mut DbConnection,
    client_id: &ClientId,
    reason: &str,
    now: UnixTime,
) -> Result<usize, StorageError> {
    let revoked = diesel::update(
        grants::table
            .filter(grants::client_id.eq(client_id.as_str()))
            .filter(grants::revoked_at.is_null()),
    )
    .set((
        grants::revoked_at.eq(now),
        grants::revoked_reason.eq(reason),
    ))
    .execute(conn)?;
    if revoked > 0 {
        let detail = format!("{revoked} grant(s): {reason}");
        super::audit::record(
            conn,
            "grant.revoked",
            None,
            Some(client_id.as_str()),
            Some(&detail),
            now,
        )?;
    }
    Ok(revoked)
}

/// Deletes grants revoked before `cutoff` (with their codes and refresh
/// tokens, by cascade), at most `batch` at a time.
pub fn delete_revoked_before(
    conn: &mut DbConnection,
    cutoff: UnixTime,
    batch: i64,
) -> Result<usize, StorageError> {
    let ids: Vec<String> = grants::table
        .filter(grants::revoked_at.lt(cutoff))
        .select(grants::id)
        .limit(batch)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    use super::schema::{authorization_codes, refresh_tokens};
    // Explicit deletes: SQLite enforces ON DELETE CASCADE only with
    // foreign_keys on, which every tessera connection sets, but be exact.
    diesel::delete(refresh_tokens::table.filter(refresh_tokens::grant_id.eq_any(&ids)))
        .execute(conn)?;
    diesel::delete(authorization_codes::table.filter(authorization_codes::grant_id.eq_any(&ids)))
        .execute(conn)?;
    Ok(diesel::delete(grants::table.filter(grants::id.eq_any(&ids))).execute(conn)?)
}

/// Runs `work` as one transaction (inside the SQLite writer's batch, a
/// savepoint): when it returns `Err`, none of its writes happen. The token
/// endpoint spends a code or refresh token and issues from it this way, so
/// a failure after the spend leaves it unspent (RFC 6749 §5.2, ST-01).
pub fn all_or_nothing<T, E: From<StorageError>>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E> {
    enum Failure<E> {
        Work(E),
        Query(diesel::result::Error),
    }
    impl<E> From<diesel::result::Error> for Failure<E> {
        fn from(error: diesel::result::Error) -> Self {
            Self::Query(error)
        }
    }
    conn.transaction(|conn| work(conn).map_err(Failure::Work))
        .map_err(|failure| match failure {
            Failure::Work(error) => error,
            Failure::Query(error) => E::from(StorageError::from(error)),
        })
}
