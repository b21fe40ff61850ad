//! `tessera client ...`: registering and managing OAuth clients.

use anyhow::bail;
use serde_json::json;

use super::{ClientCommand, migrated};
use crate::config::Settings;
use crate::domain::now;

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
                println!("{:<24} {:<13} {:<9} NAME", "CLIENT ID", "TYPE", "VERIFIED");
                for client in &all {
                    println!(
                        "{:<24} {:<13} {:<9} {}",
                        client.id,
                        client.client_type.as_str(),
                        if client.verified { "yes" } else { "no" },
                        client.name
                    );
                }
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
        ClientCommand::RotateSecret { id, json } => {
            let id = parse_id(&id)?;
            let lookup = id.clone();
            let overlap = settings.registration.secret_rotation_overlap_secs;
            let secret = db
                .run(move |conn| registry::rotate_secret(conn, &lookup, overlap, now()))
                .await
                .map_err(|e| anyhow::anyhow!("the secret was not rotated: {e}"))?
                .ok_or_else(|| anyhow::anyhow!("no such client"))?;
            if json {
                println!(
                    "{}",
                    json!({ "client_id": id.as_str(), "client_secret": secret.expose() })
                );
            } else {
                println!(
                    "client_secret: {}\nThe previous secret no longer works.",
                    secret.expose()
                );
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
        "token_endpoint_auth_method": if client.is_confidential() { "client_secret_basic" } else { "none" },
        "verified": client.verified,
        "first_party": client.first_party,
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
    println!("client_id:     {}", client.id);
    if let Some(secret) = secret {
        println!("client_secret: {secret}");
    }
    println!("name:          {}", client.name);
    println!("type:          {}", client.client_type.as_str());
    println!("scopes:        {}", client.allowed_scopes);
    let grants: Vec<_> = client.grant_types.iter().map(|g| g.as_str()).collect();
    println!("grant types:   {}", grants.join(" "));
    for uri in &client.redirect_uris {
        println!("redirect URI:  {uri}");
    }
    println!(
        "verified:      {}",
        if client.verified { "yes" } else { "no" }
    );
    Ok(())
}
