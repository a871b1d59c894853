//! The Kubernetes API server the admin granted (`kube=`, `http:<host>:<port>`), through
//! the host's HTTP capability; the host adds the credentials.
//!
//! Lists are read in pages (`limit`, then `continue` with the token of the page before's
//! `metadata.continue`). The server keeps a token for a few minutes only: a `410 Gone`
//! answer means the list must start again, and is reported as such. A token seen twice,
//! too many pages or too many items end the list with an error.

use rehydra_plugin_sdk::prelude::*;
use serde_json::Value;

use crate::client::{self, answer_error, encode, json};
use crate::names::shown;

/// Items asked for per page.
pub const PAGE: u32 = 100;
/// Pages of one list at the most.
const MAX_PAGES: usize = 10_000;
/// Items of one list at the most.
const MAX_ITEMS: usize = 100_000;
/// Longest continue token accepted.
const TOKEN_MAX: usize = 16 << 10;

/// `SqlManagedInstance` (`sql.arcdata.microsoft.com/v1`).
pub const MI_PATH: &str = "/apis/sql.arcdata.microsoft.com/v1";
/// `SqlManagedInstanceRestoreTask` (`tasks.sql.arcdata.microsoft.com/v1`).
pub const TASK_API: &str = "tasks.sql.arcdata.microsoft.com/v1";

/// URL of the instances of namespace `ns` (a checked name).
pub fn instances_url(base: &str, ns: &str) -> String {
    format!("{base}{MI_PATH}/namespaces/{ns}/sqlmanagedinstances")
}

/// URL of the restore tasks of namespace `ns`, or of task `name` there.
pub fn tasks_url(base: &str, ns: &str, name: Option<&str>) -> String {
    let mut u = format!("{base}/apis/{TASK_API}/namespaces/{ns}/sqlmanagedinstancerestoretasks");
    if let Some(n) = name {
        u.push('/');
        u.push_str(n);
    }
    u
}

fn hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            "the host's credentials for this API server may not read or create these resources (a role with get, list and create on sqlmanagedinstances and sqlmanagedinstancerestoretasks)"
        }
        404 => {
            "is Azure Arc data services installed on this cluster, and does the namespace exist?"
        }
        _ => "",
    }
}

/// Every item of the list at `url` (a collection URL without a query), page by page.
///
/// # Errors
/// The answer's status (410: the continue token expired), a malformed page, or the bounds.
pub fn list(url: &str, what: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    for page in 1.. {
        if page > MAX_PAGES {
            return Err(Error::new(
                ErrorCode::Failed,
                format!("{what}: more than {MAX_PAGES} pages; refused"),
            ));
        }
        let u = match &token {
            None => format!("{url}?limit={PAGE}"),
            Some(t) => format!("{url}?limit={PAGE}&continue={}", encode(t)),
        };
        let r = client::send("GET", &u, None)?;
        if r.status == 410 {
            return Err(Error::new(
                ErrorCode::Unavailable,
                format!(
                    "{what}: the API server no longer knows the list's continue token (410 Gone: {}) after {} page(s); the list changed or took too long between pages. Run it again",
                    client::detail(&r.body),
                    page - 1
                ),
            ));
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
    Ok(out)
}

/// `GET url`: the object, or `None` on 404.
///
/// # Errors
/// Any other non-2xx answer.
pub fn get(url: &str, what: &str) -> Result<Option<Value>> {
    let r = client::send("GET", url, None)?;
    match r.status {
        404 => Ok(None),
        200..=299 => json(what, &r).map(Some),
        s => Err(answer_error(what, &r, hint(s))),
    }
}

/// `POST url body`: the created object.
///
/// # Errors
/// A non-2xx answer (409: a task of that name exists).
pub fn create(url: &str, body: &Value, what: &str) -> Result<Value> {
    let r = client::send("POST", url, Some(body))?;
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
pub fn delete(url: &str, what: &str) -> Result<()> {
    let r = client::send("DELETE", url, None)?;
    match r.status {
        404 | 200..=299 => Ok(()),
        s => Err(answer_error(what, &r, hint(s))),
    }
}
