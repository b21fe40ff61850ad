//! Queries on `audit_events`: the security audit log. Callers pass what
//! happened and to whom; nothing secret is ever written here.

use diesel::prelude::*;

use super::schema::audit_events as audit;
use super::{DbConnection, StorageError};
use crate::domain::UnixTime;

/// One audit event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit)]
pub struct AuditEvent {
    pub id: String,
    pub at: UnixTime,
    /// Dotted name: `sign_in.succeeded`, `grant.revoked`, `client.registered`, ...
    pub event: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// Why or how, in words (a revocation reason, a client address).
    pub detail: Option<String>,
}

pub fn record(
    conn: &mut DbConnection,
    event: &str,
    user_id: Option<&str>,
    client_id: Option<&str>,
    detail: Option<&str>,
    now: UnixTime,
) -> Result<(), StorageError> {
    diesel::insert_into(audit::table)
        .values((
            audit::id.eq(uuid::Uuid::new_v4().to_string()),
            audit::at.eq(now),
            audit::event.eq(event),
            audit::user_id.eq(user_id),
            audit::client_id.eq(client_id),
            audit::detail.eq(detail.map(|d| d.chars().take(500).collect::<String>())),
        ))
        .execute(conn)?;
    Ok(())
}

/// Events since `since`, optionally of one user or client, newest first.
pub fn list(
    conn: &mut DbConnection,
    since: UnixTime,
    user_id: Option<&str>,
    client_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEvent>, StorageError> {
    let mut query = audit::table
        .filter(audit::at.ge(since))
        .order(audit::at.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .into_boxed();
    if let Some(user) = user_id {
        query = query.filter(audit::user_id.eq(user.to_owned()));
    }
    if let Some(client) = client_id {
        query = query.filter(audit::client_id.eq(client.to_owned()));
    }
    Ok(query.load(conn)?)
}

pub fn delete_before(
    conn: &mut DbConnection,
    cutoff: UnixTime,
    batch: i64,
) -> Result<usize, StorageError> {
    let ids: Vec<String> = audit::table
        .filter(audit::at.lt(cutoff))
        .select(audit::id)
        .limit(batch)
        .load(conn)?;
    Ok(diesel::delete(audit::table.filter(audit::id.eq_any(ids))).execute(conn)?)
}
