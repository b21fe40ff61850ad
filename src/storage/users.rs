//! Queries on `users`.

use diesel::prelude::*;

use super::models::UserRow;
use super::schema::{sessions, users};
use super::{DbConnection, StorageError};
use crate::domain::{NewAccount, UnixTime, User, UserId, Username};

/// Stores a new user with an already computed password hash.
pub fn insert(
    conn: &mut DbConnection,
    account: &NewAccount,
    password_hash: String,
    now: UnixTime,
) -> Result<User, StorageError> {
    let row = UserRow {
        id: UserId::generate().as_str().to_owned(),
        username: account.username.as_str().to_owned(),
        email: account.email.as_ref().map(|e| e.as_str().to_owned()),
        display_name: account.display_name.as_ref().map(|d| d.as_str().to_owned()),
        password_hash,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    match diesel::insert_into(users::table).values(&row).execute(conn) {
        Ok(_) => Ok(row.into_user()),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(StorageError::Duplicate("username")),
        Err(e) => Err(e.into()),
    }
}

/// The user and their password hash, for sign-in.
pub fn find_with_hash(
    conn: &mut DbConnection,
    username: &Username,
) -> Result<Option<(User, String)>, StorageError> {
    let row = users::table
        .filter(users::username.eq(username.as_str()))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(|row| {
        let hash = row.password_hash.clone();
        (row.into_user(), hash)
    }))
}

pub fn find_by_username(
    conn: &mut DbConnection,
    username: &Username,
) -> Result<Option<User>, StorageError> {
    Ok(find_with_hash(conn, username)?.map(|(user, _)| user))
}

pub fn find_by_id(conn: &mut DbConnection, id: &UserId) -> Result<Option<User>, StorageError> {
    Ok(users::table
        .find(id.as_str())
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .map(UserRow::into_user))
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<User>, StorageError> {
    let rows = users::table
        .order(users::username.asc())
        .select(UserRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(UserRow::into_user).collect())
}

/// Disables or enables a user; disabling also ends every session of theirs
/// (LG-08). Returns whether the user exists.
pub fn set_disabled(
    conn: &mut DbConnection,
    username: &Username,
    disabled: bool,
    now: UnixTime,
) -> Result<Option<User>, StorageError> {
    conn.transaction(|conn| {
        let updated = diesel::update(users::table.filter(users::username.eq(username.as_str())))
            .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
            .execute(conn)?;
        if updated == 0 {
            return Ok(None);
        }
        let user = find_by_username(conn, username)?;
        if disabled && let Some(user) = &user {
            diesel::delete(sessions::table.filter(sessions::user_id.eq(user.id.as_str())))
                .execute(conn)?;
            // Browsers known to the account start as strangers again.
            super::known_browsers::delete_for_user(conn, &user.id)?;
            // LG-08: every app the user connected loses its tokens too.
            super::grants::revoke_for_user(conn, &user.id, "user disabled", now)?;
        }
        if let Some(user) = &user {
            let event = if disabled {
                "user.disabled"
            } else {
                "user.enabled"
            };
            super::audit::record(conn, event, Some(user.id.as_str()), None, None, now)?;
        }
        Ok(user)
    })
}

/// Replaces a password hash and ends the user's sessions except `keep` (the
/// session that made the change, if any); with `revoke_grants`, every app
/// the user connected loses its tokens. Returns whether the user exists.
pub fn update_password_hash(
    conn: &mut DbConnection,
    username: &Username,
    password_hash: String,
    keep_session: Option<&str>,
    revoke_grants: bool,
    now: UnixTime,
) -> Result<Option<User>, StorageError> {
    conn.transaction(|conn| {
        let updated = diesel::update(users::table.filter(users::username.eq(username.as_str())))
            .set((
                users::password_hash.eq(password_hash),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;
        if updated == 0 {
            return Ok(None);
        }
        let user = find_by_username(conn, username)?;
        if let Some(user) = &user {
            let of_user = sessions::table.filter(sessions::user_id.eq(user.id.as_str()));
            match keep_session {
                Some(keep) => {
                    diesel::delete(of_user.filter(sessions::id_hash.ne(keep))).execute(conn)?
                }
                None => diesel::delete(of_user).execute(conn)?,
            };
            // A new password ends every browser's standing: known-browser
            // tokens made with the old one must not buy guesses at the new.
            super::known_browsers::delete_for_user(conn, &user.id)?;
            if revoke_grants {
                super::grants::revoke_for_user(conn, &user.id, "password changed", now)?;
            }
            super::audit::record(
                conn,
                "user.password_set",
                Some(user.id.as_str()),
                None,
                None,
                now,
            )?;
        }
        Ok(user)
    })
}
