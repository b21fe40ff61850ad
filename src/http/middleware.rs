//! Request tracing (one span per request, `X-Request-Id`) and the security
//! headers every response carries.

use std::time::Instant;

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use tracing::Instrument as _;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers for every response unless a handler set its own (CS-04). HTML
/// pages get no framing, no inline or third-party scripts, no referrer and
/// no caching; JSON responses are unaffected by the CSP but harmless.
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cache-Control", "no-store"));
    if https {
        headers.add((
            "Strict-Transport-Security",
            "max-age=63072000; includeSubDomains",
        ))
    } else {
        headers
    }
}

/// Largest total size of request headers (names and values) accepted.
/// actix-http itself allows far more; 16 KiB is what browsers and proxies
/// commonly cap at (IV-03).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses requests whose headers are larger than `MAX_HEADER_BYTES` with
/// 431 before any handler reads them.
pub async fn limit_header_size(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        tracing::info!(header_bytes = size, "request refused: headers too large");
        let response = actix_web::HttpResponse::build(
            actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        )
        .content_type("text/plain; charset=utf-8")
        .body("Request headers too large.");
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Wraps each request in an `http.request` span with method, route pattern
/// (never the raw path or query: they may hold codes), status, latency and a
/// request id, echoed back in `X-Request-Id`.
pub async fn trace_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_safe_request_id(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = crate::metrics::method_label(req.method().as_str());
    let metrics = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .map(|state| state.metrics.clone());
    let span = tracing::info_span!(
        "http.request",
        http.method = method,
        http.route = %route,
        http.status = tracing::field::Empty,
        request.id = %request_id,
        duration_ms = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.record("http.status", status);
    span.record("duration_ms", elapsed_ms);
    span.in_scope(|| tracing::info!("request handled"));
    if let Some(metrics) = metrics {
        metrics.observe_request(method, &route, status, elapsed_ms / 1000.0);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

/// Accepts a caller's request id only if it cannot smuggle anything into
/// logs or headers.
fn is_safe_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// CORS for the API endpoints that any web origin may call (CO-02): tokens
/// and client credentials travel in headers or bodies, never in cookies, so
/// `*` is safe and credentials are never allowed. Preflights are answered
/// here; HTML pages never get this middleware (CO-01).
pub async fn open_cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::http::{Method, header};
    let is_preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if is_preflight {
        let response = actix_web::HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
            .insert_header((
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Authorization, Content-Type",
            ))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
            .finish();
        return Ok(req.into_response(response));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(response)
}

/// Bounds the time a request body may take to arrive, counted from when the
/// headers were read. actix's `client_request_timeout` covers the headers
/// only: a client sending its body one byte every few seconds would
/// otherwise hold a connection, a descriptor and a buffer for ever
/// (reliability review, slow bodies). When the time is up the body read
/// fails, the handler answers 400, and the connection is closed.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // No body announced (most GETs): nothing to bound, and no timer on the
    // hot path of JWKS, discovery and health checks.
    let has_body = req
        .headers()
        .contains_key(actix_web::http::header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    let timeout = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .filter(|_| has_body)
        .map(|state| std::time::Duration::from_secs(state.settings.server.body_timeout_secs));
    if let Some(timeout) = timeout {
        let payload = req.take_payload();
        let bounded: BoxedPayloadStream = Box::pin(DeadlineBody {
            inner: payload,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            expired: false,
        });
        req.set_payload(actix_web::dev::Payload::from(bounded));
    }
    next.call(req).await
}

/// What actix-http calls a boxed payload stream (not re-exported by actix-web).
type BoxedPayloadStream = std::pin::Pin<
    Box<
        dyn futures_util::Stream<
                Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>,
            >,
    >,
>;

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: actix_web::dev::Payload,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl futures_util::Stream for DeadlineBody {
    type Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.expired {
            return Poll::Ready(None);
        }
        // The body first: what has arrived is taken even at the deadline.
        match std::pin::Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => {}
            ready => return ready,
        }
        if std::future::Future::poll(self.deadline.as_mut(), cx).is_ready() {
            self.expired = true;
            tracing::info!("request body too slow: read abandoned");
            return Poll::Ready(Some(Err(actix_web::error::PayloadError::Io(
                std::io::Error::new(std::io::ErrorKind::TimedOut, "request body too slow"),
            ))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_request_ids_are_echoed() {
        assert!(is_safe_request_id("abc-123_x.y"));
        assert!(!is_safe_request_id(""));
        assert!(!is_safe_request_id("a\r\nSet-Cookie: x"));
        assert!(!is_safe_request_id(&"a".repeat(65)));
    }
}
