//! `tessera user ...`: accounts from the command line. Passwords only ever
//! come from standard input.

use std::io::BufRead as _;

use anyhow::{Context as _, bail};
use serde_json::json;

use super::{UserCommand, migrated};
use crate::auth::{self, AuthError};
use crate::config::Settings;
use crate::domain::{NewAccount, Password, User, Username, format_date};

pub(super) async fn run_user(command: UserCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = migrated(settings).await?;
    match command {
        UserCommand::Add {
            username,
            email,
            display_name,
            password: _,
        } => {
            let password = read_password()?;
            let account = NewAccount::parse(
                &username,
                email.as_deref().unwrap_or(""),
                display_name.as_deref().unwrap_or(""),
                password,
                None,
                settings.accounts.min_password_length,
            )
            .map_err(|errors| {
                let reasons: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect();
                anyhow::anyhow!("the user was not created. {}", reasons.join(" "))
            })?;
            let user = auth::admin::add_user(&db, account)
                .await
                .map_err(|e| match e {
                    AuthError::UsernameTaken => {
                        anyhow::anyhow!("the username `{username}` is taken")
                    }
                    other => anyhow::Error::from(other),
                })?;
            println!("created user {} ({})", user.username, user.id);
            Ok(())
        }
        UserCommand::List { json } => {
            let users = auth::admin::list_users(&db).await?;
            if json {
                let rows: Vec<_> = users.iter().map(user_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|user| {
                        let status = if user.disabled { "disabled" } else { "active" };
                        vec![
                            user.username.to_string(),
                            status.to_owned(),
                            format_date(user.created_at),
                            user.id.to_string(),
                        ]
                    })
                    .collect();
                super::table::print(
                    &["USERNAME", "STATUS", "CREATED", "ID"],
                    &rows,
                    "no users yet; add one with `tessera user add NAME --password-stdin`",
                );
            }
            Ok(())
        }
        UserCommand::Disable { username } => {
            let name = parse_username(&username)?;
            found(auth::admin::set_disabled(&db, name, true).await?, &username)?;
            println!("disabled {username}; their sessions have ended");
            Ok(())
        }
        UserCommand::Enable { username } => {
            let name = parse_username(&username)?;
            found(
                auth::admin::set_disabled(&db, name, false).await?,
                &username,
            )?;
            println!("enabled {username}");
            Ok(())
        }
        UserCommand::SetPassword {
            username,
            password: _,
        } => {
            let name = parse_username(&username)?;
            let raw = read_password()?;
            let password = Password::parse(raw, settings.accounts.min_password_length)
                .map_err(|e| anyhow::anyhow!("the password was not changed: {}", e.message))?;
            let revoke = settings.accounts.password_change_revokes_grants;
            found(
                auth::admin::set_password(&db, name, password, revoke).await?,
                &username,
            )?;
            if revoke {
                println!(
                    "password changed for {username}; their sessions and app authorizations have ended"
                );
            } else {
                println!("password changed for {username}; their sessions have ended");
            }
            Ok(())
        }
    }
}

fn found(user: Option<User>, username: &str) -> anyhow::Result<User> {
    match user {
        Some(user) => Ok(user),
        None => bail!("no user named `{username}`"),
    }
}

/// The first line of standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!(
            "no password on standard input (for example: printf '%s\\n' \"$PASSWORD\" | tessera user add NAME --password-stdin)"
        );
    }
    Ok(password)
}

fn user_json(user: &User) -> serde_json::Value {
    json!({
        "id": user.id.as_str(),
        "username": user.username.as_str(),
        "email": user.email.as_ref().map(|e| e.as_str()),
        "display_name": user.display_name.as_ref().map(|d| d.as_str()),
        "disabled": user.disabled,
        "created_at": user.created_at,
    })
}

pub(super) fn parse_username(raw: &str) -> anyhow::Result<Username> {
    Username::parse(raw)
        .map_err(|e| anyhow::anyhow!("`{raw}` is not a valid username: {}", e.message))
}
