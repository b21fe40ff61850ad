//! Client authentication (RFC 6749 §2.3, RFC 7591 §2), one module for every
//! endpoint a client authenticates at: token, introspection, revocation
//! (and later PAR). It reads what the client presented, checks it against
//! the registration, and throttles wrong secrets per (client, address).

use base64::Engine as _;

use super::Params;
use super::error::OAuthError;
use crate::auth::throttle::lock_remaining;
use crate::config::Settings;
use crate::domain::{Client, ClientId, ClientType, TokenAuthMethod, TokenDigest, UnixTime};
use crate::storage::cache::Access;

/// Client credentials as presented, before they are checked: the id, the
/// secret if any, and the RFC 7591 method they came by. `private_key_jwt`
/// will be one more method here; the grants never look inside.
#[derive(Clone)]
pub struct PresentedClient {
    pub id: String,
    pub secret: Option<String>,
    pub method: TokenAuthMethod,
}

/// Never prints the secret.
impl std::fmt::Debug for PresentedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedClient")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("method", &self.method.as_str())
            .finish()
    }
}

/// Reads client credentials from `Authorization: Basic` or the body
/// (`client_secret_basic`, `client_secret_post`, or `client_id` alone for
/// public clients). Both at once is `invalid_request` (CA-02); a malformed
/// Basic header is `invalid_client` (CA-05).
pub fn presented_client(
    authorization: Option<&str>,
    params: &Params,
) -> Result<Option<PresentedClient>, OAuthError> {
    let bad_basic = || {
        OAuthError::InvalidClient(
            "the Authorization header is not valid Basic credentials".to_owned(),
        )
    };
    if params.is_repeated("client_id") || params.is_repeated("client_secret") {
        return Err(OAuthError::InvalidRequest(
            "client credentials are repeated".to_owned(),
        ));
    }
    if let Some(header) = authorization {
        let Some(encoded) = header
            .get(..6)
            .filter(|scheme| scheme.eq_ignore_ascii_case("basic "))
            .map(|_| header[6..].trim())
        else {
            return Err(bad_basic());
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| bad_basic())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad_basic())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad_basic)?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded (Appendix B).
        let decode = |part: &str| {
            url::form_urlencoded::parse(format!("x={part}").as_bytes())
                .next()
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default()
        };
        let (id, secret) = (decode(id), decode(secret));
        if id.is_empty() {
            return Err(bad_basic());
        }
        if params.get("client_secret").is_some() {
            return Err(OAuthError::InvalidRequest(
                "the client authenticated twice (Authorization header and client_secret)"
                    .to_owned(),
            ));
        }
        if params.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(OAuthError::InvalidRequest(
                "client_id differs from the Authorization header".to_owned(),
            ));
        }
        return Ok(Some(PresentedClient {
            id,
            secret: Some(secret),
            method: TokenAuthMethod::ClientSecretBasic,
        }));
    }
    match (params.get("client_id"), params.get("client_secret")) {
        (Some(id), secret) => Ok(Some(PresentedClient {
            id: id.to_owned(),
            secret: secret.map(str::to_owned),
            method: if secret.is_some() {
                TokenAuthMethod::ClientSecretPost
            } else {
                TokenAuthMethod::None
            },
        })),
        (None, Some(_)) => Err(OAuthError::InvalidRequest(
            "client_secret without client_id".to_owned(),
        )),
        (None, None) => Ok(None),
    }
}

/// Failures on a client's secret from one source address before that
/// address is locked out for a while (CA-07).
const CLIENT_MAX_FAILURES: u32 = 10;

/// The failure counter of `client` as seen from `source` (the address
/// `http::browser::client_ip` gives). Per (client, address), not per client:
/// `client_id`s are public, so a per-client counter let anyone lock the
/// owner out (review F4).
fn throttle_key(client: &ClientId, source: &str) -> String {
    // IPv6 by its /64, like every other throttle key.
    format!(
        "client:{client}:{}",
        crate::auth::throttle::address_key(source)
    )
}

/// Authenticates the client (CA-01..CA-04, CA-07). Unknown clients and
/// wrong secrets give the same answer; the digest is computed either way.
///
/// Throttling (CA-07): wrong secrets count per (client, source address).
/// While an address is locked it gets 429 whatever it sends, so a lock
/// never tells a guesser whether a guess was right; correct secrets are
/// never counted, so the owner's own retries do not lengthen a lock; and
/// no other address is affected, so strangers cannot lock the owner out.
/// With secrets of at least 256 bits, the lock only makes guessing costlier.
pub fn authenticate(
    access: &mut Access<'_>,
    settings: &Settings,
    presented: Option<PresentedClient>,
    source: &str,
    now: UnixTime,
) -> Result<Client, OAuthError> {
    let failed = || OAuthError::InvalidClient("client authentication failed".to_owned());
    let Some(presented) = presented else {
        return Err(OAuthError::InvalidClient(
            "the request does not identify the client".to_owned(),
        ));
    };
    let digest = TokenDigest::of(presented.secret.as_deref().unwrap_or("").as_bytes());
    let Some(id) = ClientId::parse(&presented.id) else {
        return Err(failed());
    };
    let Some(client) = access.client(&id)?.filter(|c| !c.disabled) else {
        return Err(failed());
    };
    let authenticated = match (client.client_type, &presented.secret, &client.secret_hash) {
        (ClientType::Public, None, _) => true,
        (ClientType::Confidential, Some(_), Some(_)) => client.secret_matches(digest.as_str(), now),
        _ => false,
    };
    let key = throttle_key(&client.id, source);
    if let Some(record) = access.throttle(&key)?
        && let Some(retry_after_secs) =
            lock_remaining(&record, CLIENT_MAX_FAILURES, &settings.throttle, now)
    {
        if !authenticated {
            access.record_failure(&key, now, now - settings.throttle.window_secs)?;
        }
        return Err(OAuthError::TooManyAttempts { retry_after_secs });
    }
    if !authenticated {
        if client.is_confidential() {
            access.record_failure(&key, now, now - settings.throttle.window_secs)?;
        }
        tracing::info!(client.id = %client.id, "client authentication failed");
        return Err(failed());
    }
    // RFC 7591 §2: a client that registered a method authenticates with that
    // one (as node-oidc-provider and Hydra insist). Said only once the secret
    // was right, so it tells a guesser nothing.
    if let Some(registered) = client.token_endpoint_auth_method
        && registered != presented.method
    {
        tracing::info!(client.id = %client.id, presented = presented.method.as_str(), "client used another authentication method than it registered");
        return Err(OAuthError::InvalidClient(format!(
            "this client is registered to authenticate with {}",
            registered.as_str()
        )));
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn form(body: &str) -> Params {
        Params::parse_form(body).expect("form")
    }

    fn basic(id: &str, secret: &str) -> String {
        let pair = format!("{id}:{secret}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    #[test]
    fn credentials_are_read_by_the_method_they_came_by() {
        use TokenAuthMethod as M;
        type Read<'a> = Option<(&'a str, Option<&'a str>, M)>;
        let cases: [(Option<String>, &str, Read<'_>); 6] = [
            (
                Some(basic("c1", "s3cret")),
                "",
                Some(("c1", Some("s3cret"), M::ClientSecretBasic)),
            ),
            // RFC 6749 §2.3.1: both parts are form-urlencoded.
            (
                Some(basic("c%3A1", "a+b%25")),
                "",
                Some(("c:1", Some("a b%"), M::ClientSecretBasic)),
            ),
            (
                Some(basic("c1", "s")),
                "client_id=c1",
                Some(("c1", Some("s"), M::ClientSecretBasic)),
            ),
            (
                None,
                "client_id=c1&client_secret=s",
                Some(("c1", Some("s"), M::ClientSecretPost)),
            ),
            (None, "client_id=c1", Some(("c1", None, M::None))),
            (None, "grant_type=client_credentials", None),
        ];
        for (header, body, expected) in cases {
            let presented = presented_client(header.as_deref(), &form(body))
                .unwrap_or_else(|e| panic!("{header:?} {body}: {e:?}"));
            let got = presented
                .as_ref()
                .map(|p| (p.id.as_str(), p.secret.as_deref(), p.method));
            assert_eq!(got, expected, "{header:?} {body}");
        }
    }

    #[test]
    fn ambiguous_or_malformed_credentials_are_refused() {
        let invalid_request = [
            (Some(basic("c1", "s")), "client_secret=s"),
            (Some(basic("c1", "s")), "client_id=c2"),
            (None, "client_secret=s"),
            (None, "client_id=c1&client_id=c2"),
            (None, "client_id=c1&client_secret=a&client_secret=b"),
        ];
        for (header, body) in invalid_request {
            let error = presented_client(header.as_deref(), &form(body)).expect_err(body);
            assert!(
                matches!(error, OAuthError::InvalidRequest(_)),
                "{header:?} {body}: {error:?}"
            );
        }
        let invalid_client = [
            "Basic !!!not-base64",
            "Basic YzE=",
            "Bearer abc",
            "Basic",
            &basic("", "s"),
        ];
        for header in invalid_client {
            let error = presented_client(Some(header), &form("")).expect_err(header);
            assert!(
                matches!(error, OAuthError::InvalidClient(_)),
                "{header}: {error:?}"
            );
        }
    }

    #[test]
    fn the_secret_never_reaches_debug_output() {
        let presented = presented_client(Some(&basic("c1", "hunter22")), &form(""))
            .expect("reads")
            .expect("present");
        let printed = format!("{presented:?}");
        assert!(!printed.contains("hunter22"), "{printed}");
        assert!(printed.contains("client_secret_basic"), "{printed}");
    }
}
