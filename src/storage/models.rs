//! Row structs and their conversions to domain types. They stay inside
//! `storage`.

use diesel::prelude::*;

use super::schema::{sessions, throttles, users};
use crate::domain::{DisplayName, Email, User, UserId, Username};

#[derive(Queryable, Selectable, Insertable, Debug)]
#[diesel(table_name = users)]
pub(super) struct UserRow {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRow {
    pub fn into_user(self) -> User {
        User {
            id: UserId::from_stored(self.id),
            username: Username::from_stored(self.username),
            email: self.email.map(Email::from_stored),
            display_name: self.display_name.map(DisplayName::from_stored),
            disabled: self.disabled,
            created_at: self.created_at,
        }
    }
}

#[derive(Queryable, Selectable, Insertable, Debug)]
#[diesel(table_name = sessions)]
pub(super) struct SessionRow {
    pub id_hash: String,
    pub user_id: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Debug)]
#[diesel(table_name = throttles)]
pub(super) struct ThrottleRow {
    pub key: String,
    pub failures: i32,
    pub window_started_at: i64,
    pub last_failure_at: i64,
}
