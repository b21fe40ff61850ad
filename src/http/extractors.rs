//! Reading what OAuth requests carry in their headers, once, for every
//! endpoint: today the bearer token (RFC 6750 §2.1).

use actix_web::http::header::{self, HeaderMap};

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
