//! Prometheus metrics: request counts and latency histograms by route and
//! status, and counters of the security-relevant events. One `Metrics` per
//! application, reached through `AppState` (no global registry, so several
//! applications in one test binary keep their own numbers).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Latency bucket upper bounds, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default, Clone)]
struct RouteStats {
    count: u64,
    sum_secs: f64,
    /// Cumulative counts per bucket of `BUCKETS`.
    buckets: [u64; BUCKETS.len()],
}

/// Counters and histograms, updated from request handlers and background
/// tasks, rendered at `/metrics`.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), RouteStats>>,
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
}

/// What the counters count; the name is the metric, the help its meaning.
pub struct Counter {
    pub name: &'static str,
    pub help: &'static str,
}

pub const TOKENS_ISSUED: Counter = Counter {
    name: "tessera_tokens_issued_total",
    help: "Token responses issued, by grant type.",
};
pub const TOKEN_ERRORS: Counter = Counter {
    name: "tessera_token_errors_total",
    help: "Token endpoint refusals, by RFC 6749 error code.",
};
pub const REVOCATIONS: Counter = Counter {
    name: "tessera_revocations_total",
    help: "Revocation requests, by outcome.",
};
pub const INTROSPECTIONS: Counter = Counter {
    name: "tessera_introspections_total",
    help: "Introspection answers, by whether the token was active.",
};
pub const SIGN_INS: Counter = Counter {
    name: "tessera_sign_ins_total",
    help: "Sign-in attempts, by outcome (success, failure, throttled).",
};
pub const CONSENT_DECISIONS: Counter = Counter {
    name: "tessera_consent_decisions_total",
    help: "Answers on the consent page, by decision.",
};
pub const REFRESH_REUSE: Counter = Counter {
    name: "tessera_refresh_reuse_detected_total",
    help: "Rotated refresh tokens presented again (their grant was revoked).",
};
pub const GRANTS_REVOKED: Counter = Counter {
    name: "tessera_grants_revoked_total",
    help: "Grants revoked by this instance, by reason.",
};
pub const PRUNED_ROWS: Counter = Counter {
    name: "tessera_pruned_rows_total",
    help: "Expired rows deleted by the background task.",
};

const ALL_COUNTERS: [&Counter; 9] = [
    &REFRESH_REUSE,
    &GRANTS_REVOKED,
    &TOKENS_ISSUED,
    &TOKEN_ERRORS,
    &REVOCATIONS,
    &INTROSPECTIONS,
    &SIGN_INS,
    &CONSENT_DECISIONS,
    &PRUNED_ROWS,
];

impl Metrics {
    /// Records one HTTP request. `route` is the route pattern, never the
    /// raw path (which may carry codes or tokens). Methods outside RFC 9110's
    /// list count as `OTHER`: a client may send any token as a method, and
    /// each would otherwise be a new series forever (bounded cardinality).
    pub fn observe_request(&self, method: &str, route: &str, status: u16, secs: f64) {
        let method = method_label(method);
        if let Ok(mut requests) = self.requests.lock() {
            let stats = requests
                .entry((method.to_owned(), route.to_owned(), status))
                .or_default();
            stats.count += 1;
            stats.sum_secs += secs;
            for (bucket, bound) in stats.buckets.iter_mut().zip(BUCKETS) {
                if secs <= bound {
                    *bucket += 1;
                }
            }
        }
    }

    /// Adds `by` to a counter with one label (`label="value"`, or empty).
    pub fn add(&self, counter: &Counter, label: &str, value: &str, by: u64) {
        let labels = if label.is_empty() {
            String::new()
        } else {
            format!("{label}=\"{}\"", escape(value))
        };
        if let Ok(mut counters) = self.counters.lock() {
            *counters.entry((counter.name, labels)).or_default() += by;
        }
    }

    pub fn increment(&self, counter: &Counter, label: &str, value: &str) {
        self.add(counter, label, value, 1);
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self, pool_connections: u32, pool_idle: u32) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP tessera_http_requests_total HTTP requests by method, route and status."
        );
        let _ = writeln!(out, "# TYPE tessera_http_requests_total counter");
        let requests = self.requests.lock().map(|r| r.clone()).unwrap_or_default();
        for ((method, route, status), stats) in &requests {
            let _ = writeln!(
                out,
                "tessera_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                stats.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP tessera_http_request_duration_seconds Request latency by method, route and status."
        );
        let _ = writeln!(
            out,
            "# TYPE tessera_http_request_duration_seconds histogram"
        );
        for ((method, route, status), stats) in &requests {
            let labels = format!(
                "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                escape(route)
            );
            for (count, bound) in stats.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "tessera_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "tessera_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "tessera_http_request_duration_seconds_sum{{{labels}}} {}",
                stats.sum_secs
            );
            let _ = writeln!(
                out,
                "tessera_http_request_duration_seconds_count{{{labels}}} {}",
                stats.count
            );
        }
        let counters = self.counters.lock().map(|c| c.clone()).unwrap_or_default();
        for counter in ALL_COUNTERS {
            let _ = writeln!(out, "# HELP {} {}", counter.name, counter.help);
            let _ = writeln!(out, "# TYPE {} counter", counter.name);
            for ((name, labels), value) in counters
                .iter()
                .filter(|((name, _), _)| *name == counter.name)
            {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP tessera_db_pool_connections Database connections open in the pool, by state."
        );
        let _ = writeln!(out, "# TYPE tessera_db_pool_connections gauge");
        let _ = writeln!(
            out,
            "tessera_db_pool_connections{{state=\"idle\"}} {pool_idle}"
        );
        let _ = writeln!(
            out,
            "tessera_db_pool_connections{{state=\"in_use\"}} {}",
            pool_connections.saturating_sub(pool_idle)
        );
        out
    }
}

/// The `method` label: one of RFC 9110's methods (and PATCH), else `OTHER`.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("OTHER")
}

/// Label values: backslash, quote and newline escaped (exposition format).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let metrics = Metrics::default();
        metrics.observe_request("POST", "/oauth2/token", 200, 0.003);
        metrics.observe_request("POST", "/oauth2/token", 200, 0.3);
        metrics.increment(&TOKENS_ISSUED, "grant_type", "client_credentials");
        let text = metrics.render(3, 2);
        assert!(text.contains(
            "tessera_http_requests_total{method=\"POST\",route=\"/oauth2/token\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("le=\"0.5\"} 2"));
        assert!(text.contains("tessera_tokens_issued_total{grant_type=\"client_credentials\"} 1"));
        assert!(text.contains("tessera_db_pool_connections{state=\"in_use\"} 1"));
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let metrics = Metrics::default();
        for i in 0..10_000 {
            metrics.observe_request(&format!("M{i}"), "unmatched", 404, 0.001);
        }
        metrics.observe_request("GET", "unmatched", 404, 0.001);
        let requests = metrics.requests.lock().expect("lock");
        assert_eq!(requests.len(), 2, "OTHER and GET");
        assert_eq!(
            requests[&("OTHER".to_owned(), "unmatched".to_owned(), 404)].count,
            10_000
        );
    }
}
