//! The `http` capability's rules: the headers that are the host's, the largest answer,
//! and which answers are tried again after how long.
//!
//! A request that may safely be sent again (an idempotent method, or a `POST` carrying
//! `Repeatability-Request-ID`, Azure's repeatable-request header) is retried on a
//! [`retryable_status`] and when the endpoint cannot be reached, at most [`ATTEMPTS`]
//! times, waiting what [`retry_after`] says (else the host's backoff); a wait over
//! [`WAIT_MAX`] ends the retries and the plugin gets the answer.

use std::time::{Duration, SystemTime};

use crate::error::{ErrorCode, HostError};

/// Largest response body.
pub const BODY_MAX: usize = 64 << 20;
/// Tries of one retryable request.
pub const ATTEMPTS: u32 = 5;
/// Longest single wait between tries.
pub const WAIT_MAX: Duration = Duration::from_secs(60);
/// Request headers only the host sets: credentials, and `Host` (which would send a
/// granted host's credentials to whatever virtual host the plugin names).
pub const FORBIDDEN_REQUEST_HEADERS: [&str; 4] =
    ["authorization", "proxy-authorization", "cookie", "host"];
/// Response headers the plugin never sees.
pub const HIDDEN_RESPONSE_HEADERS: [&str; 2] = ["set-cookie", "authorization"];

/// The port a URL of `scheme` means when it names none: 443 for https, 80 for http.
///
/// # Errors
/// `invalid-input` for any other scheme.
pub fn default_port(scheme: &str) -> Result<u16, HostError> {
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(443),
        "http" => Ok(80),
        other => Err(HostError::new(
            ErrorCode::InvalidInput,
            format!("only http and https are supported, not `{other}`"),
        )),
    }
}

/// Why the request's headers are refused: the first header only the host may set.
pub fn forbidden_header(headers: &[(String, String)]) -> Option<String> {
    let (name, _) = headers.iter().find(|(n, _)| {
        FORBIDDEN_REQUEST_HEADERS.contains(&n.trim().to_ascii_lowercase().as_str())
    })?;
    Some(format!(
        "plugins may not set the `{name}` header; the host addresses and authenticates requests"
    ))
}

/// True if the method may be sent again without changing the outcome.
pub fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    )
}

/// True if an answer with `status` is worth trying again: 408, 429, 500, 502, 503, 504.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// What the answer asks for: `retry-after-ms` / `x-ms-retry-after-ms` (milliseconds), or
/// `Retry-After` in seconds or as an HTTP date (a date past is no wait).
pub fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    for ms in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(v) = get(ms).and_then(|v| v.parse::<u64>().ok()) {
            return Some(Duration::from_millis(v));
        }
    }
    let v = get("retry-after")?;
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let now = chrono::DateTime::<chrono::Utc>::from(SystemTime::now());
    let ms = when.signed_duration_since(now).num_milliseconds();
    Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let h = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        assert_eq!(
            retry_after(&h("Retry-After", "3")),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&h("x-ms-retry-after-ms", "250")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&h("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&h("Retry-After", "soon")), None);
        assert_eq!(retry_after(&[]), None);
    }

    #[test]
    fn only_the_host_sets_credentials_and_host() {
        let h = |n: &str| vec![(n.to_string(), "x".to_string())];
        assert!(forbidden_header(&h(" Authorization")).is_some_and(|r| r.contains("`")));
        assert!(forbidden_header(&h("HOST")).is_some());
        assert_eq!(forbidden_header(&h("x-ms-version")), None);
        assert!(idempotent("PUT") && !idempotent("POST"));
        assert!(retryable_status(503) && !retryable_status(501));
        assert_eq!(default_port("HTTPS"), Ok(443));
        assert_eq!(
            default_port("ftp").unwrap_err().code,
            ErrorCode::InvalidInput
        );
    }
}
