//! JSON over the host's `http` capability, for plugins that speak REST (Azure Resource
//! Manager, the Kubernetes API, data planes): one request helper, an error that names
//! what was asked and what the service said (never the body itself: a proxy that echoes a
//! request would echo what it carried), and the rules for URLs a setting or an answer may
//! give (no user info, query or fragment in an endpoint; paging stays on the origin it
//! started from). Answers are another machine's word: [`text`] and [`number`] read a
//! field only when it is sane, and [`shown`] makes any string safe to print.

use serde_json::Value;

use crate::azure::arm::status_code;
use crate::{Error, ErrorCode, Result, http};

/// `s`, at most `max` characters, control and other unprintable characters shown
/// escaped (quotes stay as they are: services quote names in their messages): safe to
/// put in a message whatever an answer held.
#[must_use]
pub fn shown(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars().take(max) {
        match c {
            '\'' | '"' => out.push(c),
            _ => out.extend(c.escape_debug()),
        }
    }
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// `scheme://authority` of an absolute http(s) URL, lower case, `:443` on https dropped.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = match (scheme, authority.strip_suffix(":443")) {
        ("https", Some(a)) => a.to_string(),
        _ => authority,
    };
    Some(format!("{scheme}://{authority}"))
}

/// An endpoint setting (`kube=`, `arm=`): an http(s) URL with nothing after the authority.
///
/// # Errors
/// `invalid-input` naming the setting and the rule.
pub fn endpoint(setting: &str, url: &str) -> Result<String> {
    let bare = url.trim().trim_end_matches('/');
    match origin(bare) {
        Some(o)
            if bare.eq_ignore_ascii_case(&o) || bare.eq_ignore_ascii_case(&format!("{o}:443")) =>
        {
            Ok(o)
        }
        _ => Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "{setting} `{}` is not an endpoint: write scheme://host[:port] with nothing after it, e.g. https://10.0.0.5:6443",
                shown(url, 120)
            ),
        )),
    }
}

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Send `method url` with an optional JSON body.
///
/// # Errors
/// What the host reports (not granted, unreachable).
pub fn send(method: &str, url: &str, body: Option<&Value>) -> Result<http::Response> {
    let mut headers = vec![("accept".to_string(), "application/json".to_string())];
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    http::send(&http::Request {
        method: method.into(),
        url: url.into(),
        headers,
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
    })
}

/// What the service said in an error answer: ARM's `error.code: error.message`, or a
/// Kubernetes `Status`'s `reason: message`; never the body itself.
pub fn detail(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let pair = |a: &Value, b: &Value| match (a.as_str(), b.as_str()) {
        (Some(a), Some(b)) => Some(format!("{}: {}", shown(a, 80), shown(b, 400))),
        (None, Some(b)) => Some(shown(b, 400)),
        _ => None,
    };
    pair(&v["error"]["code"], &v["error"]["message"])
        .or_else(|| pair(&v["reason"], &v["message"]))
        .unwrap_or_else(|| {
            if body.is_empty() {
                "no details".into()
            } else {
                format!("no error document ({} bytes of something else)", body.len())
            }
        })
}

/// The error for a non-2xx answer to `what`, with `hint` for the admin.
pub fn answer_error(what: &str, r: &http::Response, hint: &str) -> Error {
    let mut m = format!("{what}: answered {}: {}", r.status, detail(&r.body));
    if !hint.is_empty() {
        m.push_str("; ");
        m.push_str(hint);
    }
    Error::new(status_code(r.status), m)
}

/// The body of a 2xx answer as JSON.
///
/// # Errors
/// `failed` when it is not JSON.
pub fn json(what: &str, r: &http::Response) -> Result<Value> {
    if r.body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&r.body).map_err(|e| {
        Error::new(
            ErrorCode::Failed,
            format!("{what}: the answer is not JSON ({e})"),
        )
    })
}

/// A text field of an answer: absent, not text, over `max` characters or holding control
/// characters reads as `None` (the answer is another machine's word).
pub fn text(v: &Value, max: usize) -> Option<&str> {
    v.as_str()
        .filter(|s| s.chars().count() <= max && !s.chars().any(char::is_control))
}

/// A whole number of an answer (a number, or a string of digits), at most `max`.
pub fn number(v: &Value, max: u64) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|n| *n <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_bare_origins() {
        assert_eq!(
            endpoint("kube", "https://10.0.0.5:6443/").unwrap(),
            "https://10.0.0.5:6443"
        );
        assert_eq!(
            endpoint("arm", "https://management.azure.com:443").unwrap(),
            "https://management.azure.com"
        );
        for bad in [
            "10.0.0.5:6443",
            "https://u:p@host",
            "https://host/api?x=1",
            "ftp://host",
            "https://",
        ] {
            assert!(endpoint("kube", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("eyJ2Ijoi+/=&x"), "eyJ2Ijoi%2B%2F%3D%26x");
    }

    #[test]
    fn error_details_never_echo_a_body() {
        let k8s = br#"{"kind":"Status","status":"Failure","message":"the provided continue parameter is too old","reason":"Expired","code":410}"#;
        assert_eq!(
            detail(k8s),
            "Expired: the provided continue parameter is too old"
        );
        assert_eq!(
            detail(b"<html>secret</html>"),
            "no error document (19 bytes of something else)"
        );
    }

    #[test]
    fn shown_names_escape_control_characters_and_are_clipped() {
        assert_eq!(shown("a\u{1b}[2J\nb", 80), "a\\u{1b}[2J\\nb");
        assert_eq!(shown("abcdef", 3), "abc…");
        assert_eq!(
            shown("'x' is \"outside\" \u{202e}", 80),
            "'x' is \"outside\" \\u{202e}"
        );
    }
}
