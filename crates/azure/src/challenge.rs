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
    /// The challenge in `header` (a `WWW-Authenticate` value); `None` unless it is a
    /// `Bearer` one.
    pub fn parse(header: &str) -> Option<Self> {
        let (scheme, rest) = header.trim_start().split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = params(rest);
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

/// `key=value` and `key="quoted value"` pairs, separated by commas or spaces.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some((key, after)) = rest.split_once('=') else {
            return out;
        };
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((v, a)) => (v, a),
                None => (quoted, ""),
            },
            None => after
                .split_once(|c: char| c == ',' || c.is_whitespace())
                .unwrap_or((after, "")),
        };
        out.push((key.trim().to_owned(), value.to_owned()));
        rest = after;
    }
}

/// The tenant of an authority URL: its first path segment, when it names one.
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
    (named && crate::sources::valid_tenant(first)).then(|| first.to_owned())
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
    fn what_names_no_tenant_names_none() {
        for authority in [
            "https://login.microsoftonline.com/common",
            "https://login.microsoftonline.com/organizations/",
            "http://login.microsoftonline.com/t1",
            "https://login.microsoftonline.com/..%2Fx",
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
        assert_eq!(Challenge::parse("Bearer"), None);
        assert_eq!(
            Challenge::parse(r#"Bearer realm="unterminated"#),
            ch(None, None)
        );
    }
}
