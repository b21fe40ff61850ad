//! A user's connected apps: the grants they hold, and taking them back.

use crate::domain::{ScopeSet, UnixTime, UserId};
use crate::storage::{DbConnection, StorageError, grants};

/// What happened to a grant the user acted on.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Revoked,
    Narrowed,
    /// No such active grant of this user (or another user's): nothing done.
    NotFound,
}

/// Revokes one of the user's grants: every token of it dies at once and the
/// app has to ask for consent again (RV-04).
pub fn revoke(
    conn: &mut DbConnection,
    user_id: &UserId,
    grant_id: &str,
    now: UnixTime,
) -> Result<Outcome, StorageError> {
    let Some(grant) = grants::find(conn, grant_id)?
        .filter(|g| g.is_active() && g.user_id.as_ref() == Some(user_id))
    else {
        return Ok(Outcome::NotFound);
    };
    grants::revoke(conn, &grant.id, "user revoked access (connected apps)", now)?;
    tracing::info!(user.id = %user_id, grant.id = %grant.id, client.id = %grant.client_id, "grant revoked by its user");
    Ok(Outcome::Revoked)
}

/// Keeps only `kept` of a grant's scopes: later refreshes and introspection
/// carry only what remains. Keeping nothing revokes the grant.
pub fn narrow(
    conn: &mut DbConnection,
    user_id: &UserId,
    grant_id: &str,
    kept: &ScopeSet,
    now: UnixTime,
) -> Result<Outcome, StorageError> {
    let Some(grant) = grants::find(conn, grant_id)?
        .filter(|g| g.is_active() && g.user_id.as_ref() == Some(user_id))
    else {
        return Ok(Outcome::NotFound);
    };
    let remaining = grant.scope.intersection(kept);
    if remaining.is_empty() {
        return revoke(conn, user_id, grant_id, now);
    }
    if remaining != grant.scope {
        grants::update_scope(conn, &grant.id, &remaining, now)?;
        tracing::info!(user.id = %user_id, grant.id = %grant.id, scope = %remaining, "grant narrowed by its user");
    }
    Ok(Outcome::Narrowed)
}
