//! Reading what OAuth requests carry, once, for every endpoint: the
//! back-channel form body, the `Authorization` header for client
//! authentication, and the bearer token (RFC 6750 §2.1).

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderMap};

use crate::http::error::ApiError;
use crate::oauth::Params;
use crate::oauth::error::OAuthError;

/// The token of an `Authorization: Bearer` header, or `None` when there is
/// no such header or it names another scheme. The scheme is matched without
/// regard to case (RFC 9110 §11.1) and may be followed by several spaces;
/// the token itself is not judged here: a malformed one fails verification
/// like any other bad token (`invalid_token`).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_matches(' ');
    (!token.is_empty()).then_some(token)
}

/// The form body of a back-channel request: `application/x-www-form-urlencoded`
/// and UTF-8, or `invalid_request` (IV-04).
pub fn read_form(req: &HttpRequest, body: &[u8]) -> Result<Params, ApiError> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".to_owned(),
        )
        .into());
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| OAuthError::InvalidRequest("the body is not UTF-8".to_owned()))?;
    Params::parse_form(text).map_err(|_| {
        OAuthError::InvalidRequest(
            "the body is not valid application/x-www-form-urlencoded".to_owned(),
        )
        .into()
    })
}

/// The `Authorization` header as text (an unreadable one becomes empty, which
/// client authentication then refuses).
pub fn authorization_header(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().map(str::to_owned).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{AUTHORIZATION, HeaderMap, HeaderValue};

    use super::bearer_token;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn the_scheme_is_matched_without_case_and_the_token_taken_whole() {
        for (value, expected) in [
            ("Bearer abc.def-ghi", Some("abc.def-ghi")),
            ("bearer abc", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("bEaReR   abc  ", Some("abc")),
            ("Bearer a/b+c==", Some("a/b+c==")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Bearer    ", None),
            ("Basic dXNlcjpwYXNz", None),
            ("Bearerabc", None),
            ("DPoP abc", None),
            ("", None),
        ] {
            assert_eq!(bearer_token(&with(value)), expected, "{value:?}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
