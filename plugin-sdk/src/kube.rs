//! The Kubernetes API, through the host's `http` capability: the host adds the cluster's
//! credentials; the plugin never sees them.
//!
//! Lists are read in pages (`limit`, then `continue` with the token of the page before's
//! `metadata.continue`). The server keeps a token for a few minutes only: a `410 Gone`
//! answer means the list must start again, and is reported as such. A token seen twice,
//! too many pages or too many items end the list with an error. Every call takes a
//! `hint`: what the admin may do about a failing status, in the plugin's words.

use serde_json::Value;

pub mod kubectl;

use crate::rest::{self, answer_error, encode, json, shown};
use crate::{Error, ErrorCode, Result};

/// Items asked for per page.
pub const PAGE: u32 = 100;
/// Pages of one list at the most.
const MAX_PAGES: usize = 10_000;
/// Items of one list at the most.
const MAX_ITEMS: usize = 100_000;
/// Longest continue token accepted.
const TOKEN_MAX: usize = 16 << 10;

/// What to tell the admin about a failing status (`""`: nothing to add).
pub type Hint = fn(u16) -> &'static str;

/// No hint.
#[must_use]
pub fn no_hint(_: u16) -> &'static str {
    ""
}

/// An RFC 1123 label: 1 to 63 of `a-z`, `0-9`, `-`, starting and ending with a letter or
/// digit (namespaces, and the names of most resources).
#[must_use]
pub fn is_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An RFC 1123 subdomain (the names of most other resources): labels joined by `.`, at
/// most 253.
#[must_use]
pub fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// `what` must be a Kubernetes name (an RFC 1123 label).
///
/// # Errors
/// `invalid-input` naming the value (escaped) and the rule.
pub fn label<'a>(what: &str, s: &'a str) -> Result<&'a str> {
    if is_label(s) {
        Ok(s)
    } else {
        Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "{what} `{}` is not a Kubernetes name (1 to 63 lower-case letters, digits and `-`)",
                shown(s, 80)
            ),
        ))
    }
}

/// Every item of the list at `url` (a collection URL, with or without a query), page by
/// page.
///
/// # Errors
/// The answer's status (410: the continue token expired), a malformed page, or the bounds.
pub fn list(url: &str, what: &str, hint: Hint) -> Result<Vec<Value>> {
    pages(url, what, hint)?
}

/// [`list`], but a list whose continue token expired (`410 Gone`) is read once more
/// from the start, as the API server's answer asks: what a backup does, where a list
/// that gave up would leave a type out.
///
/// # Errors
/// As [`list`]; a second 410 is reported.
pub fn list_restarting(url: &str, what: &str, hint: Hint) -> Result<Vec<Value>> {
    match pages(url, what, hint)? {
        Err(expired) => {
            crate::host::log(
                crate::host::Level::Warn,
                &format!("{}; starting it again", expired.message),
            );
            pages(url, what, hint)?
        }
        all => all,
    }
}

/// The items, or (inside) the error of a continue token that expired.
fn pages(url: &str, what: &str, hint: Hint) -> Result<Result<Vec<Value>>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    let sep = if url.contains('?') { '&' } else { '?' };
    for page in 1.. {
        if page > MAX_PAGES {
            return Err(Error::new(
                ErrorCode::Failed,
                format!("{what}: more than {MAX_PAGES} pages; refused"),
            ));
        }
        let u = match &token {
            None => format!("{url}{sep}limit={PAGE}"),
            Some(t) => format!("{url}{sep}limit={PAGE}&continue={}", encode(t)),
        };
        let r = rest::send("GET", &u, None)?;
        if r.status == 410 {
            return Ok(Err(Error::new(
                ErrorCode::Unavailable,
                format!(
                    "{what}: the API server no longer knows the list's continue token (410 Gone: {}) after {} page(s); the list changed or took too long between pages. Run it again",
                    rest::detail(&r.body),
                    page - 1
                ),
            )));
        }
        if !(200..300).contains(&r.status) {
            return Err(answer_error(what, &r, hint(r.status)));
        }
        let v = json(what, &r)?;
        let Some(items) = v["items"].as_array() else {
            return Err(Error::new(
                ErrorCode::Failed,
                format!("{what}: the answer is not a list (no `items`)"),
            ));
        };
        if out.len() + items.len() > MAX_ITEMS {
            return Err(Error::new(
                ErrorCode::Failed,
                format!("{what}: more than {MAX_ITEMS} items; refused"),
            ));
        }
        out.extend(items.iter().cloned());
        match v["metadata"]["continue"].as_str().filter(|t| !t.is_empty()) {
            None => break,
            Some(t) if t.len() > TOKEN_MAX || !seen.insert(t.to_string()) => {
                return Err(Error::new(
                    ErrorCode::Failed,
                    format!(
                        "{what}: the API server sent a continue token that is too long or was seen before ({}); refused",
                        shown(t, 40)
                    ),
                ));
            }
            Some(t) => token = Some(t.to_string()),
        }
    }
    Ok(Ok(out))
}

/// `GET url`: the object, or `None` on 404.
///
/// # Errors
/// Any other non-2xx answer.
pub fn get(url: &str, what: &str, hint: Hint) -> Result<Option<Value>> {
    let r = rest::send("GET", url, None)?;
    match r.status {
        404 => Ok(None),
        200..=299 => json(what, &r).map(Some),
        s => Err(answer_error(what, &r, hint(s))),
    }
}

/// `POST url body`: the created object.
///
/// # Errors
/// A non-2xx answer (409: an object of that name exists).
pub fn create(url: &str, body: &Value, what: &str, hint: Hint) -> Result<Value> {
    let r = rest::send("POST", url, Some(body))?;
    if !(200..300).contains(&r.status) {
        let h = if r.status == 409 {
            "an object of that name exists already"
        } else {
            hint(r.status)
        };
        return Err(answer_error(what, &r, h));
    }
    json(what, &r)
}

/// `DELETE url`; a 404 is fine (already gone).
///
/// # Errors
/// Any other non-2xx answer.
pub fn delete(url: &str, what: &str, hint: Hint) -> Result<()> {
    let r = rest::send("DELETE", url, None)?;
    match r.status {
        404 | 200..=299 => Ok(()),
        s => Err(answer_error(what, &r, hint(s))),
    }
}

/// `DELETE url` of the object whose uid is `uid` only (`preconditions.uid`): an object
/// made again under that name by someone else is left alone. A 404 is fine.
///
/// # Errors
/// Any other non-2xx answer (409: the name now holds another object).
pub fn delete_uid(url: &str, uid: &str, what: &str, hint: Hint) -> Result<()> {
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": uid},
    });
    let r = rest::send("DELETE", url, Some(&body))?;
    match r.status {
        404 | 200..=299 => Ok(()),
        409 => Err(answer_error(
            what,
            &r,
            "the name now holds another object, which is left alone",
        )),
        s => Err(answer_error(what, &r, hint(s))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_names_follow_rfc_1123() {
        for ok in ["arc", "sqlmi1", "a-b", "0"] {
            assert!(is_label(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a/b",
            "..",
            "a b",
            "a;rm",
            "$(x)",
            "a\nb",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_label(bad), "{bad:?}");
        }
        assert!(is_subdomain("sqlmi1-0") && is_subdomain("a.b") && !is_subdomain("a..b"));
    }
}
