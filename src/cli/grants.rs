//! `tessera grant ...`: listing and revoking grants.

use anyhow::bail;
use serde_json::json;

use super::{GrantCommand, migrated, parse_username};
use crate::config::Settings;
use crate::domain::{format_date, now};
use crate::storage::Db;

pub(super) async fn run_grant(command: GrantCommand, settings: &Settings) -> anyhow::Result<()> {
    use crate::domain::ClientId;
    use crate::storage::{grants, users};
    let db = migrated(settings).await?;
    let user_id = |db: Db, name: String| async move {
        let username = parse_username(&name)?;
        let user = db
            .run(move |conn| users::find_by_username(conn, &username))
            .await?;
        user.map(|u| u.id)
            .ok_or_else(|| anyhow::anyhow!("no user named `{name}`"))
    };
    let client_id = |raw: &str| {
        ClientId::parse(raw).ok_or_else(|| anyhow::anyhow!("`{raw}` is not a client id"))
    };
    match command {
        GrantCommand::List {
            user,
            client,
            all,
            json,
        } => {
            let user = match user {
                Some(name) => Some(user_id(db.clone(), name).await?),
                None => None,
            };
            let client = client.as_deref().map(client_id).transpose()?;
            let listed = db
                .run(move |conn| grants::list(conn, user.as_ref(), client.as_ref(), all, 1000))
                .await?;
            if json {
                let rows: Vec<_> = listed
                    .iter()
                    .map(|g| {
                        json!({
                            "grant_id": g.id,
                            "user_id": g.user_id.as_ref().map(|u| u.as_str()),
                            "client_id": g.client_id.as_str(),
                            "scope": g.scope.to_string(),
                            "created_at": g.created_at,
                            "last_used_at": g.last_used_at,
                            "revoked_at": g.revoked_at,
                            "revoked_reason": g.revoked_reason,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let rows: Vec<Vec<String>> = listed
                    .iter()
                    .map(|g| {
                        let status = if g.is_active() { "active" } else { "revoked" };
                        vec![
                            g.id.to_string(),
                            g.client_id.to_string(),
                            format_date(g.created_at),
                            status.to_owned(),
                            g.scope.to_string(),
                        ]
                    })
                    .collect();
                super::table::print(
                    &["GRANT", "CLIENT", "CREATED", "STATUS", "SCOPE"],
                    &rows,
                    "no grants",
                );
            }
            Ok(())
        }
        GrantCommand::Revoke {
            grant,
            user,
            client,
        } => {
            let revoked = match (grant, user, client) {
                (Some(grant), _, _) => {
                    let found = db
                        .run(move |conn| {
                            grants::revoke(conn, &grant, "operator (tessera grant revoke)", now())
                        })
                        .await?;
                    usize::from(found)
                }
                (None, Some(name), _) => {
                    let id = user_id(db.clone(), name).await?;
                    db.run(move |conn| {
                        grants::revoke_for_user(
                            conn,
                            &id,
                            "operator (tessera grant revoke --user)",
                            now(),
                        )
                    })
                    .await?
                }
                (None, None, Some(raw)) => {
                    let id = client_id(&raw)?;
                    db.run(move |conn| {
                        grants::revoke_for_client(
                            conn,
                            &id,
                            "operator (tessera grant revoke --client)",
                            now(),
                        )
                    })
                    .await?
                }
                (None, None, None) => bail!("name --grant, --user or --client"),
            };
            println!("revoked {revoked} grant(s); every token issued under them is now inactive");
            Ok(())
        }
    }
}
