//! Kubernetes objects as the restore point keeps them, and as a restore writes them.
//!
//! [`clean`] removes what the API server owns (status, uid, resourceVersion,
//! managedFields …) before an object is stored; [`keep`] says which objects are worth
//! storing at all (not those a controller makes and would make again); [`for_target`]
//! rewrites a stored object for the cluster and namespace it is restored into.
//! [`Stage`] is the order a restore follows.

use std::collections::BTreeMap;

use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::shown;
use serde_json::{Map, Value, json};

/// Metadata fields the API server sets; never stored, never sent back.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Annotations a claim gets from its binding; a restored claim binds anew.
const BINDING_ANNOTATIONS: &[&str] = &[
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/selected-node",
];

/// Longest object name accepted (a DNS subdomain's limit).
const NAME_MAX: usize = 253;

/// An object name that may go into a URL path and an item name: 1 to 253 printable
/// characters, no `/` or `%`, not `.` or `..` (the API server's own rule for names in
/// paths).
pub fn is_name(s: &str) -> bool {
    (1..=NAME_MAX).contains(&s.len())
        && !s
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '%' || c.is_whitespace())
        && s != "."
        && s != ".."
}

/// `name` and `namespace` of an object, checked.
///
/// # Errors
/// `invalid-input` when either is missing or malformed.
pub fn identity(obj: &Value, namespaced: bool) -> Result<(Option<String>, String)> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if !is_name(name) {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("an object has a malformed name `{}`", shown(name, 80)),
        ));
    }
    let ns = if namespaced {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        rehydra_plugin_sdk::kube::label("the namespace of an object", ns)?;
        Some(ns.to_string())
    } else {
        None
    };
    Ok((ns, name.to_string()))
}

/// The uid the API server gave `obj` (empty when it sent none, or an odd one).
pub fn uid(obj: &Value) -> String {
    rehydra_plugin_sdk::rest::text(&obj["metadata"]["uid"], 128)
        .unwrap_or_default()
        .to_string()
}

/// The metadata of an object made for a while to copy claim `ns/claim` (a copy pod, a
/// VolumeSnapshot, a claim made from one): named `rehydra-…`, with the marks
/// [`is_ours`] knows it by.
pub fn ours(name: &str, ns: &str, claim: &str) -> Value {
    json!({
        "name": name,
        "namespace": ns,
        "labels": {"app.kubernetes.io/managed-by": "rehydra"},
        "annotations": {"rehydra.io/claim": claim},
    })
}

/// Was `obj` made by a backup or restore to copy a claim ([`ours`])? Never stored.
pub fn is_ours(obj: &Value) -> bool {
    let m = &obj["metadata"];
    matches!(
        obj["kind"].as_str(),
        Some("Pod" | "PersistentVolumeClaim" | "VolumeSnapshot")
    ) && m["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("rehydra-"))
        && m["labels"]["app.kubernetes.io/managed-by"] == "rehydra"
        && m["annotations"]["rehydra.io/claim"].is_string()
}

/// Is this object worth storing? Not when a controller owns it (a Deployment's
/// ReplicaSets and Pods, a CronJob's Jobs: the owner is stored and makes them again), nor
/// the token secrets and CA bundle the cluster makes in every namespace, nor a copy pod, a
/// VolumeSnapshot or a claim made from one of ours ([`crate::volumes`], [`crate::csi`]).
pub fn keep(obj: &Value) -> bool {
    let controlled = obj["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| o.iter().any(|r| r["controller"].as_bool() == Some(true)));
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let made_by_cluster = (kind == "Secret"
        && obj["type"] == "kubernetes.io/service-account-token")
        || (kind == "ConfigMap" && name == "kube-root-ca.crt");
    // a copy pod, or a VolumeSnapshot of a claim and the claim made from it (volume data), of
    // another backup running or left behind by a failed clean-up
    !controlled && !made_by_cluster && !is_ours(obj)
}

/// `obj` without what the API server owns, with its `apiVersion` and `kind` (a list's
/// items come without them).
pub fn clean(mut obj: Value, api_version: &str, kind: &str) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
        m.insert("apiVersion".into(), api_version.into());
        m.insert("kind".into(), kind.into());
    }
    if let Some(meta) = obj["metadata"].as_object_mut() {
        for f in SERVER_METADATA {
            meta.remove(*f);
        }
    }
    obj
}

/// The item that holds an object: `objects/<resource[.group]>/<namespace>/<name>.json`,
/// or `objects/<resource[.group]>/_cluster/<name>.json` for a cluster-scoped one (no
/// namespace can be called `_cluster`).
pub fn item(key: &str, ns: Option<&str>, name: &str) -> String {
    format!("objects/{key}/{}/{name}.json", ns.unwrap_or("_cluster"))
}

/// When an object is restored: what it needs exists by then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// CustomResourceDefinitions: the types the rest may be.
    Definitions,
    Namespaces,
    /// PersistentVolumes and claims, then the wait for claims to bind.
    Storage,
    /// Accounts, roles, config maps, secrets, quotas.
    Config,
    Services,
    /// Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, unowned Pods and ReplicaSets.
    Workloads,
    /// Everything else (Ingresses, autoscalers, custom resources …).
    Other,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Definitions,
        Stage::Namespaces,
        Stage::Storage,
        Stage::Config,
        Stage::Services,
        Stage::Workloads,
        Stage::Other,
    ];

    pub fn of(group: &str, kind: &str) -> Stage {
        match (group, kind) {
            ("apiextensions.k8s.io", "CustomResourceDefinition") => Stage::Definitions,
            ("", "Namespace") => Stage::Namespaces,
            ("", "PersistentVolume" | "PersistentVolumeClaim") => Stage::Storage,
            ("", "ServiceAccount" | "ConfigMap" | "Secret" | "LimitRange" | "ResourceQuota")
            | ("rbac.authorization.k8s.io", _) => Stage::Config,
            ("", "Service") => Stage::Services,
            ("apps", _) | ("batch", _) | ("", "Pod" | "ReplicationController") => Stage::Workloads,
            _ => Stage::Other,
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Stage::Definitions => "definitions",
            Stage::Namespaces => "namespaces",
            Stage::Storage => "storage",
            Stage::Config => "config",
            Stage::Services => "services",
            Stage::Workloads => "workloads",
            Stage::Other => "other",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Stage::Definitions => "Create custom resource definitions",
            Stage::Namespaces => "Create namespaces",
            Stage::Storage => {
                "Create persistent volumes and claims, and wait for the claims to bind"
            }
            Stage::Config => "Create service accounts, roles, config maps and secrets",
            Stage::Services => "Create services",
            Stage::Workloads => "Create workloads, and wait for them to become ready",
            Stage::Other => "Create the remaining objects",
        }
    }
}

/// `old=new` pairs, comma-separated; both sides checked with `check`.
///
/// # Errors
/// `invalid-input` naming the setting and the pair.
pub fn pairs(
    setting: &str,
    value: &str,
    check: fn(&str) -> bool,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p.split_once('=').map(|(a, b)| (a.trim(), b.trim())) {
            Some((a, b)) if check(a) && check(b) => {
                out.insert(a.to_string(), b.to_string());
            }
            _ => {
                return Err(Error::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "{setting}: `{}` is not old=new with two Kubernetes names, e.g. shop=shop-dr",
                        shown(p, 80)
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// How objects change on their way into the target.
#[derive(Default)]
pub struct Remap {
    pub namespaces: BTreeMap<String, String>,
    pub storage_classes: BTreeMap<String, String>,
}

impl Remap {
    pub fn namespace<'a>(&'a self, ns: &'a str) -> &'a str {
        self.namespaces.get(ns).map_or(ns, String::as_str)
    }

    pub fn storage_class<'a>(&'a self, sc: &'a str) -> &'a str {
        self.storage_classes.get(sc).map_or(sc, String::as_str)
    }
}

fn remove_all(m: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        m.remove(*k);
    }
}

/// A stored object rewritten for the target: its namespace (and the namespaces it names)
/// and storage class mapped, and what the source cluster assigned removed, since the
/// target assigns its own: a Service's cluster IPs and node ports, a claim's volume and
/// binding annotations (`bound_volumes`: the PersistentVolumes this restore also creates,
/// whose claims keep their volume), a Pod's node, owner references (their uids are the
/// source's) and finalizers; a PersistentVolume is retained when released, whatever the
/// source said.
pub fn for_target(stored: &Value, remap: &Remap, bound_volumes: &[String]) -> Value {
    let mut obj = clean(
        stored.clone(),
        stored["apiVersion"].as_str().unwrap_or_default(),
        stored["kind"].as_str().unwrap_or_default(),
    );
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let group = obj["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit_once('/'))
        .map_or("", |(g, _)| g)
        .to_string();
    if let Some(meta) = obj["metadata"].as_object_mut() {
        remove_all(meta, &["ownerReferences", "finalizers"]);
        if let Some(ns) = meta.get("namespace").and_then(Value::as_str) {
            let to = remap.namespace(ns).to_string();
            meta.insert("namespace".into(), to.into());
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            remove_all(a, BINDING_ANNOTATIONS);
        }
    }
    match (group.as_str(), kind.as_str()) {
        ("", "Namespace") => {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            let to = remap.namespace(name).to_string();
            obj["metadata"]["name"] = to.into();
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
            }
        }
        ("", "Service") => {
            if let Some(spec) = obj["spec"].as_object_mut() {
                let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
                if !headless {
                    remove_all(spec, &["clusterIP", "clusterIPs"]);
                }
                spec.remove("healthCheckNodePort");
                for p in spec
                    .get_mut("ports")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(p) = p.as_object_mut() {
                        p.remove("nodePort");
                    }
                }
            }
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = obj["spec"].as_object_mut() {
                let keep_volume = spec
                    .get("volumeName")
                    .and_then(Value::as_str)
                    .is_some_and(|v| bound_volumes.iter().any(|b| b == v));
                if !keep_volume {
                    spec.remove("volumeName");
                }
                if let Some(sc) = spec.get("storageClassName").and_then(Value::as_str) {
                    let to = remap.storage_class(sc).to_string();
                    spec.insert("storageClassName".into(), to.into());
                }
            }
        }
        ("", "PersistentVolume") => {
            if let Some(spec) = obj["spec"].as_object_mut() {
                if let Some(c) = spec.get_mut("claimRef").and_then(Value::as_object_mut) {
                    remove_all(c, &["uid", "resourceVersion"]);
                    if let Some(ns) = c.get("namespace").and_then(Value::as_str) {
                        let to = remap.namespace(ns).to_string();
                        c.insert("namespace".into(), to.into());
                    }
                }
                if let Some(sc) = spec.get("storageClassName").and_then(Value::as_str) {
                    let to = remap.storage_class(sc).to_string();
                    spec.insert("storageClassName".into(), to.into());
                }
                // deleting the restored copy must never delete the storage behind it
                spec.insert("persistentVolumeReclaimPolicy".into(), "Retain".into());
            }
        }
        ("", "Pod") => {
            if let Some(spec) = obj["spec"].as_object_mut() {
                spec.remove("nodeName");
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            for s in obj["subjects"].as_array_mut().into_iter().flatten() {
                if let Some(ns) = s["namespace"].as_str() {
                    let to = remap.namespace(ns).to_string();
                    s["namespace"] = to.into();
                }
            }
        }
        _ => {}
    }
    obj
}

/// The claims (`claimName`s) a workload's pod template (or a Pod) mounts.
pub fn claims_of(obj: &Value) -> Vec<String> {
    let spec = if obj["kind"] == "Pod" {
        &obj["spec"]
    } else if obj["kind"] == "CronJob" {
        &obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    } else {
        &obj["spec"]["template"]["spec"]
    };
    spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .map(str::to_string)
        .collect()
}

/// Is a workload ready, from its `status`? (`None`: a kind that has no readiness.)
pub fn ready(obj: &Value) -> Option<bool> {
    let st = &obj["status"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    match obj["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let want = obj["spec"]["replicas"].as_u64().unwrap_or(1);
            let seen = n(&st["observedGeneration"]) >= n(&obj["metadata"]["generation"]);
            Some(seen && n(&st["readyReplicas"]) >= want)
        }
        "DaemonSet" => Some(
            n(&st["desiredNumberScheduled"]) > 0
                && n(&st["numberReady"]) >= n(&st["desiredNumberScheduled"]),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_objects_lose_what_the_server_owns() {
        let o = json!({"metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "9",
            "generation": 3, "creationTimestamp": "t", "managedFields": [{}], "labels": {"app": "web"}},
            "spec": {"replicas": 2}, "status": {"readyReplicas": 2}});
        let c = clean(o, "apps/v1", "Deployment");
        assert_eq!(
            c,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}}, "spec": {"replicas": 2}})
        );
    }

    #[test]
    fn what_controllers_make_is_not_kept() {
        let owned = json!({"kind": "Pod", "metadata": {"name": "web-1", "ownerReferences": [{"kind": "ReplicaSet", "controller": true}]}});
        let bare = json!({"kind": "Pod", "metadata": {"name": "debug"}});
        let token = json!({"kind": "Secret", "type": "kubernetes.io/service-account-token", "metadata": {"name": "t"}});
        let ca = json!({"kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"}});
        assert!(!keep(&owned) && keep(&bare) && !keep(&token) && !keep(&ca));
        // what a backup of volume data makes for a while, and a user's look-alike
        let marks = json!({"labels": {"app.kubernetes.io/managed-by": "rehydra"}, "annotations": {"rehydra.io/claim": "data"}});
        for kind in ["Pod", "PersistentVolumeClaim", "VolumeSnapshot"] {
            let mut o = json!({"kind": kind, "metadata": marks.clone()});
            o["metadata"]["name"] = "rehydra-00112233aabbccdd".into();
            assert!(!keep(&o), "{kind}");
            o["metadata"]["labels"] = json!({});
            assert!(keep(&o), "{kind} without our label is the user's");
        }
    }

    #[test]
    fn restored_objects_are_mapped_and_lose_what_the_source_assigned() {
        let remap = Remap {
            namespaces: [("shop".to_string(), "shop-dr".to_string())].into(),
            storage_classes: [("fast".to_string(), "aks-hci".to_string())].into(),
        };
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop",
            "ownerReferences": [{"uid": "x"}], "finalizers": ["f"]},
            "spec": {"clusterIP": "10.96.4.4", "clusterIPs": ["10.96.4.4"], "type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}});
        let s = for_target(&svc, &remap, &[]);
        assert_eq!(
            s["metadata"],
            json!({"name": "web", "namespace": "shop-dr"})
        );
        assert_eq!(
            s["spec"],
            json!({"type": "NodePort", "ports": [{"port": 80}]})
        );
        let headless = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "x"}, "spec": {"clusterIP": "None"}});
        assert_eq!(
            for_target(&headless, &remap, &[])["spec"]["clusterIP"],
            "None"
        );
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop", "annotations": {"pv.kubernetes.io/bind-completed": "yes", "keep": "me"}},
            "spec": {"storageClassName": "fast", "volumeName": "pvc-123", "resources": {"requests": {"storage": "1Gi"}}}});
        let p = for_target(&pvc, &remap, &[]);
        assert_eq!(p["spec"]["storageClassName"], "aks-hci");
        assert!(p["spec"].get("volumeName").is_none());
        assert_eq!(p["metadata"]["annotations"], json!({"keep": "me"}));
        assert_eq!(
            for_target(&pvc, &remap, &["pvc-123".into()])["spec"]["volumeName"],
            "pvc-123"
        );
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}, "spec": {"finalizers": ["kubernetes"]}});
        assert_eq!(for_target(&ns, &remap, &[])["metadata"]["name"], "shop-dr");
        let rb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "r", "namespace": "shop"},
            "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "shop"}, {"kind": "User", "name": "u"}]});
        let r = for_target(&rb, &remap, &[]);
        assert_eq!(r["subjects"][0]["namespace"], "shop-dr");
        assert!(r["subjects"][1].get("namespace").is_none());
    }

    #[test]
    fn stages_follow_what_objects_need() {
        assert!(Stage::of("", "Namespace") < Stage::of("", "PersistentVolumeClaim"));
        assert!(Stage::of("", "PersistentVolumeClaim") < Stage::of("", "Secret"));
        assert!(Stage::of("", "ConfigMap") < Stage::of("apps", "Deployment"));
        assert_eq!(Stage::of("networking.k8s.io", "Ingress"), Stage::Other);
        assert_eq!(
            Stage::of("apiextensions.k8s.io", "CustomResourceDefinition"),
            Stage::Definitions
        );
    }

    #[test]
    fn names_that_could_leave_a_path_are_refused() {
        for ok in ["web", "system:controller:x", "a.b"] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a%2f",
            "a\nb",
            "a b",
            &"x".repeat(254),
        ] {
            assert!(!is_name(bad), "{bad:?}");
        }
        assert_eq!(
            pairs(
                "namespace-map",
                "shop=shop-dr, a=b",
                rehydra_plugin_sdk::kube::is_label
            )
            .unwrap()
            .len(),
            2
        );
        assert!(pairs("namespace-map", "shop", rehydra_plugin_sdk::kube::is_label).is_err());
        assert!(
            pairs(
                "namespace-map",
                "shop=../x",
                rehydra_plugin_sdk::kube::is_label
            )
            .is_err()
        );
    }

    #[test]
    fn readiness_reads_the_status() {
        let d = |ready: u64| {
            json!({"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "readyReplicas": ready}})
        };
        assert_eq!(ready(&d(2)), Some(true));
        assert_eq!(ready(&d(1)), Some(false));
        assert_eq!(ready(&json!({"kind": "ConfigMap"})), None);
        let pod = json!({"kind": "Deployment", "spec": {"template": {"spec": {"volumes": [{"persistentVolumeClaim": {"claimName": "data"}}, {"configMap": {"name": "c"}}]}}}});
        assert_eq!(claims_of(&pod), vec!["data".to_string()]);
    }
}
