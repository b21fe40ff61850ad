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
    Ok(())
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

/// Replaces the secret digest. Returns whether the client exists.
pub fn update_secret_hash(
    conn: &mut DbConnection,
    id: &ClientId,
    secret_hash: &str,
    now: UnixTime,
) -> Result<bool, StorageError> {
    let updated = diesel::update(clients::table.find(id.as_str()))
        .set((
            clients::secret_hash.eq(secret_hash),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Deletes a client; its grants, codes and refresh tokens go with it
/// (ON DELETE CASCADE), so every token it holds stops working.
pub fn delete(conn: &mut DbConnection, id: &ClientId) -> Result<bool, StorageError> {
    conn.transaction(|conn| {
        diesel::delete(grants::table.filter(grants::client_id.eq(id.as_str()))).execute(conn)?;
        let deleted = diesel::delete(clients::table.find(id.as_str())).execute(conn)?;
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
    Ok(updated == 1)
}
