//! Queries on `clients`.

use diesel::prelude::*;

use super::models::ClientRow;
use super::schema::{clients, grants};
use super::{DbConnection, StorageError};
use crate::domain::{Client, ClientId, UnixTime};

pub fn insert(conn: &mut DbConnection, client: &Client, now: UnixTime) -> Result<(), StorageError> {
    diesel::insert_into(clients::table)
        .values(ClientRow::from_client(client, now))
        .execute(conn)?;
    super::audit::record(
        conn,
        "client.registered",
        client.owner_user_id.as_deref(),
        Some(client.id.as_str()),
        Some(&client.name),
        now,
    )?;
    Ok(())
}

/// Stores a client registered with an initial access token (`paid_with`),
/// spending one use of the token in the same transaction. `false`, with
/// nothing stored, when the token has no use left (a parallel registration
/// took it). `None`: no token needed.
pub fn insert_paid(
    conn: &mut DbConnection,
    client: &Client,
    paid_with: Option<&crate::domain::TokenDigest>,
    now: UnixTime,
) -> Result<bool, StorageError> {
    conn.transaction(|conn| {
        if let Some(digest) = paid_with
            && !super::registration_tokens::spend(conn, digest, now)?
        {
            return Ok(false);
        }
        insert(conn, client, now)?;
        Ok(true)
    })
}

/// Stores an app registered on the developer pages unless its owner
/// already has `max` apps; `false`, with nothing stored, when they have.
/// The owner's row is locked first (an update that changes nothing), so
/// parallel registrations by one user are counted one after the other on
/// PostgreSQL too.
pub fn insert_owned(
    conn: &mut DbConnection,
    client: &Client,
    owner: &crate::domain::UserId,
    max: u32,
    now: UnixTime,
) -> Result<bool, StorageError> {
    use super::schema::users;
    conn.transaction(|conn| {
        diesel::update(users::table.find(owner.as_str()))
            .set(users::id.eq(users::id))
            .execute(conn)?;
        let owned: i64 = clients::table
            .filter(clients::owner_user_id.eq(owner.as_str()))
            .count()
            .get_result(conn)?;
        if owned >= i64::from(max) {
            return Ok(false);
        }
        insert(conn, client, now)?;
        Ok(true)
    })
}

pub fn find(conn: &mut DbConnection, id: &ClientId) -> Result<Option<Client>, StorageError> {
    Ok(clients::table
        .find(id.as_str())
        .select(ClientRow::as_select())
        .first(conn)
        .optional()?
        .map(ClientRow::into_client))
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Client>, StorageError> {
    Ok(clients::table
        .order(clients::created_at.asc())
        .select(ClientRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ClientRow::into_client)
        .collect())
}

/// Replaces the secret digest, keeping the previous one valid until
/// `previous_valid_until` (rotation overlap). Returns whether the client
/// exists.
pub fn rotate_secret_hash(
    conn: &mut DbConnection,
    client: &Client,
    secret_hash: &str,
    previous_valid_until: UnixTime,
    now: UnixTime,
) -> Result<bool, StorageError> {
    let updated = diesel::update(clients::table.find(client.id.as_str()))
        .set((
            clients::secret_hash.eq(secret_hash),
            clients::previous_secret_hash.eq(client.secret_hash.clone()),
            clients::previous_secret_expires_at.eq(Some(previous_valid_until)),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 1 {
        super::audit::record(
            conn,
            "client.secret_rotated",
            None,
            Some(client.id.as_str()),
            None,
            now,
        )?;
    }
    Ok(updated == 1)
}

/// Rewrites a client's metadata (not its id, type, secrets or flags). When
/// what users see or where codes go changes, an operator's verification is
/// cleared in the same transaction and audited (SECURITY-CASES VF-01), so no
/// caller can forget it. Returns whether verification was cleared.
pub fn update_metadata(
    conn: &mut DbConnection,
    client: &Client,
    now: UnixTime,
) -> Result<bool, StorageError> {
    conn.transaction(|conn| {
        // Lock the row first (an update that changes nothing): on PostgreSQL
        // an operator's concurrent `client verify` then waits for this
        // transaction, or committed before it and is seen here, so no app
        // ends up verified with metadata nobody verified.
        diesel::update(clients::table.find(client.id.as_str()))
            .set(clients::id.eq(clients::id))
            .execute(conn)?;
        let current = find(conn, &client.id)?;
        let clears_verification =
            current.is_some_and(|current| current.verified && !current.presents_as(client));
        let row = ClientRow::from_client(client, now);
        diesel::update(clients::table.find(client.id.as_str()))
            .set((
                clients::name.eq(row.name),
                clients::description.eq(row.description),
                clients::redirect_uris.eq(row.redirect_uris),
                clients::post_logout_redirect_uris.eq(row.post_logout_redirect_uris),
                clients::allowed_scopes.eq(row.allowed_scopes),
                clients::grant_types.eq(row.grant_types),
                clients::homepage_uri.eq(row.homepage_uri),
                clients::logo_uri.eq(row.logo_uri),
                clients::policy_uri.eq(row.policy_uri),
                clients::tos_uri.eq(row.tos_uri),
                clients::client_type.eq(row.client_type),
                clients::token_endpoint_auth_method.eq(row.token_endpoint_auth_method),
                clients::updated_at.eq(now),
            ))
            .execute(conn)?;
        super::audit::record(
            conn,
            "client.changed",
            None,
            Some(client.id.as_str()),
            Some(&client.name),
            now,
        )?;
        if clears_verification {
            diesel::update(clients::table.find(client.id.as_str()))
                .set(clients::verified.eq(false))
                .execute(conn)?;
            super::audit::record(
                conn,
                "client.verification_cleared",
                None,
                Some(client.id.as_str()),
                Some("name, links or redirect URIs changed"),
                now,
            )?;
        }
        Ok(clears_verification)
    })
}

/// Clients a user registered on the developer pages, oldest first.
pub fn list_owned(
    conn: &mut DbConnection,
    user_id: &crate::domain::UserId,
) -> Result<Vec<Client>, StorageError> {
    Ok(clients::table
        .filter(clients::owner_user_id.eq(user_id.as_str()))
        .order(clients::created_at.asc())
        .select(ClientRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ClientRow::into_client)
        .collect())
}

/// Deletes a client; its grants, codes and refresh tokens go with it
/// (ON DELETE CASCADE), so every token it holds stops working.
pub fn delete(conn: &mut DbConnection, id: &ClientId) -> Result<bool, StorageError> {
    conn.transaction(|conn| {
        diesel::delete(grants::table.filter(grants::client_id.eq(id.as_str()))).execute(conn)?;
        let deleted = diesel::delete(clients::table.find(id.as_str())).execute(conn)?;
        if deleted == 1 {
            super::audit::record(
                conn,
                "client.deleted",
                None,
                Some(id.as_str()),
                None,
                crate::domain::now(),
            )?;
        }
        Ok(deleted == 1)
    })
}

pub fn set_flags(
    conn: &mut DbConnection,
    id: &ClientId,
    verified: Option<bool>,
    disabled: Option<bool>,
    now: UnixTime,
) -> Result<bool, StorageError> {
    let target = clients::table.find(id.as_str());
    let mut updated = 0;
    if let Some(verified) = verified {
        updated = diesel::update(target)
            .set((clients::verified.eq(verified), clients::updated_at.eq(now)))
            .execute(conn)?;
    }
    if let Some(disabled) = disabled {
        updated = diesel::update(target)
            .set((clients::disabled.eq(disabled), clients::updated_at.eq(now)))
            .execute(conn)?;
    }
    if updated == 1 {
        let detail = format!("verified: {verified:?}, disabled: {disabled:?}");
        super::audit::record(
            conn,
            "client.flags_changed",
            None,
            Some(id.as_str()),
            Some(&detail),
            now,
        )?;
    }
    Ok(updated == 1)
}
