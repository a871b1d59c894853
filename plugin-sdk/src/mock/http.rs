//! The `http` import, answered by the test (per method and URL, or by a closure) under
//! the real host's checks (`state/http.rs`): granted host and port, no credentials or
//! `Host` header from the plugin, hidden `set-cookie`, retries of idempotent requests.

use super::grants::Kind;
use super::state::{HttpHandler, Res, err, with};
use crate::ErrorCode;
use crate::host::Level;
use crate::http::{Error, Request, Response};

/// Largest response body.
const HTTP_BODY_MAX: usize = 64 << 20;
/// Tries of one retryable request.
const ATTEMPTS: u32 = 5;
/// Request headers only the host sets.
const FORBIDDEN_REQUEST_HEADERS: [&str; 4] =
    ["authorization", "proxy-authorization", "cookie", "host"];
/// Response headers the plugin never sees.
const HIDDEN_RESPONSE_HEADERS: [&str; 2] = ["set-cookie", "authorization"];

/// The parts of a URL the host checks.
struct Url {
    host: String,
    port: u16,
    default_port: u16,
}

fn parse_url(url: &str) -> Res<Url> {
    let bad = |why: &str| {
        err(
            ErrorCode::InvalidInput,
            format!("`{url}` is not a URL: {why}"),
        )
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it holds spaces or control characters"));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => 443,
        "http" => 80,
        other => {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("only http and https are supported, not `{other}`"),
            ));
        }
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p.parse().map_err(|_| bad("invalid port number"))?,
    };
    Ok(Url {
        host: host.to_ascii_lowercase(),
        port,
        default_port,
    })
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Seconds the answer asks to wait (`retry-after-ms`, `x-ms-retry-after-ms`,
/// `Retry-After` in seconds); the mock never waits, it only decides whether to retry.
fn retry_after_secs(headers: &[(String, String)]) -> Option<f64> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    for ms in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(v) = get(ms).and_then(|v| v.parse::<u64>().ok()) {
            return Some(v as f64 / 1000.0);
        }
    }
    get("retry-after")?.parse::<u64>().ok().map(|s| s as f64)
}

/// Where the next answer comes from.
enum Next {
    Canned(Res<Response>),
    Handler(HttpHandler),
    Nothing,
}

/// One try: the next registered answer for the request, else the test's closure.
fn answer(req: &Request) -> Res<Response> {
    let key = (req.method.to_ascii_uppercase(), req.url.clone());
    let next = with(|s| {
        if let Some(q) = s.http_answers.get_mut(&key)
            && let Some(first) = q.front().cloned()
        {
            // answers are used in order; the last one stays
            if q.len() > 1 {
                q.pop_front();
            }
            return Next::Canned(first);
        }
        s.http_handler.clone().map_or(Next::Nothing, Next::Handler)
    });
    match next {
        Next::Canned(answer) => answer,
        Next::Handler(h) => (h.borrow_mut())(req),
        Next::Nothing => Err(err(
            ErrorCode::Unavailable,
            format!(
                "nothing answers {} {} (register an answer with MockHost::http_answer or MockHost::on_http)",
                key.0, req.url
            ),
        )),
    }
}

/// Send a request to a granted host. The mock answers with what the test registered,
/// retrying (without waiting) as the host does: idempotent requests, or a `POST` with
/// `Repeatability-Request-ID`, on 408, 429 and 5xx and when the endpoint cannot be
/// reached, at most 5 tries.
///
/// # Errors
/// `invalid-input` (a bad URL, scheme, method or header, or a body over 64 MiB),
/// `denied` (host or port not granted, or a forbidden header), `unavailable` (nothing
/// answers).
pub fn send(req: &Request) -> Result<Response, Error> {
    let url = with(|s| -> Res<Url> {
        s.enter()?;
        let url = parse_url(&req.url)?;
        let target = if url.port == url.default_port {
            url.host.clone()
        } else {
            format!("{}:{}", url.host, url.port)
        };
        if !s.grants.host(&url.host, url.port, url.default_port) {
            let reason = if url.port == url.default_port {
                format!(
                    "host `{}` is not granted (rehydra plugins grant <plugin> http:{})",
                    url.host, url.host
                )
            } else {
                format!(
                    "host `{}` port {} is not granted (rehydra plugins grant <plugin> http:{target})",
                    url.host, url.port
                )
            };
            return Err(s.deny(Kind::Http, &target, &reason));
        }
        if let Some((name, _)) = req.headers.iter().find(|(n, _)| {
            FORBIDDEN_REQUEST_HEADERS.contains(&n.trim().to_ascii_lowercase().as_str())
        }) {
            let reason = format!(
                "plugins may not set the `{name}` header; the host addresses and authenticates requests"
            );
            return Err(s.deny(Kind::Http, &target, &reason));
        }
        let bad = |m: String| err(ErrorCode::InvalidInput, m);
        if !is_token(&req.method) {
            return Err(bad(format!("`{}` is not an HTTP method", req.method)));
        }
        for (n, v) in &req.headers {
            if !is_token(n.trim()) {
                return Err(bad(format!("`{n}` is not a header name")));
            }
            if !v.bytes().all(|b| (32..127).contains(&b) || b == b'\t') {
                return Err(bad(format!("the value of header `{n}` is not allowed")));
            }
        }
        let path = req.url.splitn(4, '/').nth(3).unwrap_or_default();
        s.audit(
            Kind::Http,
            &target,
            true,
            &format!(
                "{} /{}",
                req.method,
                path.split(['?', '#']).next().unwrap_or("")
            ),
        );
        s.record.http.push(req.clone());
        Ok(url)
    })?;
    let idempotent = matches!(
        req.method.as_str(),
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    );
    let retryable = idempotent
        || req
            .headers
            .iter()
            .any(|(n, _)| n.trim().eq_ignore_ascii_case("repeatability-request-id"));
    let mut attempt = 1;
    loop {
        let outcome = answer(req);
        let retry = match &outcome {
            Ok(r) if retryable && retryable_status(r.status) => {
                retry_after_secs(&r.headers).is_none_or(|s| s <= 60.0)
            }
            Err(e) => retryable && e.code == ErrorCode::Unavailable,
            Ok(_) => false,
        };
        if retry && attempt < ATTEMPTS {
            let why = match &outcome {
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => e.message.clone(),
            };
            attempt += 1;
            with(|s| {
                s.record.logs.push((
                    Level::Warn,
                    format!(
                        "{} {}: {why}; try {attempt} of {ATTEMPTS}",
                        req.method, url.host
                    ),
                ));
            });
            continue;
        }
        return match outcome {
            Ok(mut r) => {
                if r.body.len() > HTTP_BODY_MAX {
                    return Err(err(
                        ErrorCode::InvalidInput,
                        format!("response from {} is larger than 64 MiB", url.host),
                    ));
                }
                r.headers.retain(|(n, _)| {
                    !HIDDEN_RESPONSE_HEADERS.contains(&n.to_ascii_lowercase().as_str())
                });
                Ok(r)
            }
            Err(e) if e.code == ErrorCode::Unavailable => Err(err(
                ErrorCode::Unavailable,
                format!("{}: {}", url.host, e.message),
            )),
            Err(e) => Err(e),
        };
    }
}
