//! One file per endpoint group.

pub mod account;
pub mod apps;
pub mod assets;
pub mod authorize;
pub mod developer;
pub mod end_session;
pub mod health;
pub mod introspect;
pub mod login;
pub mod logout;
pub mod register;
pub mod revoke;
pub mod signup;
pub mod token;
pub mod userinfo;
pub mod wellknown;

use actix_web::HttpResponse;
use actix_web::http::header;

use crate::domain::ReturnTo;

/// A 303 to a path on this server: after a form post the browser follows it
/// with GET (AZ-04: never 307, which would re-post the form).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The safe `return_to`, or `fallback`.
pub fn return_path(return_to: Option<&ReturnTo>, fallback: &'static str) -> String {
    return_to.map_or_else(|| fallback.to_owned(), |r| r.as_str().to_owned())
}

/// `/login?return_to=<path>`, for pages that need a signed-in user.
pub fn login_redirect(return_to: &str) -> HttpResponse {
    let query = serde_urlencoded::to_string([("return_to", return_to)]).unwrap_or_default();
    see_other(&format!("/login?{query}"))
}

/// Caps what is echoed back into a form, whatever was posted.
pub fn echo(value: &str) -> &str {
    const MAX_ECHO: usize = 256;
    if value.len() <= MAX_ECHO {
        return value;
    }
    let mut end = MAX_ECHO;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}
