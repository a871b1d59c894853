//! What a cluster serves, from the API server's discovery documents (`/api`, `/api/v1`,
//! `/apis`, `/apis/<group>/<version>`), and the URLs of its collections and objects.
//!
//! Only the preferred version of each group is used, as kubectl and Velero do. A group
//! whose document cannot be read (an aggregated API whose server is down answers 503) is
//! left out with a warning instead of failing the whole backup. Every name from an
//! answer is checked before it reaches a URL.

use rehydra_plugin_sdk::kube;
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{encode, shown, text};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One resource type the cluster serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiResource {
    /// API group (`""` for the core group).
    pub group: String,
    pub version: String,
    /// Plural name (`deployments`).
    pub resource: String,
    pub kind: String,
    pub namespaced: bool,
}

impl ApiResource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `configmaps` or `deployments.apps`: how Velero and kubectl name a type.
    pub fn key(&self) -> String {
        type_key(&self.resource, &self.group)
    }

    fn base(&self, server: &str) -> String {
        if self.group.is_empty() {
            format!("{server}/api/{}", self.version)
        } else {
            format!("{server}/apis/{}/{}", self.group, self.version)
        }
    }

    /// The collection in namespace `ns` (namespaced types), or the cluster's.
    pub fn collection(&self, server: &str, ns: Option<&str>) -> String {
        match ns.filter(|_| self.namespaced) {
            Some(ns) => format!(
                "{}/namespaces/{}/{}",
                self.base(server),
                encode(ns),
                self.resource
            ),
            None => format!("{}/{}", self.base(server), self.resource),
        }
    }

    /// One object.
    pub fn object(&self, server: &str, ns: Option<&str>, name: &str) -> String {
        format!("{}/{}", self.collection(server, ns), encode(name))
    }
}

/// `resource` or `resource.group`.
pub fn type_key(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// A plural resource name: 1 to 63 lower-case letters, digits, `-`.
pub fn is_resource(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A version of an API group (`v1`, `v1beta1`): 1 to 63 lower-case letters and digits.
pub fn is_version(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A group name: a DNS subdomain (`apps`, `storage.k8s.io`).
fn is_group(s: &str) -> bool {
    kube::is_subdomain(s)
}

/// Types that are not backed up: they are made by the cluster itself, or are records of
/// what happened rather than what should be.
pub const SKIPPED: &[&str] = &[
    "events",
    "events.events.k8s.io",
    "endpoints",
    "endpointslices.discovery.k8s.io",
    "leases.coordination.k8s.io",
    "componentstatuses",
    "nodes",
    "nodes.metrics.k8s.io",
    "pods.metrics.k8s.io",
    "csinodes.storage.k8s.io",
    "volumeattachments.storage.k8s.io",
    "apiservices.apiregistration.k8s.io",
    "certificatesigningrequests.certificates.k8s.io",
];

/// What the API server `server` serves: every type with `get`, `list` and `create`
/// (the ones that can be backed up and restored), and the warnings for groups left out.
///
/// # Errors
/// The core documents cannot be read (the server is unreachable or refuses us).
pub fn discover(server: &str) -> Result<(Vec<ApiResource>, Vec<String>)> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let core = document(
        &format!("{server}/api"),
        "reading the API server's versions",
    )?;
    let has_v1 = core["versions"]
        .as_array()
        .is_some_and(|v| v.iter().any(|x| x.as_str() == Some("v1")));
    if !has_v1 {
        return Err(Error::new(
            ErrorCode::Failed,
            format!("{server}/api does not offer v1: is this a Kubernetes API server?"),
        ));
    }
    let list = document(
        &format!("{server}/api/v1"),
        "reading the core API's resources",
    )?;
    out.extend(resources("", "v1", &list));
    let groups = document(&format!("{server}/apis"), "reading the API groups")?;
    for g in groups["groups"].as_array().into_iter().flatten() {
        let (Some(name), Some(version)) = (
            text(&g["name"], 253).filter(|n| is_group(n)),
            text(&g["preferredVersion"]["version"], 63).filter(|v| is_version(v)),
        ) else {
            warnings.push(format!(
                "an API group with a malformed name or version was left out ({})",
                shown(&g["name"].to_string(), 80)
            ));
            continue;
        };
        match document(
            &format!("{server}/apis/{name}/{version}"),
            &format!("reading the resources of {name}/{version}"),
        ) {
            Ok(list) => out.extend(resources(name, version, &list)),
            Err(e) => warnings.push(format!(
                "API group {name}/{version} left out: {}",
                e.message
            )),
        }
    }
    Ok((out, warnings))
}

fn document(url: &str, what: &str) -> Result<Value> {
    kube::get(url, what, hint)?.ok_or_else(|| {
        Error::new(
            ErrorCode::NotFound,
            format!(
                "{what}: the API server answered 404 for {}",
                shown(url, 160)
            ),
        )
    })
}

/// The backup-and-restorable types of one `APIResourceList`.
fn resources(group: &str, version: &str, list: &Value) -> Vec<ApiResource> {
    let mut out = Vec::new();
    for r in list["resources"].as_array().into_iter().flatten() {
        let verbs: Vec<&str> = r["verbs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let (Some(resource), Some(kind)) = (text(&r["name"], 63), text(&r["kind"], 63)) else {
            continue;
        };
        // subresources (`deployments/scale`) hold a `/` and are not types of their own
        if !is_resource(resource)
            || !kind.chars().all(|c| c.is_ascii_alphanumeric())
            || !["get", "list", "create"].iter().all(|v| verbs.contains(v))
        {
            continue;
        }
        out.push(ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            resource: resource.to_string(),
            kind: kind.to_string(),
            namespaced: r["namespaced"].as_bool().unwrap_or(false),
        });
    }
    out
}

/// What to tell the admin about a failing status.
pub fn hint(status: u16) -> &'static str {
    match status {
        401 => {
            "the API server did not accept the host's credentials: for AKS on Azure Local with Entra, rehydra azure audience add <api-server host> 6dae42f8-4368-4678-94ff-3960e28e3630/.default"
        }
        403 => {
            "the identity the host signs in with may not do this: give it a role that can get, list and create these resources (cluster-admin, or a role built for backups)"
        }
        _ => "",
    }
}

/// The type of `resource[.group]` among `types`.
pub fn find<'a>(types: &'a [ApiResource], key: &str) -> Option<&'a ApiResource> {
    types.iter().find(|t| t.key() == key)
}

/// The type that serves `kind` in `group` (at whatever version the cluster prefers).
pub fn by_kind<'a>(types: &'a [ApiResource], group: &str, kind: &str) -> Option<&'a ApiResource> {
    types.iter().find(|t| t.group == group && t.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_official_discovery_documents_give_the_restorable_types() {
        let core: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/aks-kubernetes/api__v1.json"
        ))
        .unwrap();
        let apps: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/aks-kubernetes/apis__apps__v1.json"
        ))
        .unwrap();
        let mut t = resources("", "v1", &core);
        t.extend(resources("apps", "v1", &apps));
        let keys: Vec<String> = t.iter().map(ApiResource::key).collect();
        for k in [
            "configmaps",
            "secrets",
            "services",
            "persistentvolumeclaims",
            "persistentvolumes",
            "namespaces",
            "deployments.apps",
            "statefulsets.apps",
        ] {
            assert!(keys.contains(&k.to_string()), "{k}: {keys:?}");
        }
        // create-only and read-only types, and subresources, are not types to back up
        for k in [
            "bindings",
            "componentstatuses",
            "pods/log",
            "deployments/scale",
        ] {
            assert!(!keys.contains(&k.to_string()), "{k}");
        }
        let d = find(&t, "deployments.apps").unwrap();
        assert_eq!(d.kind, "Deployment");
        assert_eq!(d.api_version(), "apps/v1");
        assert_eq!(
            d.object("https://k:6443", Some("shop"), "web"),
            "https://k:6443/apis/apps/v1/namespaces/shop/deployments/web"
        );
        let ns = find(&t, "namespaces").unwrap();
        assert!(!ns.namespaced);
        assert_eq!(
            ns.object("https://k:6443", Some("ignored"), "shop"),
            "https://k:6443/api/v1/namespaces/shop"
        );
        assert_eq!(by_kind(&t, "", "Secret").unwrap().resource, "secrets");
    }

    #[test]
    fn names_from_answers_are_encoded_in_urls() {
        let t = ApiResource {
            group: "rbac.authorization.k8s.io".into(),
            version: "v1".into(),
            resource: "clusterroles".into(),
            kind: "ClusterRole".into(),
            namespaced: false,
        };
        assert_eq!(
            t.object("https://k", None, "system:aggregate-to-edit/../x"),
            "https://k/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Aaggregate-to-edit%2F..%2Fx"
        );
    }
}
