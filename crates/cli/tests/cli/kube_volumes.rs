//! The files of a claim, backed up from one cluster and restored into a new claim of
//! another (`volume-data=pod`), through the CLI, the host and the plugin against two API
//! server stand-ins whose pods run once their claims bind, and a stand-in kubectl
//! (`support/fake_kubectl.py`) that copies to and from a running pod's mounted volume as
//! `kubectl cp` does.

use std::path::Path;

use serde_json::{Value, json};

use crate::kubernetes::{AKS_AUDIENCE, Cluster, cluster_a, cluster_b, done, kube_cli, text};
use crate::support;

/// `bin/kubectl`: the stand-in, with the contexts naming each cluster's state folder.
pub(crate) fn kubectl(dir: &Path, contexts: &Value) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let ctx = dir.join("contexts.json");
    std::fs::write(&ctx, contexts.to_string()).unwrap();
    let script = support::root().join("crates/cli/tests/cli/support/fake_kubectl.py");
    let body = format!(
        "#!/bin/sh\nexec python3 '{}' '{}' \"$@\"\n",
        script.display(),
        ctx.display()
    );
    std::fs::write(bin.join("kubectl"), body).unwrap();
    let mut p = std::fs::metadata(bin.join("kubectl"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
    std::fs::set_permissions(bin.join("kubectl"), p).unwrap();
    bin
}

/// Every entry under `dir` by relative path: its mode, owner and group, and its bytes (a
/// symbolic link: where it points).
fn files(dir: &Path) -> Vec<(String, u32, u32, u32, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let body = if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .display()
                    .to_string()
                    .into_bytes()
            } else if m.is_dir() {
                stack.push(p.clone());
                Vec::new()
            } else {
                std::fs::read(&p).unwrap()
            };
            out.push((rel, m.mode(), m.uid(), m.gid(), body));
        }
    }
    out.sort();
    out
}

/// Claim `ns/data` of a cluster.
fn claim_in(c: &Cluster, ns: &str) -> Value {
    let st = c.state();
    st["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["kind"] == "PersistentVolumeClaim"
                && o["metadata"]["namespace"] == ns
                && o["metadata"]["name"] == "data"
        })
        .cloned()
        .unwrap_or_else(|| panic!("no claim {ns}/data: {st}"))
}

/// The copy pods are gone.
fn no_pods(c: &Cluster) {
    assert!(pods(c).is_empty(), "the copy pod is deleted: {:?}", pods(c));
}

/// The copy pods of a cluster.
fn pods(c: &Cluster) -> Vec<Value> {
    c.state()["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["kind"] == "Pod"
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("rehydra-copy-"))
        })
        .cloned()
        .collect()
}

#[test]
#[allow(clippy::too_many_lines)]
fn a_claims_files_come_back_in_a_new_claim_on_another_cluster() {
    let cli = kube_cli();
    let dir = cli.dir.path();
    let (da, db) = (dir.join("a"), dir.join("b"));
    let a = Cluster::start(&da, "127.0.0.3", &cluster_a());
    let b = Cluster::start(&db, "127.0.0.4", &cluster_b());
    let bin = kubectl(dir, &json!({"aks-a": da, "aks-b": db}));
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let stage_s = stage.to_str().unwrap();
    for host in ["127.0.0.3", "127.0.0.4"] {
        cli.ok(None, &["azure", "audience", "add", host, AKS_AUDIENCE]);
    }
    let run = |args: &[&str]| {
        let mut v = vec!["--json", "plugins", "run", "kubernetes"];
        v.extend(args);
        cli.run(Some(&bin), &v)
    };
    let (ka, kb) = (a.kube(), b.kube());
    let staging = format!("staging={stage_s}");

    // the application's files, on the volume the claim shop/data binds to
    // and a claim bound to a statically provisioned volume (an NFS export, which another
    // cluster may well use too)
    a.edit(|st| {
        let o = st["objects"].as_array_mut().unwrap();
        o.push(json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "nfs-shared"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"], "storageClassName": "",
                "persistentVolumeReclaimPolicy": "Retain", "nfs": {"server": "10.0.0.9", "path": "/exports/shop"}}}));
        // the deployment's pod, which asks (as Velero's annotations say) for its file
        // system to be frozen while its volume is copied
        o.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-7d4b9c-x2x9q", "namespace": "shop",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c", "uid": "uid-web-7d4b9c", "controller": true}],
                "annotations": {"pre.hook.backup.velero.io/command": "[\"/sbin/fsfreeze\", \"--freeze\", \"/data\"]",
                    "post.hook.backup.velero.io/command": "[\"/sbin/fsfreeze\", \"--unfreeze\", \"/data\"]"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}));
        o.push(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "shared", "namespace": "shop"},
            "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": "nfs-shared",
                "resources": {"requests": {"storage": "1Gi"}}}}));
    });
    let shared = da.join("volumes/nfs-shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("catalog.json"), "{}").unwrap();
    run(&["discover", "--set", &ka, "--set", "cluster=aks-a"]);
    let volume = da.join("volumes/pvc-uid-data");
    std::fs::create_dir_all(volume.join("orders/2026")).unwrap();
    std::fs::write(volume.join("orders/2026/11.csv"), "id,total\n1,9.99\n").unwrap();
    std::fs::write(volume.join("shop.db"), vec![7u8; 300_000]).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", volume.join("escape")).unwrap();
    // a key only its owner (an application user, not root) reads: kept as it is
    let key = volume.join("orders/key.pem");
    std::fs::write(&key, "secret").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // (owned by another user where the test may give files away: as root)
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&key).unwrap()) == 0 {
        std::os::unix::fs::chown(&key, Some(999), Some(999)).unwrap();
        std::os::unix::fs::chown(volume.join("orders"), Some(999), Some(999)).unwrap();
    }

    // ---- without the kubectl grant the objects are stored and the claim's data is not,
    // said by name
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "kubernetes",
            "engine",
            &a.grant(),
            &b.grant(),
            &format!("files:{stage_s}"),
            &format!("files-write:{stage_s}"),
            "command:rm@local",
        ],
    );
    let backup = |extra: &[&str]| {
        let mut v = vec![
            "backup",
            "--asset",
            "aks-a/shop",
            "--set",
            &ka,
            "--set",
            "cluster=aks-a",
            "--set",
            "volume-data=pod",
            "--set",
            &staging,
            "--set",
            "kube-context=aks-a",
        ];
        v.extend(extra);
        done(&run(&v))
    };
    let out = backup(&["--set", "hooks=velero"]).to_string();
    assert!(
        out.contains("claim shop/data (5Gi): its data is not in this restore point")
            && out.contains("command:kubectl@local"),
        "{out}"
    );
    no_pods(&a);

    // ---- granted: the files are stored, through a read-only copy pod that is deleted,
    // and nothing stays in the staging folder
    cli.ok(
        None,
        &["plugins", "grant", "kubernetes", "command:kubectl@local"],
    );
    // an image the node cannot pull: the pod never runs; the claim is named, the pod deleted
    let out = backup(&[
        "--set",
        "hooks=velero",
        "--set",
        "copy-image=registry.local/missing:1",
        "--set",
        "wait-secs=2",
    ])
    .to_string();
    assert!(
        out.contains("did not run within 2 s") && out.contains("ErrImagePull"),
        "{out}"
    );
    no_pods(&a);
    a.clear_calls();
    let first = backup(&["--set", "hooks=velero"]);
    let point = first["restore_point"]["id"].as_str().unwrap().to_string();
    let items = first["restore_point"]["items"].to_string();
    // the pre hook froze the application's file system before the copy, the post hook
    // thawed it after, each in the application's own pod
    let log = std::fs::read_to_string(da.join("exec.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let freeze = lines
        .iter()
        .rposition(|l| {
            l.starts_with("shop/web-7d4b9c-x2x9q/web: [\"/sbin/fsfreeze\", \"--freeze\"")
        })
        .unwrap_or_else(|| panic!("{log}"));
    let after = &lines[freeze + 1..];
    assert!(
        after.len() == 3
            && after[..2]
                .iter()
                .all(|l| l.contains("/rehydra-copy-") && l.contains("[\"tar\", \"-c\""))
            && after[2]
                .starts_with("shop/web-7d4b9c-x2x9q/web: [\"/sbin/fsfreeze\", \"--unfreeze\""),
        "{log}"
    );
    // how many times the exec log holds `what`
    let execs = |what: &str| {
        std::fs::read_to_string(da.join("exec.log"))
            .unwrap()
            .matches(what)
            .count()
    };
    let freezes = || execs("--freeze");
    let before = freezes();
    backup(&[]);
    assert_eq!(freezes(), before, "hooks run only with hooks=velero");
    // a pre hook past its timeout (Velero's annotation) is stopped, and with on-error
    // Fail the claims of its pod are not copied, said by name; the post hook still runs
    let hook = |command: &str, timeout: &str| {
        a.edit(|st| {
            let pod = st["objects"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|o| o["metadata"]["name"] == "web-7d4b9c-x2x9q")
                .unwrap();
            let ann = &mut pod["metadata"]["annotations"];
            ann["pre.hook.backup.velero.io/command"] = command.into();
            ann["pre.hook.backup.velero.io/timeout"] = timeout.into();
        });
    };
    hook("[\"sleep\", \"60\"]", "1s");
    let thaws = || execs("--unfreeze");
    let thawed = thaws();
    let t = std::time::Instant::now();
    let out = backup(&["--set", "hooks=velero"]).to_string();
    assert!(
        out.contains("pre hook of pod shop/web-7d4b9c-x2x9q failed (on-error Fail)")
            && out.contains("timed out after 1 s")
            && out.contains("claim shop/data (5Gi): its data is not in this restore point"),
        "{out}"
    );
    assert!(
        t.elapsed().as_secs() < 50,
        "the hook was stopped: {:?}",
        t.elapsed()
    );
    assert_eq!(thaws(), thawed + 1, "the post hook ran all the same");
    hook("[\"/sbin/fsfreeze\", \"--freeze\", \"/data\"]", "30s");
    assert!(items.contains("volumes/shop/data.tar"), "{first}");
    assert!(!first.to_string().contains("its data is not"), "{first}");
    no_pods(&a);
    assert!(
        std::fs::read_dir(&stage).unwrap().next().is_none(),
        "the staged copy is removed"
    );
    let calls = a.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("POST /api/v1/namespaces/shop/pods"))
            && calls
                .iter()
                .any(|c| c.starts_with("DELETE /api/v1/namespaces/shop/pods/rehydra-copy-")),
        "{calls:?}"
    );

    // ---- into cluster B, namespace shop-dr, another storage class (which binds only once
    // a pod uses the claim): without saying what to do with the files the plan is blocked
    let restore_to = |map: &str, extra: &[&str]| {
        let map = format!("namespace-map=shop={map}");
        let mut v = vec![
            "restore",
            &point,
            "--target",
            "-",
            "--set",
            &kb,
            "--set",
            &map,
            "--set",
            "storage-class-map=fast=aks-hci-disk",
            "--set",
            "wait-secs=20",
        ];
        v.extend(extra);
        run(&v)
    };
    let restore = |extra: &[&str]| restore_to("shop-dr", extra);
    // files through a copy pod, kubectl on cluster B
    let by_pod = [
        "--set",
        "volume-data=pod",
        "--set",
        staging.as_str(),
        "--set",
        "kube-context=aks-b",
    ];
    let o = restore(&["--plan-only"]);
    let t = text(&o);
    assert!(
        t.contains("holds the files of persistentvolumeclaims shop-dr/data")
            && t.contains("volume-data=none"),
        "{t}"
    );
    let plan = done(&restore(&[&["--plan-only"][..], &by_pod].concat())).to_string();
    assert!(
        plan.contains("volume-data") && plan.contains("mounts claim shop-dr/data"),
        "{plan}"
    );
    assert!(pods(&b).is_empty(), "a plan writes nothing");

    // ---- the restore: the claim binds for the copy pod, the files land in its new
    // volume before the deployment, the pod is gone
    let o = restore(&by_pod);
    done(&o);
    let claim = claim_in(&b, "shop-dr");
    assert_eq!(claim["status"]["phase"], "Bound", "{claim}");
    let pv = claim["spec"]["volumeName"].as_str().unwrap();
    let restored = db.join("volumes").join(pv);
    assert_eq!(
        files(&restored),
        files(&volume),
        "the files, byte for byte, with their modes and owners; the link as a link"
    );
    assert!(
        std::fs::symlink_metadata(restored.join("escape"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "a symbolic link is restored as a link, never followed"
    );
    no_pods(&b);
    assert!(std::fs::read_dir(&stage).unwrap().next().is_none());
    let calls = b.calls();
    let copy = calls
        .iter()
        .position(|c| c.starts_with("POST /api/v1/namespaces/shop-dr/pods"))
        .unwrap_or_else(|| panic!("{calls:?}"));
    let deploy = calls
        .iter()
        .position(|c| c.starts_with("POST /apis/apps/v1/namespaces/shop-dr/deployments"))
        .unwrap_or_else(|| panic!("{calls:?}"));
    assert!(copy < deploy, "the files are in before the workloads start");
    // the claim bound to the restored static volume is named, and nothing is written there
    let t = text(&o);
    assert!(
        t.contains("persistentvolumeclaims/shop/shared") && t.contains("statically provisioned"),
        "{t}"
    );
    assert!(
        !db.join("volumes/nfs-shared").exists(),
        "nothing written to the static volume"
    );

    // ---- volume-data=none: the claims come back empty, on purpose, and it is said
    let o = restore_to("shop-empty", &["--set", "volume-data=none"]);
    let out = done(&o).to_string();
    assert!(
        out.contains("with volume-data=none they get new, empty volumes"),
        "{out}"
    );
    let empty = claim_in(&b, "shop-empty")["spec"]["volumeName"]
        .as_str()
        .unwrap_or_else(|| panic!("claim shop-empty/data is not bound"))
        .to_string();
    let dir = db.join("volumes").join(empty);
    assert!(!dir.exists() || files(&dir).is_empty(), "an empty volume");

    // ---- a volume of the class its provisioner made long ago, retained and free again:
    // the controller binds the new claim to it rather than provisioning one. It may hold
    // another claim's data, so nothing is written there and the restore stops before the
    // workloads
    let old = retained(&b, &db, "pvc-retained", "aks-hci-disk", "ledger.db");
    let before = files(&old);
    let o = restore_to("shop-old", &by_pod);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("pvc-retained") && t.contains("older than the claim"),
        "{t}"
    );
    assert_eq!(
        claim_in(&b, "shop-old")["spec"]["volumeName"],
        "pvc-retained",
        "the stand-in's controller matched the claim to the retained volume"
    );
    assert_eq!(
        files(&old),
        before,
        "nothing written to the retained volume"
    );
    no_pods(&b);
    assert!(
        !b.calls()
            .iter()
            .any(|c| c.starts_with("POST /apis/apps/v1/namespaces/shop-old/deployments")),
        "no workload created"
    );

    // ---- CSI snapshots: cluster A now serves the VolumeSnapshot API, with a class for the disk
    // driver. The claim on that driver is copied from a VolumeSnapshot taken between the pre and
    // post hooks, through a claim made from it; the NFS claim (no CSI driver) is copied
    // while in use, before the post hook. Nothing made for the copy stays, and the files
    // come back byte for byte
    a.edit(|st| {
        st["csi_api"] = json!(true);
        st["objects"].as_array_mut().unwrap().push(json!({"apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotClass", "driver": "disk.csi.akshci.com", "deletionPolicy": "Delete",
            "metadata": {"name": "akshci-vs",
                "annotations": {"snapshot.storage.kubernetes.io/is-default-class": "true"}}}));
    });
    let seen = std::fs::read_to_string(da.join("exec.log"))
        .unwrap()
        .lines()
        .count();
    a.clear_calls();
    let snap = backup(&["--set", "hooks=velero"]);
    assert!(!snap.to_string().contains("its data is not"), "{snap}");
    let log = std::fs::read_to_string(da.join("exec.log")).unwrap();
    let execs: Vec<&str> = log.lines().skip(seen).collect();
    let tar = |l: &str| l.contains("/rehydra-copy-") && l.contains("[\"tar\", \"-c\"");
    assert!(
        execs.len() == 4
            && execs[0].contains("--freeze")
            && tar(execs[1])
            && execs[2].contains("--unfreeze")
            && tar(execs[3]),
        "freeze, the NFS claim's copy, thaw, the VolumeSnapshot's copy: {log}"
    );
    let calls = a.calls();
    let at = |p: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(p))
            .unwrap_or_else(|| panic!("{p}: {calls:?}"))
    };
    let snapshots = "/apis/snapshot.storage.k8s.io/v1/namespaces/shop/volumesnapshots";
    assert!(
        at(&format!("POST {snapshots}"))
            < at("POST /api/v1/namespaces/shop/persistentvolumeclaims")
            && at("POST /api/v1/namespaces/shop/persistentvolumeclaims")
                < at("DELETE /api/v1/namespaces/shop/persistentvolumeclaims/rehydra-")
            && at("DELETE /api/v1/namespaces/shop/persistentvolumeclaims/rehydra-")
                < at(&format!("DELETE {snapshots}/rehydra-")),
        "VolumeSnapshot, its claim, then both deleted: {calls:?}"
    );
    // (a read lets the stand-in's controllers finish the deletions)
    run(&["discover", "--set", &ka, "--set", "cluster=aks-a"]);
    let ours = |o: &&Value| {
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        name.starts_with("rehydra-")
            || name.starts_with("snapcontent-")
            || o["spec"]["claimRef"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("rehydra-"))
    };
    let left: Vec<Value> = a.state()["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(ours)
        .cloned()
        .collect();
    assert!(
        left.is_empty(),
        "nothing made for the copy stays, not even the volume of the claim made from the VolumeSnapshot: {left:?}"
    );
    no_pods(&a);
    assert!(
        !da.join("snapshots").exists()
            || std::fs::read_dir(da.join("snapshots"))
                .unwrap()
                .next()
                .is_none()
    );
    // restore point `point` into namespace `ns` of cluster B: the restored claim's files
    let restored_into = |point: &Value, ns: &str| {
        let map = format!("namespace-map=shop={ns}");
        let id = point["restore_point"]["id"].as_str().unwrap();
        done(&run_restore(&run, id, &kb, &map, &staging));
        let pv = claim_in(&b, ns)["spec"]["volumeName"]
            .as_str()
            .unwrap()
            .to_string();
        files(&db.join("volumes").join(pv))
    };
    assert_eq!(
        restored_into(&snap, "shop-snap"),
        files(&volume),
        "the VolumeSnapshot's files, byte for byte, with their modes and owners"
    );

    // a retained volume of the class, free again, that the controller binds to the claim
    // made from the VolumeSnapshot instead of provisioning one: its files are never read as the
    // claim's; the claim is copied while in use, and it is said
    retained(&a, &da, "pvc-old-tenant", "fast", "payroll.csv");
    let matched = backup(&[]);
    let out = matched.to_string();
    assert!(
        out.contains("claim shop/data: not copied from a VolumeSnapshot")
            && out.contains("pvc-old-tenant")
            && out.contains("copied while in use")
            && !out.contains("its data is not"),
        "{out}"
    );
    assert_eq!(
        restored_into(&matched, "shop-matched"),
        files(&volume),
        "the claim's own files, not the matched volume's"
    );
    no_pods(&a);
    // the claim bound to that volume stays, said: deleting it would release the volume
    // (or, with the Delete policy, destroy it)
    assert!(out.contains("is left in place"), "{out}");
    let kept = a.state()["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["kind"] == "PersistentVolumeClaim" && o["spec"]["volumeName"] == "pvc-old-tenant"
        })
        .cloned()
        .unwrap_or_else(|| panic!("the claim bound to the tenant's volume stays"));
    assert!(kept["metadata"]["deletionTimestamp"].is_null(), "{kept}");
    a.edit(|st| {
        st["objects"].as_array_mut().unwrap().retain(|o| {
            o["metadata"]["name"] != "pvc-old-tenant" && o["spec"]["volumeName"] != "pvc-old-tenant"
        });
    });

    // a VolumeSnapshot the driver fails: that claim is copied while in use, and it is said
    a.edit(|st| st["csi_error"] = json!("rpc error: code = Internal desc = disk busy"));
    let out = backup(&[]).to_string();
    assert!(
        out.contains("claim shop/data: not copied from a VolumeSnapshot")
            && out.contains("disk busy")
            && out.contains("copied while in use")
            && !out.contains("its data is not"),
        "{out}"
    );
    no_pods(&a);
}

/// A volume of storage class `class` its provisioner made long ago, retained and free
/// again (Available), holding another claim's `file`: in cluster `c` (state folder
/// `dir`). Returns the volume's folder.
fn retained(c: &Cluster, dir: &Path, name: &str, class: &str, file: &str) -> std::path::PathBuf {
    c.edit(|st| {
        st["objects"].as_array_mut().unwrap().push(json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "creationTimestamp": "2025-01-01T00:00:00Z",
                "annotations": {"pv.kubernetes.io/provisioned-by": "disk.csi.akshci.com"}},
            "spec": {"capacity": {"storage": "50Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": class,
                "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem",
                "csi": {"driver": "disk.csi.akshci.com", "volumeHandle": format!("vol-{name}"), "fsType": "ext4"}}}));
    });
    let volume = dir.join("volumes").join(name);
    std::fs::create_dir_all(&volume).unwrap();
    std::fs::write(volume.join(file), "another claim's data").unwrap();
    volume
}

/// Restore `point` into cluster `kube` with `map`, files through `staging`.
fn run_restore(
    run: &dyn Fn(&[&str]) -> std::process::Output,
    point: &str,
    kube: &str,
    map: &str,
    staging: &str,
) -> std::process::Output {
    run(&[
        "restore",
        point,
        "--target",
        "-",
        "--set",
        kube,
        "--set",
        map,
        "--set",
        "storage-class-map=fast=aks-hci-disk",
        "--set",
        "wait-secs=20",
        "--set",
        "volume-data=pod",
        "--set",
        staging,
        "--set",
        "kube-context=aks-b",
    ])
}
