//! An Arc SQL Managed Instance as the Kubernetes API (`SqlManagedInstance`) or ARM
//! (`Microsoft.AzureArcData/sqlManagedInstances`, whose `properties.k8sRaw` carries the
//! resource's spec) describe it, read without trusting the answer's shape: a name that
//! is not a Kubernetes name is refused (the item is skipped with a warning), numbers out
//! of range and texts with control characters read as unknown.
//!
//! The fields read: `metadata.{name,namespace}`, `spec.tier`, `spec.replicas`,
//! `spec.backup.retentionPeriodInDays` (0 turns the built-in backups off; absent means
//! the default, 7), `status.state` (`Ready` when serving), `status.primaryEndpoint` (or
//! `status.endpoints.primary`, where later versions of the data services put it),
//! `status.readyReplicas`. ARM adds `sku.tier` and the resource id.

use rehydra_plugin_sdk::host::{self, Level};
use rehydra_plugin_sdk::prelude::*;
use serde_json::Value;

use crate::names::{is_label, list, shown};
use crate::{arm, kube};
use rehydra_plugin_sdk::rest::{endpoint, number, text};

/// Retention of the built-in backups when the spec does not say.
pub const DEFAULT_RETENTION_DAYS: u64 = 7;
/// Where the instance's own backups are, in its pod.
pub const BUILT_IN_FOLDER: &str = "/var/opt/mssql/backups";

/// What the plugin knows of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    /// Kubernetes namespace; ARM does not always say.
    pub namespace: Option<String>,
    pub name: String,
    pub tier: Option<String>,
    pub replicas: Option<u64>,
    /// `spec.backup.retentionPeriodInDays`, if the spec has it.
    pub retention_days: Option<u64>,
    pub state: Option<String>,
    pub endpoint: Option<String>,
    pub ready_replicas: Option<String>,
    pub arm_id: Option<String>,
}

impl Instance {
    /// `<namespace>/<name>`, or the name alone when the namespace is unknown.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Days of built-in backups kept (the default when the spec does not say).
    pub fn retention(&self) -> u64 {
        self.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS)
    }

    /// Replicas (1 when the spec does not say).
    pub fn replica_count(&self) -> u64 {
        self.replicas.unwrap_or(1)
    }

    pub fn ready(&self) -> Option<bool> {
        self.state
            .as_deref()
            .map(|s| s.eq_ignore_ascii_case("Ready"))
    }

    fn spec(&mut self, spec: &Value) {
        self.tier = text(&spec["tier"], 64).map(str::to_string);
        self.replicas = number(&spec["replicas"], 64);
        self.retention_days = number(&spec["backup"]["retentionPeriodInDays"], 3650);
    }

    fn status(&mut self, status: &Value) {
        self.state = text(&status["state"], 64).map(str::to_string);
        // `endpoints.primary` in later versions (a `primaryEndpoint` an upgrade left is older)
        self.endpoint = text(&status["endpoints"]["primary"], 256)
            .or_else(|| text(&status["primaryEndpoint"], 256))
            .map(str::to_string);
        self.ready_replicas = text(&status["readyReplicas"], 32).map(str::to_string);
    }
}

/// An instance from a `SqlManagedInstance` item of namespace `ns`.
///
/// # Errors
/// `invalid-input` when its name or namespace is not a Kubernetes name, or its namespace
/// is not the one listed.
pub fn from_cr(ns: &str, v: &Value) -> Result<Instance> {
    let name = v["metadata"]["name"].as_str().unwrap_or_default();
    let item_ns = v["metadata"]["namespace"].as_str().unwrap_or(ns);
    if !is_label(name) || item_ns != ns {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "a SqlManagedInstance of namespace {ns} is named `{}` in namespace `{}`: not a Kubernetes name of this namespace; skipped",
                shown(name, 80),
                shown(item_ns, 80)
            ),
        ));
    }
    let mut i = Instance {
        namespace: Some(ns.to_string()),
        name: name.to_string(),
        ..Instance::default()
    };
    i.spec(&v["spec"]);
    i.status(&v["status"]);
    Ok(i)
}

/// An instance from an ARM resource. Its name is the last segment of its id (the
/// examples' `name` differs from it); the namespace is `k8sRaw.metadata.namespace` when
/// ARM carries it.
///
/// # Errors
/// `invalid-input` when the id is missing or its last segment is not a plausible name.
pub fn from_arm(v: &Value) -> Result<Instance> {
    let id = text(&v["id"], 1024).unwrap_or_default();
    let name = id.rsplit('/').next().unwrap_or_default();
    let ok = id.starts_with("/subscriptions/")
        && !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !ok {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "an ARM sqlManagedInstance has the id `{}`, not one of a resource with a Kubernetes name; skipped",
                shown(id, 200)
            ),
        ));
    }
    let raw = &v["properties"]["k8sRaw"];
    let ns = raw["metadata"]["namespace"]
        .as_str()
        .filter(|n| is_label(n));
    let mut i = Instance {
        namespace: ns.map(str::to_string),
        name: name.to_string(),
        arm_id: Some(id.to_string()),
        ..Instance::default()
    };
    i.spec(&raw["spec"]);
    i.status(&raw["status"]);
    if i.tier.is_none() {
        i.tier = text(&v["sku"]["tier"], 64).map(str::to_string);
    }
    Ok(i)
}

/// Add the ARM instances to those from Kubernetes: the same instance (namespace when ARM
/// knows it, name in any case) gains the ARM id and what it lacked; others are added.
pub fn merge(mut from_kube: Vec<Instance>, from_arm: Vec<Instance>) -> Vec<Instance> {
    for a in from_arm {
        let same = from_kube.iter_mut().find(|k| {
            k.name.eq_ignore_ascii_case(&a.name)
                && a.namespace
                    .as_ref()
                    .is_none_or(|n| Some(n) == k.namespace.as_ref())
        });
        match same {
            Some(k) => {
                k.arm_id = a.arm_id;
                if k.tier.is_none() {
                    k.tier = a.tier;
                }
            }
            None => from_kube.push(a),
        }
    }
    from_kube
}

/// The instances the settings name: `kube` + `namespaces`, and/or `subscriptions` (+
/// `resource-groups`, `arm`). Items that cannot be trusted are skipped with a warning.
///
/// # Errors
/// Neither source set, malformed settings, or a list the service refused.
pub fn collect(s: &[Property]) -> Result<Vec<Instance>> {
    let kube_url = setting(s, "kube").filter(|v| !v.is_empty());
    let subs = list(setting_or(s, "subscriptions", ""));
    if kube_url.is_none() && subs.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "say where the instances are: kube=<API server URL> with namespaces=<ns,…>, and/or subscriptions=<id,…> for Azure Resource Manager",
        ));
    }
    let mut found = Vec::new();
    if let Some(k) = kube_url {
        let base = endpoint("kube", k)?;
        let namespaces = list(setting_or(s, "namespaces", ""));
        if namespaces.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "`namespaces` is required with kube: the namespaces whose SqlManagedInstances to list, e.g. namespaces=arc",
            ));
        }
        for ns in &namespaces {
            let ns = crate::names::label("namespace", ns)?;
            let what = format!("listing SqlManagedInstances of namespace {ns}");
            for item in
                rehydra_plugin_sdk::kube::list(&kube::instances_url(&base, ns), &what, kube::hint)?
            {
                match from_cr(ns, &item) {
                    Ok(i) => found.push(i),
                    Err(e) => host::log(Level::Warn, &e.message),
                }
            }
        }
    }
    let mut from_arm_list = Vec::new();
    if !subs.is_empty() {
        let base = endpoint("arm", setting_or(s, "arm", arm::DEFAULT_ARM))?;
        let groups = list(setting_or(s, "resource-groups", ""));
        for sub in &subs {
            let urls = if groups.is_empty() {
                vec![arm::instances_url(&base, sub, None)?]
            } else {
                groups
                    .iter()
                    .map(|g| arm::instances_url(&base, sub, Some(g)))
                    .collect::<Result<Vec<_>>>()?
            };
            for url in urls {
                let what = format!("listing Arc SQL Managed Instances of subscription {sub}");
                for item in arm::list(&url, &what)? {
                    match from_arm(&item) {
                        Ok(i) => from_arm_list.push(i),
                        Err(e) => host::log(Level::Warn, &e.message),
                    }
                }
            }
        }
    }
    Ok(merge(found, from_arm_list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hostile_resources_are_refused_or_read_as_unknown() {
        for name in ["../x", "a/b", "x;rm -rf /", "A", "a\u{0}b", ""] {
            let v = json!({"metadata": {"name": name, "namespace": "arc"}});
            assert!(from_cr("arc", &v).is_err(), "{name:?}");
        }
        let other_ns = json!({"metadata": {"name": "mi", "namespace": "kube-system"}});
        assert!(from_cr("arc", &other_ns).is_err());
        let v = json!({"metadata": {"name": "mi", "namespace": "arc"},
            "spec": {"replicas": 1_000_000, "tier": "x\u{1b}[2J", "backup": {"retentionPeriodInDays": -1}},
            "status": {"state": ["Ready"], "primaryEndpoint": "10.0.0.4,31433"}});
        let i = from_cr("arc", &v).unwrap();
        assert_eq!(
            (
                i.replicas,
                i.tier.clone(),
                i.retention_days,
                i.state.clone()
            ),
            (None, None, None, None)
        );
        assert_eq!(i.endpoint.as_deref(), Some("10.0.0.4,31433"));
        assert_eq!(i.retention(), DEFAULT_RETENTION_DAYS);
        let later = json!({"metadata": {"name": "mi", "namespace": "arc"},
            "status": {"endpoints": {"primary": "10.0.0.9,31433", "mirroring": "10.0.0.9:5022"},
                "primaryEndpoint": "10.0.0.4,31433"}});
        assert_eq!(
            from_cr("arc", &later).unwrap().endpoint.as_deref(),
            Some("10.0.0.9,31433")
        );
    }
}
