//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6): the
//! code is consumed atomically, bound to its client, redirect URI and PKCE
//! challenge; a replay revokes the grant.

use std::collections::HashMap;

use super::{
    TokenEvents, TokenResponse,
    flow::{Flow, internal, run_flow},
    invalid_grant,
};
use crate::config::Settings;
use crate::domain::{Client, ClientId, GrantType, TokenDigest, UnixTime};
use crate::oauth::error::OAuthError;
use crate::oauth::primitives::{FlowContext, FlowRequest, oxide_grant};
use crate::oauth::{Params, keys::KeySet};
use crate::storage::codes::{self, CodeRecord, Consumed};
use crate::storage::{DbConnection, grants, users};

/// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6).
#[expect(
    clippy::too_many_arguments,
    reason = "one grant's inputs, from exchange() only"
)]
pub(super) fn exchange_code(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    client: Client,
    secret: Option<String>,
    params: &Params,
    now: UnixTime,
    events: &mut TokenEvents,
) -> Result<TokenResponse, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::InvalidRequest("code is missing".to_owned()))?;
    let digest = TokenDigest::of(code.as_bytes());
    let Some((record, _)) = codes::find(conn, &digest)? else {
        return Err(invalid_grant());
    };
    match check_binding(&record, &client.id, params, now) {
        Binding::Holds => {}
        Binding::Refused(error) => return Err(error),
        Binding::WrongVerifier(error) => {
            // PK-04: a wrong verifier burns the code.
            let _ = codes::consume(conn, &digest, now)?;
            return Err(error);
        }
    }
    // The grant and the user must be live before the code is spent. Checked
    // first, so that a concurrent replay revoking the grant after this
    // request won the code cannot turn the winner's answer into an error:
    // of parallel redemptions exactly one succeeds (CD-03), and the tokens it
    // got die with the grant the replay revoked.
    let grant = grants::find(conn, &record.grant_id)?
        .filter(grants::Grant::is_active)
        .ok_or_else(invalid_grant)?;
    let user_active = users::find_by_id(conn, &record.user_id)?.is_some_and(|u| !u.disabled);
    if !user_active {
        return Err(invalid_grant());
    }
    // AU-02, ST-01: the audience is settled before the code is spent, so a
    // bad `resource` leaves the code usable. It narrows what the
    // authorization granted, never widens or changes it.
    let audience = crate::oauth::resolve_audience(
        settings,
        &record.scope,
        params.all("resource"),
        &record.resource,
    )?;
    let issue_refresh_token = client.may_use(GrantType::RefreshToken)
        && (record.scope.contains("offline_access") || client.always_issue_refresh_token);
    let context = FlowContext {
        redirect_uri: Some(record.redirect_uri.clone()),
        redirect_uri_sent: record.redirect_uri_sent,
        scope: record.scope.clone(),
        refresh_scope: record.scope.clone(),
        grant_id: grant.id.clone(),
        subject: record.user_id.as_str().to_owned(),
        user_id: Some(record.user_id.as_str().to_owned()),
        code_challenge: None,
        nonce: record.nonce.clone(),
        auth_time: record.auth_time,
        consumed_code: None,
        presented_refresh: None,
        issue_refresh_token,
        refresh_absolute_expires_at: now + settings.tokens.refresh_token_absolute_ttl_secs,
        audience,
        // The refresh-token family keeps every resource granted at
        // authorization, whatever this exchange narrowed its token to.
        resource: record.resource.clone(),
        now,
        client,
    };
    let oxide =
        oxide_grant(&context, record.expires_at).map_err(|_| internal("the code's grant"))?;
    let context = FlowContext {
        consumed_code: Some((code.to_owned(), oxide)),
        ..context
    };
    let body = HashMap::from([
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code.to_owned()),
        ("redirect_uri".to_owned(), record.redirect_uri.clone()),
    ]);
    let request = FlowRequest::token_request(body, &context.client, secret.as_deref());
    // ST-01: spending the code and issuing from it are one transaction, so
    // a failure while issuing leaves the code unspent. A replay's revocation
    // is a refusal whose writes stand.
    grants::all_or_nothing::<_, OAuthError>(conn, |conn| {
        // CD-01, CD-03: one atomic consume; a replay that is otherwise valid
        // revokes everything issued from the code's grant.
        match codes::consume(conn, &digest, now)? {
            Consumed::Fresh(_) => {}
            Consumed::AlreadyUsed(record) => {
                if grants::revoke(conn, &record.grant_id, "authorization code replayed", now)? {
                    events.code_replay_revoked = true;
                    tracing::warn!(client.id = %context.client.id, grant.id = %record.grant_id, "authorization code replayed: grant revoked");
                }
                return Ok(Err(invalid_grant()));
            }
            Consumed::Invalid => return Ok(Err(invalid_grant())),
        }
        grants::touch(conn, &grant.id, now)?;
        let response = run_flow(
            Some(conn),
            settings,
            keys,
            &context,
            request,
            Flow::AccessToken,
        )?;
        Ok(Ok(response))
    })?
}

/// What the code's bindings say about this request.
#[derive(Debug)]
enum Binding {
    /// Same client, in time, same redirect URI, the right PKCE verifier.
    Holds,
    /// Refused; the code stays as it is.
    Refused(OAuthError),
    /// A verifier that does not match: refused, and the code is burnt.
    WrongVerifier(OAuthError),
}

/// The pure checks of a code redemption (CD-04, CD-05, PK-03..PK-05): no
/// storage, so each can be tested on its own.
fn check_binding(
    record: &CodeRecord,
    client: &ClientId,
    params: &Params,
    now: UnixTime,
) -> Binding {
    // CD-04: a code is bound to the client it was issued to.
    if record.client_id != *client || record.expires_at <= now {
        return Binding::Refused(invalid_grant());
    }
    // CD-05: the redirect URI must repeat the authorization request's.
    match params.get("redirect_uri") {
        Some(sent) if sent == record.redirect_uri => {}
        None if !record.redirect_uri_sent => {}
        _ => {
            return Binding::Refused(OAuthError::InvalidGrant(
                "redirect_uri does not match the authorization request".to_owned(),
            ));
        }
    }
    // PK-03..PK-05.
    match (&record.code_challenge, params.get("code_verifier")) {
        (Some(_), None) => Binding::Refused(OAuthError::InvalidGrant(
            "code_verifier is missing".to_owned(),
        )),
        (None, Some(_)) => Binding::Refused(OAuthError::InvalidRequest(
            "code_verifier sent for a code issued without PKCE".to_owned(),
        )),
        (Some(challenge), Some(verifier)) => match challenge.verify(verifier) {
            Err(malformed) => Binding::Refused(OAuthError::InvalidGrant(malformed.to_string())),
            Ok(false) => Binding::WrongVerifier(OAuthError::InvalidGrant(
                "code_verifier does not match the code_challenge".to_owned(),
            )),
            Ok(true) => Binding::Holds,
        },
        (None, None) => Binding::Holds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PkceChallenge, ScopeSet, UserId};

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    // RFC 7636 Appendix B.
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn record() -> CodeRecord {
        CodeRecord {
            grant_id: "g1".to_owned(),
            client_id: ClientId::from_stored("c1".to_owned()),
            user_id: UserId::from_stored("u1".to_owned()),
            redirect_uri: "https://client.example/cb".to_owned(),
            redirect_uri_sent: true,
            scope: ScopeSet::default(),
            code_challenge: Some(PkceChallenge::parse(CHALLENGE, Some("S256")).expect("challenge")),
            nonce: None,
            auth_time: 0,
            expires_at: 1_000,
            resource: Vec::new(),
        }
    }

    #[test]
    fn each_binding_of_a_code_is_checked() {
        let good =
            format!("redirect_uri=https%3A%2F%2Fclient.example%2Fcb&code_verifier={VERIFIER}");
        let no_pkce = CodeRecord {
            code_challenge: None,
            ..record()
        };
        let no_redirect_sent = CodeRecord {
            redirect_uri_sent: false,
            ..no_pkce.clone()
        };
        let cases: Vec<(&str, CodeRecord, &str, String, UnixTime, &str)> = vec![
            (
                "all bindings hold",
                record(),
                "c1",
                good.clone(),
                999,
                "holds",
            ),
            (
                "another client (CD-04)",
                record(),
                "c2",
                good.clone(),
                999,
                "invalid_grant",
            ),
            (
                "expired",
                record(),
                "c1",
                good.clone(),
                1_000,
                "invalid_grant",
            ),
            (
                "redirect URI differs (CD-05)",
                record(),
                "c1",
                format!("redirect_uri=https%3A%2F%2Fclient.example%2Fcb2&code_verifier={VERIFIER}"),
                999,
                "invalid_grant",
            ),
            (
                "redirect URI left out though it was sent",
                record(),
                "c1",
                format!("code_verifier={VERIFIER}"),
                999,
                "invalid_grant",
            ),
            (
                "redirect URI not sent either time",
                no_redirect_sent,
                "c1",
                String::new(),
                999,
                "holds",
            ),
            (
                "verifier missing (PK-03)",
                record(),
                "c1",
                "redirect_uri=https%3A%2F%2Fclient.example%2Fcb".to_owned(),
                999,
                "invalid_grant",
            ),
            (
                "verifier without PKCE (PK-05)",
                no_pkce.clone(),
                "c1",
                good.clone(),
                999,
                "invalid_request",
            ),
            (
                "no PKCE, no verifier",
                no_pkce,
                "c1",
                "redirect_uri=https%3A%2F%2Fclient.example%2Fcb".to_owned(),
                999,
                "holds",
            ),
            (
                "wrong verifier burns the code (PK-04)",
                record(),
                "c1",
                format!(
                    "redirect_uri=https%3A%2F%2Fclient.example%2Fcb&code_verifier={}",
                    "a".repeat(43)
                ),
                999,
                "burn",
            ),
            (
                "malformed verifier",
                record(),
                "c1",
                "redirect_uri=https%3A%2F%2Fclient.example%2Fcb&code_verifier=short".to_owned(),
                999,
                "invalid_grant",
            ),
        ];
        for (what, record, client, body, now, expected) in cases {
            let params = Params::parse_form(&body).expect("form");
            let got = match check_binding(
                &record,
                &ClientId::from_stored(client.to_owned()),
                &params,
                now,
            ) {
                Binding::Holds => "holds".to_owned(),
                Binding::WrongVerifier(_) => "burn".to_owned(),
                Binding::Refused(error) => error.code().to_owned(),
            };
            assert_eq!(got, expected, "{what}");
        }
    }
}
