//! Bulk rows for the load benchmark's cost-growth runs (`tessera diagnose
//! seed`): many grants of one client, each with one refresh token whose
//! plaintext is `seed-rt-<n>`, so the benchmark can present them.

use diesel::prelude::*;

use super::models::{GrantRow, RefreshTokenRow};
use super::schema::{grants, refresh_tokens};
use super::{DbConnection, StorageError};
use crate::domain::{ClientId, TokenDigest, UnixTime};

/// Rows per INSERT statement: 9 columns each stays far below SQLite's and
/// PostgreSQL's bound-parameter limits.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Inserts grants `first..first + count` (ids `seed-grant-<n>`) of
/// `client_id` and their refresh tokens, one transaction per `batch` rows.
pub fn insert_grants(
    conn: &mut DbConnection,
    client_id: &ClientId,
    first: u64,
    count: u64,
    now: UnixTime,
) -> Result<(), StorageError> {
    let end = first + count;
    let mut start = first;
    while start < end {
        let stop = (start + ROWS_PER_STATEMENT as u64 * 10).min(end);
        conn.transaction::<_, StorageError, _>(|conn| {
            let mut n = start;
            while n < stop {
                let chunk_end = (n + ROWS_PER_STATEMENT as u64).min(stop);
                let grant_rows: Vec<GrantRow> = (n..chunk_end)
                    .map(|i| GrantRow {
                        id: format!("seed-grant-{i}"),
                        user_id: None,
                        client_id: client_id.as_str().to_owned(),
                        scope: "profile".to_owned(),
                        created_at: now,
                        last_used_at: now,
                        revoked_at: None,
                        revoked_reason: None,
                    })
                    .collect();
                let token_rows: Vec<RefreshTokenRow> = (n..chunk_end)
                    .map(|i| RefreshTokenRow {
                        token_hash: TokenDigest::of(format!("seed-rt-{i}").as_bytes())
                            .as_str()
                            .to_owned(),
                        grant_id: format!("seed-grant-{i}"),
                        client_id: client_id.as_str().to_owned(),
                        parent_hash: None,
                        scope: "profile".to_owned(),
                        created_at: now,
                        idle_expires_at: now + 30 * 86_400,
                        absolute_expires_at: now + 90 * 86_400,
                        rotated_at: None,
                        resource: None,
                        auth_time: Some(now),
                    })
                    .collect();
                // Multi-row INSERTs need the concrete backend.
                super::on_backend!(conn, |c| {
                    diesel::insert_into(grants::table)
                        .values(&grant_rows)
                        .execute(c)?;
                    diesel::insert_into(refresh_tokens::table)
                        .values(&token_rows)
                        .execute(c)?;
                });
                n = chunk_end;
            }
            Ok(())
        })?;
        start = stop;
    }
    Ok(())
}
