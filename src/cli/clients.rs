//! `tessera client ...`: registering and managing OAuth clients.

use anyhow::bail;
use serde_json::json;

use super::{ClientCommand, migrated};
use crate::config::Settings;
use crate::domain::{format_time, now};

pub(super) async fn run_client(command: ClientCommand, settings: Settings) -> anyhow::Result<()> {
    use crate::domain::ClientId;
    use crate::oauth::clients::{self as registry, ClientRegistration};
    use crate::storage::clients;
    let db = migrated(&settings).await?;
    let settings = std::sync::Arc::new(settings);
    let parse_id = |raw: &str| {
        ClientId::parse(raw).ok_or_else(|| anyhow::anyhow!("`{raw}` is not a client id"))
    };
    match command {
        ClientCommand::Add {
            name,
            redirect_uris,
            scopes,
            public,
            grant_types,
            homepage,
            first_party,
            always_refresh,
            resource_server,
            post_logout_redirect_uris,
            json,
        } => {
            if let Some(audience) = &resource_server {
                warn_if_no_api_owns(&settings, audience);
            }
            let registration = ClientRegistration {
                name,
                public,
                redirect_uris,
                scopes,
                grant_types,
                homepage_uri: homepage,
                first_party,
                always_issue_refresh_token: always_refresh,
                owner_user_id: None,
                introspection_audience: resource_server,
                post_logout_redirect_uris,
                ..ClientRegistration::default()
            };
            let registered = db
                .run(move |conn| registry::register(conn, &settings, &registration, now()))
                .await
                .map_err(|e| anyhow::anyhow!("the client was not registered: {e}"))?;
            let secret = registered.secret.as_ref().map(|s| s.expose().to_owned());
            print_client(&registered.client, secret.as_deref(), json)?;
            if secret.is_some() && !json {
                println!(
                    "\nThe secret is shown only now. Store it safely; tessera keeps only its hash."
                );
            }
            Ok(())
        }
        ClientCommand::List { json } => {
            let all = db.run(clients::list).await?;
            if json {
                let rows: Vec<_> = all.iter().map(|c| client_json(c, None)).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|client| {
                        vec![
                            client.id.to_string(),
                            client.client_type.as_str().to_owned(),
                            if client.verified { "yes" } else { "no" }.to_owned(),
                            client.name.clone(),
                        ]
                    })
                    .collect();
                super::table::print(
                    &["CLIENT ID", "TYPE", "VERIFIED", "NAME"],
                    &rows,
                    "no clients yet; register one with `tessera client add --name NAME ...`",
                );
            }
            Ok(())
        }
        ClientCommand::Show { id, json } => {
            let id = parse_id(&id)?;
            let client = db
                .run(move |conn| clients::find(conn, &id))
                .await?
                .ok_or_else(|| anyhow::anyhow!("no such client"))?;
            print_client(&client, None, json)
        }
        ClientCommand::RotateSecret {
            id,
            revoke_previous,
            json,
        } => {
            let id = parse_id(&id)?;
            let lookup = id.clone();
            let overlap = if revoke_previous {
                0
            } else {
                settings.registration.secret_rotation_overlap_secs
            };
            let secret = db
                .run(move |conn| registry::rotate_secret(conn, &lookup, overlap, now()))
                .await
                .map_err(|e| anyhow::anyhow!("the secret was not rotated: {e}"))?
                .ok_or_else(|| anyhow::anyhow!("no such client"))?;
            if json {
                println!(
                    "{}",
                    json!({
                        "client_id": id.as_str(),
                        "client_secret": secret.expose(),
                        "previous_secret_valid_for_secs": overlap,
                    })
                );
            } else {
                println!("client_secret: {}", secret.expose());
                println!(
                    "\nThe secret is shown only now. Store it safely; tessera keeps only its hash."
                );
                if overlap > 0 {
                    println!(
                        "The previous secret keeps working for {} so deployments can switch over.\n\
                         If it leaked, rotate again with --revoke-previous to stop it at once.",
                        describe_duration(overlap)
                    );
                } else {
                    println!(
                        "The previous secret no longer works (running servers may accept it for up to \
                         database.cache_ttl_ms, at most a second)."
                    );
                }
            }
            Ok(())
        }
        ClientCommand::Verify { id } => {
            let id = parse_id(&id)?;
            let found = db
                .run(move |conn| clients::set_flags(conn, &id, Some(true), None, now()))
                .await?;
            if !found {
                bail!("no such client");
            }
            println!("client verified");
            Ok(())
        }
        ClientCommand::Remove { id } => {
            let id = parse_id(&id)?;
            let found = db.run(move |conn| clients::delete(conn, &id)).await?;
            if !found {
                bail!("no such client");
            }
            println!("client removed; its grants and tokens are revoked");
            Ok(())
        }
    }
}

fn client_json(client: &crate::domain::Client, secret: Option<&str>) -> serde_json::Value {
    let mut value = json!({
        "client_id": client.id.as_str(),
        "client_name": client.name,
        "client_type": client.client_type.as_str(),
        "redirect_uris": client.redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "scope": client.allowed_scopes.to_string(),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "token_endpoint_auth_method": client.auth_method().as_str(),
        "post_logout_redirect_uris": client
            .post_logout_redirect_uris
            .iter()
            .map(|u| u.as_str())
            .collect::<Vec<_>>(),
        "resource_server_audience": client.introspection_audience,
        "client_uri": client.homepage_uri,
        "logo_uri": client.logo_uri,
        "policy_uri": client.policy_uri,
        "tos_uri": client.tos_uri,
        "verified": client.verified,
        "first_party": client.first_party,
        "always_issue_refresh_token": client.always_issue_refresh_token,
        "disabled": client.disabled,
        "created_at": client.created_at,
    });
    if let Some(secret) = secret {
        value["client_secret"] = json!(secret);
    }
    value
}

fn print_client(
    client: &crate::domain::Client,
    secret: Option<&str>,
    as_json: bool,
) -> anyhow::Result<()> {
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&client_json(client, secret))?
        );
        return Ok(());
    }
    let mut fields: Vec<(&str, String)> = vec![("client_id", client.id.to_string())];
    if let Some(secret) = secret {
        fields.push(("client_secret", secret.to_owned()));
    }
    let yes_no = |flag: bool| if flag { "yes" } else { "no" }.to_owned();
    fields.push(("name", client.name.clone()));
    fields.push(("type", client.client_type.as_str().to_owned()));
    fields.push(("auth method", client.auth_method().as_str().to_owned()));
    fields.push(("scopes", client.allowed_scopes.to_string()));
    let grants: Vec<_> = client.grant_types.iter().map(|g| g.as_str()).collect();
    fields.push(("grant types", grants.join(" ")));
    for uri in &client.redirect_uris {
        fields.push(("redirect URI", uri.to_string()));
    }
    for uri in &client.post_logout_redirect_uris {
        fields.push(("post-logout URI", uri.to_string()));
    }
    if let Some(audience) = &client.introspection_audience {
        fields.push(("resource server", audience.clone()));
    }
    for (label, value) in [
        ("homepage", &client.homepage_uri),
        ("logo", &client.logo_uri),
        ("privacy policy", &client.policy_uri),
        ("terms", &client.tos_uri),
    ] {
        if let Some(value) = value {
            fields.push((label, value.clone()));
        }
    }
    fields.push(("verified", yes_no(client.verified)));
    fields.push(("first party", yes_no(client.first_party)));
    fields.push(("always refresh", yes_no(client.always_issue_refresh_token)));
    if client.disabled {
        fields.push(("disabled", "yes".to_owned()));
    }
    fields.push(("created", format!("{} UTC", format_time(client.created_at))));
    let width = fields
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0)
        + 1;
    for (label, value) in fields {
        println!("{:<width$} {value}", format!("{label}:"), width = width);
    }
    Ok(())
}

/// "24 hours", "90 minutes", "45 seconds": an overlap as people say it.
fn describe_duration(secs: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs % 86_400 == 0 && secs >= 86_400 * 2 {
        plural(secs / 86_400, "day")
    } else if secs % 3_600 == 0 {
        plural(secs / 3_600, "hour")
    } else if secs % 60 == 0 {
        plural(secs / 60, "minute")
    } else {
        plural(secs, "second")
    }
}

/// A resource server sees a token as active only when the token's `aud`
/// names it, and tokens carry an API's audience only for scopes an `[[apis]]`
/// entry gives that API. Without one, every user token looks inactive to it:
/// say so while the operator is still at the keyboard.
fn warn_if_no_api_owns(settings: &Settings, audience: &str) {
    if audience == settings.default_audience()
        || settings.apis.iter().any(|api| api.audience == audience)
    {
        return;
    }
    eprintln!(
        "warning: no [[apis]] entry has audience `{audience}`, so no access token will carry it \
         and this resource server will see every token as inactive.\n\
         Declare the API and the scopes it owns in the configuration, for example:\n\n\
         [[apis]]\n\
         audience = \"{audience}\"\n\
         scopes = [\"notes:read\"]\n\
         [[scopes]]\n\
         name = \"notes:read\"\n\
         description = \"Read your notes\"\n\n\
         (see docs/clients.md, \"Resource servers\")"
    );
}
