//! The kubernetes plugin end to end through the CLI, against two Kubernetes API server
//! stand-ins (`support/kube_standin.py`: the official discovery documents, paging with
//! `continue` and its 410, label selectors, 404/409/422 as the API server words them,
//! claims that bind only to a storage class that exists, workloads that become ready
//! only once what they mount exists), and a Velero backup made here from Velero's
//! documented layout.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{self, Cli, StandIn, json_out};

/// The Entra server app every AKS cluster's API server accepts tokens for.
pub(crate) const AKS_AUDIENCE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";

/// The CLI with the kubernetes plugin installed and a repository to keep its restore
/// points in.
pub(crate) fn kube_cli() -> Cli {
    if !support::plugins_built().join("kubernetes.wasm").is_file() {
        panic!("build the plugins first: cargo xtask plugins");
    }
    let cli = Cli::new(&["kubernetes"]);
    cli.init_repo();
    cli
}

/// One API server stand-in.
pub(crate) struct Cluster {
    s: StandIn,
    pub(crate) url: String,
}

impl std::ops::Deref for Cluster {
    type Target = StandIn;
    fn deref(&self) -> &StandIn {
        &self.s
    }
}

impl Cluster {
    pub(crate) fn start(dir: &Path, host: &str, state: &Value) -> Self {
        let s = StandIn::start("kube_standin.py", dir, &[host], state);
        let url = s.url("url");
        Self { s, url }
    }
    /// The object of `kind` called `name` (in `ns`).
    pub(crate) fn object(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        self.state()["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| {
                o["kind"] == kind
                    && o["metadata"]["name"] == name
                    && o["metadata"]["namespace"].as_str() == ns
            })
            .cloned()
    }
    pub(crate) fn grant(&self) -> String {
        format!("http:{}", self.url.trim_start_matches("http://"))
    }
    pub(crate) fn kube(&self) -> String {
        format!("kube={}", self.url)
    }
}

fn meta(name: &str, ns: Option<&str>) -> Value {
    let mut m = json!({"name": name, "uid": format!("uid-{name}"), "resourceVersion": "100",
        "creationTimestamp": "2026-11-01T08:00:00Z", "labels": {"app": "shop"}});
    if let Some(ns) = ns {
        m["namespace"] = ns.into();
    }
    m
}

fn class(name: &str, provisioner: &str) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
        "provisioner": provisioner, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"})
}

/// Cluster A: a shop (deployment, service, config map, secret, claim with data) in its
/// namespace, what its controllers made, and the cluster's own namespaces.
pub(crate) fn cluster_a() -> Value {
    let ns = |n: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(n, None), "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
    let mut pvc_meta = meta("data", Some("shop"));
    pvc_meta["annotations"] = json!({"pv.kubernetes.io/bind-completed": "yes"});
    let mut rs_meta = meta("web-7d4b9c", Some("shop"));
    rs_meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "uid-web", "controller": true}]);
    let mut cache = meta("cache-settings", Some("shop"));
    cache["labels"] = json!({"app": "cache"});
    let mut objects = vec![
        ns("shop"),
        ns("kube-system"),
        ns("default"),
        class("fast", "disk.csi.akshci.com"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("web-config", Some("shop")), "data": {"greeting": "hello from A"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": cache, "data": {"ttl": "60"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": "shop"}, "data": {"ca.crt": "PEM"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("web-secret", Some("shop")), "type": "Opaque", "data": {"password": "czNjcjN0"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "default-token-x", "namespace": "shop"}, "type": "kubernetes.io/service-account-token", "data": {}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": pvc_meta,
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast", "resources": {"requests": {"storage": "5Gi"}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("web", Some("shop")),
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "selector": {"app": "shop"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": rs_meta, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "shop"}}, "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}),
    ];
    let web = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web", Some("shop")),
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {
                "containers": [{"name": "web", "image": "nginx:1.27",
                    "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "web-secret", "key": "password"}}}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "config", "mountPath": "/etc/web"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "config", "configMap": {"name": "web-config"}}]}}}});
    objects.push(web);
    json!({"objects": objects, "page": 2, "service_cidr": "10.96.", "ready_after_gets": 1})
}

/// Cluster B: empty but for its own storage class (another name), which binds a claim
/// only once a pod uses it.
pub(crate) fn cluster_b() -> Value {
    let mut late = class("aks-hci-disk", "disk.csi.akshci.com");
    late["volumeBindingMode"] = "WaitForFirstConsumer".into();
    json!({"objects": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
        late,
    ], "page": 2, "service_cidr": "10.97.", "ready_after_gets": 1})
}

fn prop(a: &Value, n: &str) -> String {
    a["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == n)
        .map(|p| p["value"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The JSON of a run that succeeded, with warnings (exit 3) or without.
pub(crate) fn done(o: &std::process::Output) -> Value {
    assert!(
        matches!(o.status.code(), Some(0 | 3)),
        "{:?}: {}",
        o.status.code(),
        text(o)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

pub(crate) fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A Velero backup folder as Velero keeps it in its bucket, made with `tar`.
pub(crate) fn velero_backup(dir: &Path) -> PathBuf {
    let name = "nightly-20261102010000";
    let folder = dir.join("backups").join(name);
    let stage = dir.join("stage");
    let put = |rel: &str, v: &Value| {
        let p = stage.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, serde_json::to_vec(v).unwrap()).unwrap();
    };
    // what Velero writes: whole objects, status and all, also under the preferred version
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ledger-config", "namespace": "legacy", "uid": "u1", "resourceVersion": "5"}, "data": {"mode": "classic"}});
    let cm_pref = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ledger-config", "namespace": "legacy", "uid": "u1", "resourceVersion": "5"}, "data": {"mode": "preferred"}});
    put(
        "resources/configmaps/namespaces/legacy/ledger-config.json",
        &cm,
    );
    put(
        "resources/configmaps/v1-preferredversion/namespaces/legacy/ledger-config.json",
        &cm_pref,
    );
    put(
        "resources/namespaces/cluster/legacy.json",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy", "uid": "u2"}, "status": {"phase": "Active"}}),
    );
    put(
        "resources/deployments.apps/namespaces/legacy/ledger.json",
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ledger", "namespace": "legacy", "generation": 4},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "ledger"}}, "template": {"metadata": {"labels": {"app": "ledger"}},
                "spec": {"containers": [{"name": "ledger", "image": "ledger:2"}], "volumes": [{"name": "c", "configMap": {"name": "ledger-config"}}]}}},
            "status": {"readyReplicas": 1}}),
    );
    put(
        "resources/pods/namespaces/legacy/ledger-5f6d-abcde.json",
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ledger-5f6d-abcde", "namespace": "legacy",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "ledger-5f6d", "controller": true}]}, "spec": {"nodeName": "moc-l1"}}),
    );
    // a full-cluster backup also holds cluster-wide objects no namespace owns
    put(
        "resources/clusterrolebindings.rbac.authorization.k8s.io/cluster/admin-for-all.json",
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "admin-for-all"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]}),
    );
    std::fs::create_dir_all(stage.join("metadata")).unwrap();
    std::fs::write(stage.join("metadata/version"), "1.1.0\n").unwrap();
    std::fs::create_dir_all(&folder).unwrap();
    let st = Command::new("tar")
        .arg("czf")
        .arg(folder.join(format!("{name}.tar.gz")))
        .arg("-C")
        .arg(&stage)
        .args(["metadata", "resources"])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(
        folder.join("velero-backup.json"),
        serde_json::to_vec(&json!({"kind": "Backup", "apiVersion": "velero.io/v1",
            "metadata": {"name": name, "namespace": "velero"},
            "spec": {"includedNamespaces": ["legacy"], "snapshotVolumes": true, "ttl": "720h0m0s"},
            "status": {"version": 1, "formatVersion": "1.1.0", "phase": "Completed",
                "startTimestamp": "2026-11-02T01:00:00Z", "completionTimestamp": "2026-11-02T01:00:41Z"}}))
        .unwrap(),
    )
    .unwrap();
    folder
}

#[test]
#[allow(clippy::too_many_lines)]
fn a_namespace_backed_up_from_one_cluster_is_restored_into_another_and_velero_backups_imported() {
    let cli = kube_cli();
    let a = Cluster::start(&cli.dir.path().join("a"), "127.0.0.3", &cluster_a());
    let b = Cluster::start(&cli.dir.path().join("b"), "127.0.0.4", &cluster_b());
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "kubernetes",
            "engine",
            &a.grant(),
            &b.grant(),
        ],
    );
    let run = |args: &[&str]| {
        let mut v = vec!["--json", "plugins", "run", "kubernetes"];
        v.extend(args);
        cli.run(None, &v)
    };
    let (ka, kb) = (a.kube(), b.kube());

    // ---- no AKS audience for the API server yet: 401, and what to do about it
    let o = run(&["discover", "--set", &ka, "--set", "cluster=aks-a"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("401") && t.contains("audience add"), "{t}");
    for host in ["127.0.0.3", "127.0.0.4"] {
        cli.ok(None, &["azure", "audience", "add", host, AKS_AUDIENCE]);
    }

    // ---- discover and assess
    let assets = json_out(&run(&["discover", "--set", &ka, "--set", "cluster=aks-a"]));
    let find = |id: &str| {
        assets
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id}: {assets}"))
    };
    assert_eq!(
        prop(&find("aks-a"), "storage-classes"),
        "fast=disk.csi.akshci.com"
    );
    let shop = find("aks-a/shop");
    assert_eq!(prop(&shop, "claims"), "1");
    assert_eq!(prop(&shop, "workloads"), "1");
    assert_eq!(prop(&shop, "csi-drivers"), "disk.csi.akshci.com");
    assert_eq!(prop(&find("aks-a/kube-system"), "system"), "true");
    let findings = json_out(&run(&["assess", "--set", &ka, "--set", "cluster=aks-a"])).to_string();
    assert!(findings.contains("kubernetes.volume-data"), "{findings}");
    assert!(
        findings.contains("kubernetes.no-snapshot-class"),
        "{findings}"
    );

    // ---- back up the namespace; the first list's continue token expires on the way
    a.edit(|s| s["expire_continue"] = true.into());
    let backup = |extra: &[&str]| {
        let mut v = vec![
            "backup",
            "--asset",
            "aks-a/shop",
            "--set",
            &ka,
            "--set",
            "cluster=aks-a",
        ];
        v.extend(extra);
        done(&run(&v))
    };
    let first = backup(&[]);
    let snap = first.get("restore_point").unwrap_or(&first)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = first.to_string();
    assert!(
        out.contains("claim shop/data (5Gi): its data is not in this restore point"),
        "{out}"
    );
    assert!(
        a.calls()
            .iter()
            .any(|c| c.contains("continue=") && c.ends_with(" 410")),
        "a continue token expired: {:?}",
        a.calls()
    );
    assert!(
        a.calls()
            .iter()
            .filter(|c| c.contains("continue=") && c.ends_with(" 200"))
            .count()
            > 0,
        "lists are read in pages"
    );
    let items_of = |id: &str| {
        let all: Value =
            serde_json::from_str(&cli.ok(None, &["--json", "restore-points"])).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("no {id}: {all}"))["items"]
            .to_string()
    };
    let names = items_of(&snap);
    for want in [
        "kubernetes-index.json",
        "objects/namespaces/_cluster/shop.json",
        "objects/configmaps/shop/web-config.json",
        "objects/configmaps/shop/cache-settings.json",
        "objects/secrets/shop/web-secret.json",
        "objects/persistentvolumeclaims/shop/data.json",
        "objects/services/shop/web.json",
        "objects/deployments.apps/shop/web.json",
    ] {
        assert!(names.contains(want), "{want}: {names}");
    }
    for never in [
        "web-7d4b9c",
        "kube-root-ca.crt",
        "default-token-x",
        "kube-system",
    ] {
        assert!(
            !names.contains(never),
            "{never} is made by the cluster: {names}"
        );
    }
    // stored without what the server owns
    let doc = cli.dir.path().join("web.json");
    cli.ok(
        None,
        &[
            "restore",
            &snap,
            "--item",
            "objects/deployments.apps/shop/web.json",
            "--target",
            doc.to_str().unwrap(),
        ],
    );
    let web: Value = serde_json::from_slice(&std::fs::read(&doc).unwrap()).unwrap();
    assert!(
        web["metadata"].get("uid").is_none() && web.get("status").is_none(),
        "{web}"
    );
    assert_eq!(web["apiVersion"], "apps/v1");

    // ---- unchanged: another backup adds next to nothing (the first one saw the claim
    // before its controller bound it; the second one after)
    backup(&[]);
    let again = backup(&[]);
    let new_bytes = |v: &Value| {
        v.get("restore_point").unwrap_or(v)["new_bytes"]
            .as_u64()
            .unwrap()
    };
    let documents: u64 = again["restore_point"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["name"].as_str().unwrap().starts_with("objects/"))
        .map(|i| i["size"].as_u64().unwrap())
        .sum();
    assert!(
        new_bytes(&again) * 2 < new_bytes(&first) && new_bytes(&again) < documents,
        "unchanged objects dedup (only the point's own metadata is new): {again}"
    );

    // ---- a label-selected backup holds only what matches (and its namespace)
    let sel = backup(&["--set", "labels=app=cache"]);
    let sel_id = sel.get("restore_point").unwrap_or(&sel)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let names = items_of(&sel_id);
    assert!(
        names.contains("cache-settings") && !names.contains("web-config"),
        "{names}"
    );
    assert!(
        names.contains("objects/namespaces/_cluster/shop.json"),
        "{names}"
    );

    // ---- restore into another namespace of cluster B: planned first, and blocked while
    // the storage class does not exist there
    let restore = |extra: &[&str]| {
        let mut v = vec![
            "restore",
            &snap,
            "--target",
            "-",
            "--set",
            &kb,
            "--set",
            "namespace-map=shop=shop-dr",
            "--set",
            "wait-secs=20",
        ];
        v.extend(extra);
        run(&v)
    };
    let o = restore(&["--plan-only"]);
    let t = text(&o);
    assert!(
        t.contains("storage class `fast` does not exist") && t.contains("aks-hci-disk"),
        "{t}"
    );
    let o = restore(&[]);
    assert!(!o.status.success(), "a blocked restore does not start");
    assert!(
        b.object("Namespace", None, "shop-dr").is_none(),
        "nothing written"
    );
    let map = "storage-class-map=fast=aks-hci-disk";
    let plan = done(&restore(&["--set", map, "--plan-only"])).to_string();
    for step in ["namespaces", "storage", "config", "services", "workloads"] {
        assert!(plan.contains(&format!("\"{step}\"")), "{step}: {plan}");
    }
    assert!(
        b.object("Namespace", None, "shop-dr").is_none(),
        "a plan writes nothing"
    );
    let restored = done(&restore(&["--set", map])).to_string();
    assert!(restored.contains("created"), "{restored}");
    assert!(
        !restored.contains("claims not bound"),
        "a claim whose class binds on first use is not waited for before its pod: {restored}"
    );
    let ns = b
        .object("Namespace", None, "shop-dr")
        .expect("namespace created");
    assert_eq!(ns["status"]["phase"], "Active");
    let cm = b
        .object("ConfigMap", Some("shop-dr"), "web-config")
        .unwrap();
    assert_eq!(cm["data"]["greeting"], "hello from A");
    let secret = b.object("Secret", Some("shop-dr"), "web-secret").unwrap();
    assert_eq!(secret["data"]["password"], "czNjcjN0");
    let svc = b.object("Service", Some("shop-dr"), "web").unwrap();
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.97."),
        "the target assigns its own cluster IP: {svc}"
    );
    let pvc = b
        .object("PersistentVolumeClaim", Some("shop-dr"), "data")
        .unwrap();
    assert_eq!(pvc["spec"]["storageClassName"], "aks-hci-disk");
    assert_eq!(pvc["status"]["phase"], "Bound");
    let dep = b.object("Deployment", Some("shop-dr"), "web").unwrap();
    assert_eq!(dep["status"]["readyReplicas"], 2, "{dep}");
    assert!(
        b.object("ReplicaSet", Some("shop-dr"), "web-7d4b9c")
            .is_none()
    );
    // claims before the workloads that mount them
    let calls = b.calls();
    let pos = |needle: &str| {
        calls
            .iter()
            .position(|c| c.starts_with("POST") && c.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {calls:?}"))
    };
    assert!(pos("/namespaces ") < pos("/persistentvolumeclaims"));
    assert!(pos("/persistentvolumeclaims") < pos("/configmaps"));
    assert!(pos("/configmaps") < pos("/deployments"));

    // ---- again: everything exists and is left alone; with consent, replaced (not the claim)
    b.edit(|s| {
        for o in s["objects"].as_array_mut().unwrap() {
            if o["kind"] == "ConfigMap" && o["metadata"]["name"] == "web-config" {
                o["data"]["greeting"] = "changed on B".into();
            }
        }
    });
    let again = done(&restore(&["--set", map])).to_string();
    assert!(again.contains("left as they are"), "{again}");
    assert_eq!(
        b.object("ConfigMap", Some("shop-dr"), "web-config")
            .unwrap()["data"]["greeting"],
        "changed on B"
    );
    let replaced = done(&restore(&["--set", map, "--set", "existing=replace"])).to_string();
    assert!(
        replaced.contains("claims and volumes hold data"),
        "{replaced}"
    );
    assert_eq!(
        b.object("ConfigMap", Some("shop-dr"), "web-config")
            .unwrap()["data"]["greeting"],
        "hello from A"
    );

    // ---- one object only, into the same cluster it came from, after it was deleted there
    a.edit(|s| {
        s["objects"]
            .as_array_mut()
            .unwrap()
            .retain(|o| !(o["kind"] == "ConfigMap" && o["metadata"]["name"] == "web-config"));
    });
    let one = done(&run(&[
        "restore",
        &snap,
        "--target",
        "-",
        "--set",
        &ka,
        "--set",
        "objects=configmaps/shop/web-config",
    ]))
    .to_string();
    assert!(one.contains("1 object(s) created"), "{one}");
    assert!(a.object("ConfigMap", Some("shop"), "web-config").is_some());
    let o = run(&[
        "restore",
        &snap,
        "--target",
        "-",
        "--set",
        &ka,
        "--set",
        "objects=configmaps/shop/nope",
    ]);
    assert!(!o.status.success() && text(&o).contains("not in this restore point"));

    // ---- last month's Velero backup imported, and restored through the same plan
    let velero = velero_backup(&cli.dir.path().join("velero"));
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "kubernetes",
            &format!("files:{}", cli.dir.path().join("velero").display()),
        ],
    );
    let folder = format!("velero={}", velero.display());
    let imported = done(&run(&["backup", "--asset", "aks-a", "--set", &folder])).to_string();
    assert!(
        imported
            .contains("imported Velero backup nightly-20261102010000 taken 2026-11-02T01:00:00Z"),
        "{imported}"
    );
    let vid = serde_json::from_str::<Value>(&imported).unwrap();
    let vid = vid.get("restore_point").unwrap_or(&vid)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let names = items_of(&vid);
    assert!(
        names.contains("objects/deployments.apps/legacy/ledger.json"),
        "{names}"
    );
    assert!(
        !names.contains("ledger-5f6d-abcde"),
        "pods a controller owns are left out: {names}"
    );
    let velero_plan = done(&run(&[
        "restore",
        &vid,
        "--target",
        "-",
        "--set",
        &kb,
        "--set",
        "namespaces=legacy",
        "--plan-only",
    ]))
    .to_string();
    assert!(
        !velero_plan.contains("admin-for-all") && velero_plan.contains("ledger"),
        "restoring a namespace brings no cluster-wide object it does not own: {velero_plan}"
    );
    done(&run(&[
        "restore",
        &vid,
        "--target",
        "-",
        "--set",
        &kb,
        "--set",
        "wait-secs=20",
        "--set",
        "namespaces=legacy",
    ]));
    assert_eq!(
        b.object("ConfigMap", Some("legacy"), "ledger-config")
            .unwrap()["data"]["mode"],
        "preferred",
        "the preferred version's copy is the one restored"
    );
    let ledger = b.object("Deployment", Some("legacy"), "ledger").unwrap();
    assert_eq!(ledger["status"]["readyReplicas"], 1, "{ledger}");
    // a Velero backup that did not complete is not imported
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(velero.join("velero-backup.json")).unwrap()).unwrap();
    doc["status"]["phase"] = "Failed".into();
    std::fs::write(velero.join("velero-backup.json"), doc.to_string()).unwrap();
    let o = run(&["backup", "--asset", "aks-a", "--set", &folder]);
    assert!(
        !o.status.success() && text(&o).contains("is Failed"),
        "{}",
        text(&o)
    );
}
