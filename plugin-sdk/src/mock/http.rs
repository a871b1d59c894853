//! The `http` import, answered by the test (per method and URL, or by a closure) under
//! the real host's checks (`state/http.rs`; its rules are `rehydra_plugin_rules::http`):
//! granted host and port, no credentials or `Host` header from the plugin, hidden
//! `set-cookie`, retries of idempotent requests.

use rehydra_plugin_rules::CapabilityKind;
use rehydra_plugin_rules::http::{
    self as rules, ATTEMPTS, BODY_MAX, HIDDEN_RESPONSE_HEADERS, WAIT_MAX, retry_after,
    retryable_status,
};

use super::state::{HttpHandler, Res, err, with};
use crate::ErrorCode;
use crate::host::Level;
use crate::http::{Error, Request, Response};

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
    let default_port = rules::default_port(scheme)?;
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
            return Err(s.deny(CapabilityKind::Http, &target, &reason));
        }
        if let Some(reason) = rules::forbidden_header(&req.headers) {
            return Err(s.deny(CapabilityKind::Http, &target, &reason));
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
            CapabilityKind::Http,
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
    let retryable = rules::idempotent(&req.method)
        || req
            .headers
            .iter()
            .any(|(n, _)| n.trim().eq_ignore_ascii_case("repeatability-request-id"));
    let mut attempt = 1;
    loop {
        let outcome = answer(req);
        let retry = match &outcome {
            Ok(r) if retryable && retryable_status(r.status) => {
                retry_after(&r.headers).is_none_or(|w| w <= WAIT_MAX)
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
                if r.body.len() > BODY_MAX {
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
