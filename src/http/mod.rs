//! The only place actix-web and askama appear: the route table, extractors,
//! pages and the mapping of errors to responses.

pub mod browser;
pub mod error;
pub mod extractors;
pub mod middleware;
pub mod pages;
pub mod routes;
pub mod state;

use actix_web::error::{QueryPayloadError, UrlencodedError};
use actix_web::{HttpRequest, HttpResponse, web};

use actix_web::middleware::from_fn;
use error::PageError;
use routes::{
    account, apps, assets, authorize, developer, end_session, health, introspect, login, logout,
    register, revoke, signup, token, userinfo, wellknown,
};
pub use state::AppState;

/// The whole route table.
pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(max_body_bytes)
            .error_handler(form_error),
    )
    .app_data(web::PayloadConfig::default().limit(max_body_bytes))
    .app_data(web::QueryConfig::default().error_handler(query_error))
    .route("/", web::get().to(account::index))
    .route("/assets/tessera.css", web::get().to(assets::stylesheet))
    .service(
        web::resource("/login")
            .route(web::get().to(login::show))
            .route(web::post().to(login::submit)),
    )
    .service(
        web::resource("/signup")
            .route(web::get().to(signup::show))
            .route(web::post().to(signup::submit)),
    )
    .service(
        web::resource("/logout")
            .route(web::get().to(logout::show))
            .route(web::post().to(logout::submit)),
    )
    .route("/account", web::get().to(account::show))
    .route("/developer/apps", web::get().to(developer::list))
    .service(
        web::resource("/developer/apps/new")
            .route(web::get().to(developer::new_form))
            .route(web::post().to(developer::create)),
    )
    .service(
        web::resource("/developer/apps/{client_id}")
            .route(web::get().to(developer::show))
            .route(web::post().to(developer::update)),
    )
    .route(
        "/developer/apps/{client_id}/rotate",
        web::post().to(developer::rotate),
    )
    .service(
        web::resource("/developer/apps/{client_id}/delete")
            .route(web::get().to(developer::confirm_delete))
            .route(web::post().to(developer::delete)),
    )
    .route("/account/apps", web::get().to(apps::list))
    .route("/account/apps/revoke", web::post().to(apps::revoke))
    .route("/account/apps/scopes", web::post().to(apps::narrow))
    .service(
        web::resource("/oauth2/authorize")
            .route(web::get().to(authorize::start))
            .route(web::post().to(authorize::answer))
            .default_service(web::to(|| method_not_allowed("GET, POST"))),
    )
    .service(
        web::resource("/oauth2/token")
            .wrap(from_fn(middleware::open_cors))
            .route(web::post().to(token::exchange))
            .default_service(web::to(|| method_not_allowed("POST, OPTIONS"))),
    )
    .service(
        web::resource("/oauth2/logout")
            .route(web::get().to(end_session::start))
            .route(web::post().to(end_session::confirm))
            .default_service(web::to(|| method_not_allowed("GET, POST"))),
    )
    .service(
        web::resource("/oauth2/register")
            .route(web::post().to(register::create))
            .default_service(web::to(|| method_not_allowed("POST"))),
    )
    .service(
        web::resource("/oauth2/register/{client_id}")
            .route(web::get().to(register::read))
            .route(web::put().to(register::update))
            .route(web::delete().to(register::delete))
            .default_service(web::to(|| method_not_allowed("GET, PUT, DELETE"))),
    )
    .service(
        web::resource("/oauth2/userinfo")
            .wrap(from_fn(middleware::open_cors))
            .route(web::get().to(userinfo::userinfo_endpoint))
            .route(web::post().to(userinfo::userinfo_endpoint))
            .default_service(web::to(|| method_not_allowed("GET, POST, OPTIONS"))),
    )
    .service(
        web::resource("/oauth2/revoke")
            .wrap(from_fn(middleware::open_cors))
            .route(web::post().to(revoke::revoke))
            .default_service(web::to(|| method_not_allowed("POST, OPTIONS"))),
    )
    // Server to server only: no CORS (CO-03); GET is 405 and never reads a
    // token from the URL (IN-01).
    .service(
        web::resource("/oauth2/introspect")
            .route(web::post().to(introspect::introspect))
            .default_service(web::to(|| method_not_allowed("POST"))),
    )
    .service(
        web::resource("/.well-known/oauth-authorization-server")
            .wrap(from_fn(middleware::open_cors))
            .route(web::get().to(wellknown::authorization_server))
            .default_service(web::to(|| method_not_allowed("GET, OPTIONS"))),
    )
    .service(
        web::resource("/.well-known/openid-configuration")
            .wrap(from_fn(middleware::open_cors))
            .route(web::get().to(wellknown::openid_configuration))
            .default_service(web::to(|| method_not_allowed("GET, OPTIONS"))),
    )
    .service(
        web::resource("/.well-known/jwks.json")
            .wrap(from_fn(middleware::open_cors))
            .route(web::get().to(wellknown::jwks))
            .default_service(web::to(|| method_not_allowed("GET, OPTIONS"))),
    )
    .route("/health/live", web::get().to(health::live))
    .route("/health/ready", web::get().to(health::ready))
    .route("/metrics", web::get().to(health::metrics))
    .default_service(web::to(not_found));
}

/// 405 with the methods the resource does allow (IV-07).
async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "error": "invalid_request",
            "error_description": "this method is not allowed here",
        }))
}

async fn not_found() -> Result<HttpResponse, PageError> {
    Err(PageError::NotFound)
}

/// Malformed or oversized form bodies get a clear 4xx page, never a 500
/// (IV-03, IV-04); the raw bytes are never echoed.
fn form_error(error: UrlencodedError, _req: &HttpRequest) -> actix_web::Error {
    let page = match error {
        UrlencodedError::Overflow { .. } | UrlencodedError::UnknownLength => {
            PageError::PayloadTooLarge
        }
        UrlencodedError::ContentType => PageError::BadRequest(
            "This form must be sent as application/x-www-form-urlencoded.".to_owned(),
        ),
        UrlencodedError::Parse(_) | UrlencodedError::Encoding | UrlencodedError::Chunked => {
            PageError::BadRequest(
                "The form could not be read. Reload the page and try again.".to_owned(),
            )
        }
        UrlencodedError::Payload(_) | _ => {
            PageError::BadRequest("The form data did not arrive completely.".to_owned())
        }
    };
    page.into()
}

fn query_error(_error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    PageError::BadRequest("The address has a malformed or repeated parameter.".to_owned()).into()
}
