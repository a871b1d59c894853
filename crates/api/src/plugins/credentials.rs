//! Static credentials for hosts that are not Azure (`REHYDRA_HTTP_AUTH_<HOST>`).

use super::*;

/// Credentials from the environment: `REHYDRA_HTTP_AUTH_<HOST>` holds the whole
/// `Authorization` value for that host (`management.azure.com` → `..._MANAGEMENT_AZURE_COM`).
/// Values are passed to requests and never logged or shown to plugins.
///
/// The name is built so that two hosts never share a variable: the host must be a valid
/// RFC 1123 name (labels of letters, digits and inner hyphens, dot-separated, optionally
/// `:port`); `.` becomes `_`, `-` becomes `__`, `:` becomes `___`, letters are uppercased
/// (`a-b.example` → `A__B_EXAMPLE`, `a.b.example` → `A_B_EXAMPLE`). Hosts that are not
/// valid names (IPv6 literals, `_` in a label, a trailing dot …) get no credentials.
pub struct EnvCredentials;

impl EnvCredentials {
    /// The variable consulted for `host` (`name[:port]`), or `None` for a host that is not
    /// a valid RFC 1123 name (and so never gets credentials).
    #[must_use]
    pub fn variable(host: &str) -> Option<String> {
        let (name, port) = match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return None;
        }
        if let Some(p) = port
            && (p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let mut v = String::from("REHYDRA_HTTP_AUTH_");
        for c in host.chars() {
            match c {
                '.' => v.push('_'),
                '-' => v.push_str("__"),
                ':' => v.push_str("___"),
                c => v.push(c.to_ascii_uppercase()),
            }
        }
        Some(v)
    }

    /// The `Authorization` value for `host` from `env` (a variable lookup).
    pub(super) fn lookup(host: &str, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        Self::variable(host)
            .and_then(|v| env(&v))
            .filter(|v| !v.is_empty())
    }
}

impl host::Credentials for EnvCredentials {
    fn authorization(&self, host: &str) -> std::result::Result<Option<String>, String> {
        Ok(Self::lookup(host, |v| std::env::var(v).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_variables_are_unambiguous() {
        let v = |h: &str| EnvCredentials::variable(h);
        assert_eq!(
            v("management.azure.com").as_deref(),
            Some("REHYDRA_HTTP_AUTH_MANAGEMENT_AZURE_COM"),
            "the variable of ordinary hosts is unchanged"
        );
        assert_eq!(
            v("127.0.0.1").as_deref(),
            Some("REHYDRA_HTTP_AUTH_127_0_0_1")
        );
        assert_eq!(
            v("a-b.example").as_deref(),
            Some("REHYDRA_HTTP_AUTH_A__B_EXAMPLE")
        );
        assert_eq!(
            v("a.b.example").as_deref(),
            Some("REHYDRA_HTTP_AUTH_A_B_EXAMPLE")
        );
        assert_ne!(v("management-azure.com"), v("management.azure.com"));
        assert_eq!(
            v("h.example:8443").as_deref(),
            Some("REHYDRA_HTTP_AUTH_H_EXAMPLE___8443")
        );
        assert_ne!(v("a--b.c"), v("a.b.c"));
        for bad in [
            "", "-a.b", "a-.b", "a..b", "a.b.", "a_b.c", "[::1]", "a.b:", "a.b:x", "a b",
        ] {
            assert_eq!(v(bad), None, "{bad:?} gets no credentials");
        }
        // a request to the hyphenated host does not carry the dotted host's token
        let env = |var: &str| {
            (var == "REHYDRA_HTTP_AUTH_MANAGEMENT_AZURE_COM").then(|| "Bearer arm".to_string())
        };
        assert_eq!(
            EnvCredentials::lookup("management.azure.com", env).as_deref(),
            Some("Bearer arm")
        );
        assert_eq!(EnvCredentials::lookup("management-azure.com", env), None);
        assert_eq!(EnvCredentials::lookup("management_azure.com", env), None);
    }
}
