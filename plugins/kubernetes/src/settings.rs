//! Settings shared by the verbs: the API server, the cluster's name in asset ids, lists.

use std::time::Duration;

use rehydra_plugin_sdk::kube::is_label;
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{endpoint, origin, shown};

/// Namespaces a whole-cluster backup leaves out: the cluster's own.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["kube-system", "kube-public", "kube-node-lease", "azure-arc"];

/// The API server of `kube=`.
///
/// # Errors
/// `invalid-input` when it is missing or not a bare `scheme://host[:port]`.
pub fn server(s: &[Property]) -> Result<String> {
    let Some(k) = setting(s, "kube").filter(|v| !v.trim().is_empty()) else {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "say which Kubernetes API server: kube=https://<host>:<port> (and grant it: rehydra plugins grant kubernetes http:<host>:<port>)",
        ));
    };
    endpoint("kube", k)
}

/// A cluster name: 1 to 100 of letters, digits, `-_.:`, starting with a letter or digit.
pub fn is_cluster(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

/// The cluster's name in asset ids: `cluster=`, else the API server's `host-port`.
///
/// # Errors
/// `invalid-input` for a malformed name.
pub fn cluster(s: &[Property], server: &str) -> Result<String> {
    let name = match setting(s, "cluster")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(c) => c.to_string(),
        None => origin(server)
            .unwrap_or_default()
            .split_once("://")
            .map_or(String::new(), |(_, a)| a.replace(':', "-")),
    };
    if is_cluster(&name) {
        Ok(name)
    } else {
        Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "cluster `{}` is not a cluster name (1 to 100 letters, digits and -_.:, starting with a letter or digit)",
                shown(&name, 100)
            ),
        ))
    }
}

/// What an asset id names.
#[derive(Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace but the system ones and those excluded.
    Cluster(String),
    Namespace(String, String),
}

/// Parse `<cluster>` or `<cluster>/<namespace>`.
///
/// # Errors
/// `invalid-input` naming the id and the form.
pub fn scope(id: &str) -> Result<Scope> {
    let bad = || {
        Error::new(
            ErrorCode::InvalidInput,
            format!(
                "asset `{}` is not <cluster> or <cluster>/<namespace> (as discover lists them)",
                shown(id, 120)
            ),
        )
    };
    match id.split_once('/') {
        None if is_cluster(id) => Ok(Scope::Cluster(id.to_string())),
        Some((c, ns)) if is_cluster(c) && is_label(ns) => {
            Ok(Scope::Namespace(c.to_string(), ns.to_string()))
        }
        _ => Err(bad()),
    }
}

/// `wait-secs`: how long to wait for claims, copy pods and workloads (default 300 s).
///
/// # Errors
/// `invalid-input` for anything but 0 to 86400.
pub fn wait(s: &[Property]) -> Result<Duration> {
    let Some(v) = setting(s, "wait-secs")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    else {
        return Ok(Duration::from_secs(300));
    };
    v.parse::<u64>()
        .ok()
        .filter(|n| *n <= 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "wait-secs `{}` is not a number of seconds (0 to 86400)",
                    shown(v, 40)
                ),
            )
        })
}

/// A comma-separated list, trimmed, without empty entries.
pub fn list(s: Option<&str>) -> Vec<String> {
    s.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// Namespaces of `excluded`, checked.
///
/// # Errors
/// `invalid-input` for a name that is not a namespace.
pub fn namespaces(setting_name: &str, value: Option<&str>) -> Result<Vec<String>> {
    let v = list(value);
    for n in &v {
        rehydra_plugin_sdk::kube::label(setting_name, n)?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rehydra_plugin_sdk::mock::props;

    #[test]
    fn asset_ids_name_a_cluster_or_one_of_its_namespaces() {
        assert_eq!(scope("aks-a").unwrap(), Scope::Cluster("aks-a".into()));
        assert_eq!(
            scope("aks-a/shop").unwrap(),
            Scope::Namespace("aks-a".into(), "shop".into())
        );
        for bad in ["", "aks-a/", "aks-a/Shop", "aks a", "a/b/c", "../x"] {
            assert!(scope(bad).is_err(), "{bad}");
        }
        let s = props(&[("kube", "https://10.0.0.5:6443/")]);
        let server = server(&s).unwrap();
        assert_eq!(cluster(&s, &server).unwrap(), "10.0.0.5-6443");
        let s = props(&[("kube", "https://10.0.0.5:6443"), ("cluster", "aks a")]);
        assert!(cluster(&s, "https://10.0.0.5:6443").is_err());
        assert!(
            super::server(&props(&[]))
                .unwrap_err()
                .message
                .contains("kube=")
        );
    }
}
