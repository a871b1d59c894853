//! The bearer challenge an Azure service answers a request with when it wants another
//! token (`WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/{tenant}",
//! resource="https://vault.azure.net"`): which tenant and which scope it asks for.
//!
//! Key Vault names `authorization` and `resource` (or `scope`), Storage
//! `authorization_uri` and `resource_id` without commas between them. Only the tenant is
//! taken from the authority URL; tokens are always asked of the configured authority.

/// What a bearer challenge asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The tenant id or domain of the authority URL (`None`: none, or `common` /
    /// `organizations`, which name no tenant).
    pub tenant: Option<String>,
    /// The token scope asked for (`resource` + `/.default` when the challenge names a
    /// resource).
    pub scope: Option<String>,
}

impl Challenge {
    /// The `Bearer` challenge in `header` (one `WWW-Authenticate` value, or several joined
    /// with commas; other schemes' challenges are skipped); `None` when there is none.
    pub fn parse(header: &str) -> Option<Self> {
        let params = bearer_params(header)?;
        let get = |names: &[&str]| {
            params
                .iter()
                .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
                .map(|(_, v)| v.as_str())
        };
        let tenant = get(&["authorization", "authorization_uri"]).and_then(tenant_of);
        let scope = get(&["scope"])
            .and_then(|s| s.split_whitespace().next())
            .map(str::to_owned)
            .or_else(|| {
                get(&["resource", "resource_id"])
                    .filter(|r| !r.is_empty())
                    .map(|r| format!("{}/.default", r.trim_end_matches('/')))
            });
        Some(Self { tenant, scope })
    }
}

/// A tenant id (a GUID) or domain (`contoso.onmicrosoft.com`): what may stand in a token
/// endpoint's path and an `az --tenant` argument.
pub fn is_tenant(tenant: &str) -> bool {
    (1..=253).contains(&tenant.len())
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && tenant.starts_with(|c: char| c.is_ascii_alphanumeric())
}

/// The parameters of the first `Bearer` challenge: `key=value` and `key="quoted value"`
/// (with `\` escapes) pairs separated by commas or spaces, up to the next scheme.
fn bearer_params(s: &str) -> Option<Vec<(String, String)>> {
    let mut rest = s;
    let mut out: Option<Vec<(String, String)>> = None;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            return out;
        }
        // a token followed by a space (or the end) starts a challenge of that scheme
        let word_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        if !rest[word_end..].starts_with('=') {
            if out.is_some() {
                return out;
            }
            if rest[..word_end].eq_ignore_ascii_case("bearer") {
                out = Some(Vec::new());
            }
            rest = &rest[word_end..];
            continue;
        }
        let key = &rest[..word_end];
        let after = &rest[word_end + 1..];
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => quoted_string(quoted),
            None => {
                let end = after
                    .find(|c: char| c == ',' || c.is_whitespace())
                    .unwrap_or(after.len());
                (after[..end].to_owned(), &after[end..])
            }
        };
        if let Some(params) = out.as_mut() {
            params.push((key.to_owned(), value));
        }
        rest = after;
    }
}

/// A quoted string's value (after its opening quote) and what follows its closing one.
fn quoted_string(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => return (value, &s[i + 1..]),
            c => value.push(c),
        }
    }
    (value, "")
}

/// The tenant of an authority URL: its first path segment, when it names one (lower case).
fn tenant_of(authority: &str) -> Option<String> {
    let url = url::Url::parse(authority).ok()?;
    if url.scheme() != "https" {
        return None;
    }
    let first = url.path_segments()?.next()?;
    let named = !first.is_empty()
        && !["common", "organizations", "consumers"]
            .iter()
            .any(|n| first.eq_ignore_ascii_case(n));
    (named && is_tenant(first)).then(|| first.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(tenant: Option<&str>, scope: Option<&str>) -> Option<Challenge> {
        Some(Challenge {
            tenant: tenant.map(str::to_owned),
            scope: scope.map(str::to_owned),
        })
    }

    #[test]
    fn key_vault_storage_and_arm_challenges() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#
            ),
            ch(
                Some("72f988bf-86f1-41af-91ab-2d7cd011db47"),
                Some("https://vault.azure.net/.default")
            )
        );
        assert_eq!(
            Challenge::parse(
                "Bearer authorization_uri=https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/authorize resource_id=https://storage.azure.com"
            ),
            ch(
                Some("contoso.onmicrosoft.com"),
                Some("https://storage.azure.com/.default")
            )
        );
        assert_eq!(
            Challenge::parse(
                r#"Bearer authorization="https://login.microsoftonline.com/t1/", scope="https://vault.azure.net/.default""#
            ),
            ch(Some("t1"), Some("https://vault.azure.net/.default"))
        );
        assert_eq!(
            Challenge::parse(
                r#"Bearer authorization_uri="https://login.windows.net/", error="invalid_token""#
            ),
            ch(None, None)
        );
    }

    #[test]
    fn the_bearer_challenge_among_others_quotes_and_escapes() {
        // another scheme first, then Bearer; a quoted comma and an escaped quote stay
        // inside their value; the next scheme ends Bearer's parameters
        let h = r#"PoP nonce="a, b", Bearer realm="x\"y, z", authorization="https://login.microsoftonline.com/T1", resource="https://vault.azure.net", Basic authorization="https://login.microsoftonline.com/t2""#;
        assert_eq!(
            Challenge::parse(h),
            ch(Some("t1"), Some("https://vault.azure.net/.default"))
        );
        assert_eq!(Challenge::parse(r#"Basic realm="a", PoP nonce="b""#), None);
    }

    #[test]
    fn what_names_no_tenant_names_none() {
        for authority in [
            "https://login.microsoftonline.com/common",
            "https://login.microsoftonline.com/organizations/",
            "http://login.microsoftonline.com/t1",
            "https://login.microsoftonline.com/..%2Fx",
            "https://login.microsoftonline.com/-otsv",
            "not a url",
        ] {
            let header = format!(
                r#"Bearer authorization="{authority}", resource="https://vault.azure.net""#
            );
            assert_eq!(
                Challenge::parse(&header).unwrap().tenant,
                None,
                "{authority}"
            );
        }
        assert_eq!(Challenge::parse(r#"Basic realm="x""#), None);
        assert_eq!(Challenge::parse("Bearer"), ch(None, None));
        assert_eq!(
            Challenge::parse(r#"Bearer realm="unterminated"#),
            ch(None, None)
        );
    }

    #[test]
    fn tenants_are_ids_or_domains() {
        for good in [
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "contoso.onmicrosoft.com",
        ] {
            assert!(is_tenant(good), "{good}");
        }
        let long = "a".repeat(254);
        for bad in [
            "",
            "../x",
            "a/b",
            "a?b",
            "a b",
            ".x",
            "-otsv",
            "--debug",
            "t%2F",
            long.as_str(),
        ] {
            assert!(!is_tenant(bad), "{bad}");
        }
    }
}
