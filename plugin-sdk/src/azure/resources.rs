//! Resource Manager lists: ids checked before they reach a URL, and `nextLink` pages
//! followed only on the origin the list started from, so an answer cannot send the next
//! request (and its token) elsewhere.

use serde_json::Value;

use crate::rest::{self, answer_error, json, origin, shown};
use crate::{Error, ErrorCode, Result};

/// ARM's public endpoint.
pub const DEFAULT_ARM: &str = "https://management.azure.com";
const MAX_PAGES: usize = 10_000;
const MAX_ITEMS: usize = 100_000;

/// A subscription id: a GUID.
#[must_use]
pub fn is_subscription(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        })
}

/// A resource group name: 1 to 90 of letters, digits, `-_.()`, not ending with `.`.
#[must_use]
pub fn is_resource_group(s: &str) -> bool {
    (1..=90).contains(&s.len())
        && s.chars()
            .all(|c| c.is_alphanumeric() || "-_.()".contains(c))
        && !s.ends_with('.')
}

/// The first page URL of the resources of `provider_type` (`Microsoft.X/things`) in
/// subscription `sub` (and resource group `rg`).
///
/// # Errors
/// `invalid-input` for a malformed subscription or resource group.
pub fn list_url(
    arm: &str,
    sub: &str,
    rg: Option<&str>,
    provider_type: &str,
    api_version: &str,
) -> Result<String> {
    if !is_subscription(sub) {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "subscription `{}` is not a subscription id (a GUID)",
                shown(sub, 60)
            ),
        ));
    }
    let scope = match rg {
        Some(g) if is_resource_group(g) => format!("/subscriptions/{sub}/resourceGroups/{g}"),
        Some(g) => {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "resource group `{}` is not a resource group name",
                    shown(g, 100)
                ),
            ));
        }
        None => format!("/subscriptions/{sub}"),
    };
    Ok(format!(
        "{arm}{scope}/providers/{provider_type}?api-version={api_version}"
    ))
}

/// Every resource of the list at `first`, following `nextLink`.
///
/// # Errors
/// A non-2xx answer, a page without `value`, a `nextLink` elsewhere or seen before.
pub fn list(first: &str, what: &str) -> Result<Vec<Value>> {
    let home = origin(first);
    let mut out = Vec::new();
    let mut next = Some(first.to_string());
    let mut seen = std::collections::HashSet::new();
    while let Some(url) = next.take() {
        if !seen.insert(url.clone()) || seen.len() > MAX_PAGES {
            return Err(Error::new(
                ErrorCode::Failed,
                format!("{what}: a next page read before, or more than {MAX_PAGES} pages; refused"),
            ));
        }
        let r = rest::send("GET", &url, None)?;
        if !(200..300).contains(&r.status) {
            return Err(answer_error(
                what,
                &r,
                if matches!(r.status, 401 | 403) {
                    "the identity Rehydra signs in with needs Reader on the subscription (rehydra azure status)"
                } else {
                    ""
                },
            ));
        }
        let v = json(what, &r)?;
        let Some(items) = v["value"].as_array() else {
            return Err(Error::new(
                ErrorCode::Failed,
                format!("{what}: the answer has no `value` list"),
            ));
        };
        if out.len() + items.len() > MAX_ITEMS {
            return Err(Error::new(
                ErrorCode::Failed,
                format!("{what}: more than {MAX_ITEMS} items; refused"),
            ));
        }
        out.extend(items.iter().cloned());
        if let Some(link) = v["nextLink"].as_str().filter(|l| !l.is_empty()) {
            if origin(link) != home {
                return Err(Error::new(
                    ErrorCode::Failed,
                    format!(
                        "{what}: the next page is on another host ({}); refused",
                        shown(link, 120)
                    ),
                ));
            }
            next = Some(link.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_urls_check_their_parts() {
        let sub = "00000000-1111-2222-3333-444444444444";
        assert_eq!(
            list_url(
                DEFAULT_ARM,
                sub,
                Some("testrg"),
                "Microsoft.AzureArcData/sqlManagedInstances",
                "2026-01-01"
            )
            .unwrap(),
            "https://management.azure.com/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/testrg/providers/Microsoft.AzureArcData/sqlManagedInstances?api-version=2026-01-01"
        );
        let u = |sub: &str, rg| list_url(DEFAULT_ARM, sub, rg, "Microsoft.X/y", "1");
        assert!(u("../x", None).is_err());
        assert!(u(sub, Some("rg/../../x")).is_err());
        assert!(u(sub, Some("rg?a=b")).is_err());
        assert!(!is_subscription("00000000x1111-2222-3333-444444444444"));
    }
}
