//! Which token scope an Azure host wants.
//!
//! The plugin host adds a bearer token only to requests for hosts that map to a scope
//! here; any other host gets no token.

/// Exact host names and their scopes.
const EXACT: &[(&str, &str)] = &[
    (
        "management.azure.com",
        "https://management.azure.com/.default",
    ),
    (
        "management.usgovcloudapi.net",
        "https://management.usgovcloudapi.net/.default",
    ),
    (
        "management.chinacloudapi.cn",
        "https://management.chinacloudapi.cn/.default",
    ),
];

/// Host suffixes (each below a label of its own) and their scopes.
const SUFFIX: &[(&str, &str)] = &[
    // Key Vault and Managed HSM
    (".vault.azure.net", "https://vault.azure.net/.default"),
    (
        ".vault.usgovcloudapi.net",
        "https://vault.usgovcloudapi.net/.default",
    ),
    (".vault.azure.cn", "https://vault.azure.cn/.default"),
    (
        ".managedhsm.azure.net",
        "https://managedhsm.azure.net/.default",
    ),
    (
        ".managedhsm.usgovcloudapi.net",
        "https://managedhsm.usgovcloudapi.net/.default",
    ),
    (
        ".managedhsm.azure.cn",
        "https://managedhsm.azure.cn/.default",
    ),
    // Storage: one audience in every cloud
    (".blob.core.windows.net", STORAGE),
    (".dfs.core.windows.net", STORAGE),
    (".blob.core.usgovcloudapi.net", STORAGE),
    (".dfs.core.usgovcloudapi.net", STORAGE),
    (".blob.core.chinacloudapi.cn", STORAGE),
    (".dfs.core.chinacloudapi.cn", STORAGE),
    // AKS API servers with Entra ID integration (the AKS server application)
    (".azmk8s.io", AKS),
];

const STORAGE: &str = "https://storage.azure.com/.default";
const AKS: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";

/// Whether `scope` is one of the Azure services' own scopes above (Key Vault, Storage,
/// ARM …): services that check a token before they act on a request.
pub fn is_service_scope(scope: &str) -> bool {
    EXACT.iter().chain(SUFFIX).any(|(_, s)| *s == scope)
}

/// The token scope for an Azure host, or `None` when the host is not one we add tokens
/// to. Case-insensitive; a trailing dot and a `:port` are ignored.
///
/// `management.azure.com` → `https://management.azure.com/.default`; `*.vault.azure.net`
/// → `https://vault.azure.net/.default`; `*.blob.core.windows.net` and
/// `*.dfs.core.windows.net` → `https://storage.azure.com/.default`; `*.azmk8s.io` →
/// `6dae42f8-4368-4678-94ff-3960e28e3630/.default`; likewise for Managed HSM and the US
/// Government and China clouds.
pub fn scope_for(host: &str) -> Option<&'static str> {
    let host = strip_port(host).trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return None;
    }
    if let Some((_, scope)) = EXACT.iter().find(|(h, _)| *h == host) {
        return Some(scope);
    }
    SUFFIX.iter().find_map(|(suffix, scope)| {
        let label = host.strip_suffix(suffix)?;
        (!label.is_empty() && !label.ends_with('.')).then_some(*scope)
    })
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::scope_for;

    #[test]
    fn public_cloud_hosts() {
        assert_eq!(
            scope_for("management.azure.com"),
            Some("https://management.azure.com/.default")
        );
        assert_eq!(
            scope_for("MyVault.Vault.Azure.Net"),
            Some("https://vault.azure.net/.default")
        );
        assert_eq!(
            scope_for("acct.blob.core.windows.net:443"),
            Some("https://storage.azure.com/.default")
        );
        assert_eq!(
            scope_for("acct.dfs.core.windows.net."),
            Some("https://storage.azure.com/.default")
        );
        assert_eq!(
            scope_for("myaks-dns-1a2b3c.hcp.westeurope.azmk8s.io"),
            Some("6dae42f8-4368-4678-94ff-3960e28e3630/.default")
        );
    }

    #[test]
    fn sovereign_clouds() {
        assert_eq!(
            scope_for("kv.vault.usgovcloudapi.net"),
            Some("https://vault.usgovcloudapi.net/.default")
        );
        assert_eq!(
            scope_for("kv.vault.azure.cn"),
            Some("https://vault.azure.cn/.default")
        );
        assert_eq!(
            scope_for("management.chinacloudapi.cn"),
            Some("https://management.chinacloudapi.cn/.default")
        );
        assert_eq!(
            scope_for("a.blob.core.usgovcloudapi.net"),
            Some("https://storage.azure.com/.default")
        );
    }

    #[test]
    fn look_alikes_get_nothing() {
        for host in [
            "vault.azure.net",
            ".vault.azure.net",
            "evilvault.azure.net",
            "x.vault.azure.net.evil.com",
            "management.azure.com.evil.com",
            "xmanagement.azure.com",
            "blob.core.windows.net",
            "a..blob.core.windows.net",
            "user@kv.vault.azure.net",
            "example.com",
            "",
        ] {
            assert_eq!(scope_for(host), None, "{host}");
        }
    }
}
