//! The libpq parameters tessera adds to a PostgreSQL URL, so that no
//! connection waits for ever: connecting, every statement and a vanished
//! peer are all bounded.

use crate::config::DatabaseSettings;

/// libpq parameters added to a PostgreSQL URL unless it sets them itself:
/// `connect_timeout` bounds connecting; `statement_timeout` (server side)
/// and `idle_in_transaction_session_timeout` bound what a slow server does;
/// TCP keepalives and `tcp_user_timeout` notice a peer that vanished. A
/// path that swallows traffic but keeps the socket open (a stalled proxy)
/// defeats all of them: `Db::run`'s own timeout covers that.
pub(super) fn parameters(settings: &DatabaseSettings) -> String {
    let mut parameters = vec![
        (
            "connect_timeout",
            settings.connect_timeout_secs.max(1).to_string(),
        ),
        ("keepalives", "1".to_owned()),
        ("keepalives_idle", "10".to_owned()),
        ("keepalives_interval", "5".to_owned()),
        ("keepalives_count", "3".to_owned()),
    ];
    if settings.query_timeout_ms > 0 {
        parameters.push(("tcp_user_timeout", settings.query_timeout_ms.to_string()));
        parameters.push((
            "options",
            format!(
                "-c statement_timeout={ms} -c idle_in_transaction_session_timeout={ms}",
                ms = settings.query_timeout_ms
            ),
        ));
    }
    parameters
        .iter()
        .map(|(key, value)| format!("{key}={}", uri_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes a libpq URI parameter value. libpq decodes `%XX` only:
/// a `+` would stay a `+`, so form encoding will not do.
fn uri_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `url` with `parameters` appended, leaving any the URL already names.
pub(super) fn with_parameters(url: &str, parameters: &str) -> String {
    let present: Vec<String> = url
        .split_once('?')
        .map(|(_, query)| {
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(key, _)| key.into_owned())
                .collect()
        })
        .unwrap_or_default();
    let missing: Vec<&str> = parameters
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            !key.is_empty() && !present.iter().any(|p| p == key)
        })
        .collect();
    if missing.is_empty() {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{}", missing.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_parameters_are_added_unless_the_url_sets_them() {
        let parameters = "connect_timeout=5&options=-c%20statement_timeout%3D5000";
        assert_eq!(
            with_parameters("postgres://u@h/db", parameters),
            "postgres://u@h/db?connect_timeout=5&options=-c%20statement_timeout%3D5000"
        );
        assert_eq!(
            with_parameters("postgres://u@h/db?connect_timeout=30", parameters),
            "postgres://u@h/db?connect_timeout=30&options=-c%20statement_timeout%3D5000",
            "the operator's own value wins"
        );
        assert_eq!(uri_encode("-c a=b"), "-c%20a%3Db");
    }
}
