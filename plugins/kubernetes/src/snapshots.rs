//! CSI snapshots of the claims a backup copies (`volume-data=pod` with `snapshots=csi`, the
//! default).
//!
//! Where a claim's volume is a CSI driver's and a VolumeSnapshotClass
//! (`snapshot.storage.k8s.io`) serves that driver, the backup takes a VolumeSnapshot of
//! the claim (between the Velero pre and post hooks, when they run), waits until it is
//! ready, makes a short-lived claim from it (`spec.dataSource`), and the copy pod reads
//! that claim: the files of one moment, while the application runs on. The snapshot and
//! its claim are deleted whatever happens (the class's `deletionPolicy` decides what
//! becomes of the storage's copy). A claim whose snapshot cannot be taken is copied as it
//! is in use, and said so; a cluster that serves no snapshot API, or a driver without a
//! class, is copied live too.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rehydra_plugin_sdk::host;
use rehydra_plugin_sdk::kube;
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{self, shown};
use serde_json::{Value, json};

use crate::api::{ApiResource, hint};
use crate::volumes::{POLL, quantity, random};

/// The API group of CSI snapshots.
const GROUP: &str = "snapshot.storage.k8s.io";
/// The annotation that makes a VolumeSnapshotClass its driver's default.
const DEFAULT_CLASS: &str = "snapshot.storage.kubernetes.io/is-default-class";

/// The snapshot API a cluster serves, and a class for each CSI driver.
pub struct Snapshots {
    server: String,
    snapshots: ApiResource,
    /// CSI driver → VolumeSnapshotClass (the driver's default one, else its first by name).
    by_driver: BTreeMap<String, String>,
    wait: Duration,
}

/// A snapshot of a claim, ready, and the claim made from it once it is made.
pub struct Taken {
    pub namespace: String,
    /// The claim it is a snapshot of.
    pub source: String,
    pub snapshot: String,
    /// Its size as the driver reports it (`status.restoreSize`), if it does.
    pub size: Option<String>,
    /// The claim made from it.
    pub claim: Option<String>,
}

/// `snapshots`: `None` with `snapshots=off`, or when the cluster serves no snapshot API or
/// its classes cannot be listed (said in `warnings`).
///
/// # Errors
/// `invalid-input` for a `snapshots` that is not `csi` or `off`.
pub fn classes(
    s: &[Property],
    server: &str,
    types: &[ApiResource],
    wait: Duration,
    warnings: &mut Vec<String>,
) -> Result<Option<Snapshots>> {
    match setting(s, "snapshots").map(str::trim) {
        None | Some("" | "csi") => {}
        Some("off") => return Ok(None),
        Some(other) => {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("snapshots `{}` is not csi or off", shown(other, 40)),
            ));
        }
    }
    let served = |r: &str| types.iter().find(|t| t.group == GROUP && t.resource == r);
    let (Some(snapshots), Some(classes)) =
        (served("volumesnapshots"), served("volumesnapshotclasses"))
    else {
        return Ok(None);
    };
    let mut list = match kube::list(
        &classes.collection(server, None),
        "listing VolumeSnapshotClass objects",
        hint,
    ) {
        Ok(l) => l,
        Err(e) => {
            warnings.push(format!(
                "the VolumeSnapshotClass objects could not be listed ({}): every claim's files are copied while in use",
                e.message
            ));
            return Ok(None);
        }
    };
    list.sort_by_key(|c| {
        (
            c["metadata"]["annotations"][DEFAULT_CLASS] != "true",
            c["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    });
    let mut by_driver = BTreeMap::new();
    for c in &list {
        if let (Some(driver), Some(name)) = (
            rest::text(&c["driver"], 253),
            rest::text(&c["metadata"]["name"], 253),
        ) {
            by_driver
                .entry(driver.to_string())
                .or_insert_with(|| name.to_string());
        }
    }
    Ok(Some(Snapshots {
        server: server.to_string(),
        snapshots: snapshots.clone(),
        by_driver,
        wait,
    }))
}

fn failed(m: String) -> Error {
    Error::new(ErrorCode::Failed, m)
}

impl Snapshots {
    fn claims(&self, ns: &str) -> String {
        format!(
            "{}/api/v1/namespaces/{ns}/persistentvolumeclaims",
            self.server
        )
    }

    /// The class that snapshots claim `ns/claim`, with the claim as it is now: `None` when
    /// its volume is no CSI driver's, or its driver has no class.
    fn class_of(&self, ns: &str, claim: &str) -> Result<Option<(String, Value)>> {
        let what = format!("reading claim {ns}/{claim}");
        let Some(c) = kube::get(&format!("{}/{claim}", self.claims(ns)), &what, hint)? else {
            return Err(failed(format!("claim {ns}/{claim} is gone")));
        };
        let Some(pv) = rest::text(&c["spec"]["volumeName"], 253) else {
            return Ok(None);
        };
        let url = format!(
            "{}/api/v1/persistentvolumes/{}",
            self.server,
            rest::encode(pv)
        );
        let pv = kube::get(&url, &format!("reading persistent volume {pv}"), hint)?
            .unwrap_or(Value::Null);
        Ok(rest::text(&pv["spec"]["csi"]["driver"], 253)
            .and_then(|d| self.by_driver.get(d))
            .map(|class| (class.clone(), c)))
    }

    /// Take a snapshot of claim `ns/claim` and wait until it is ready to use: `None` when
    /// no class serves its volume's driver.
    ///
    /// # Errors
    /// The API refused it, the driver reported an error, or it was not ready within the
    /// wait (the snapshot is deleted then).
    pub fn take(&self, ns: &str, claim: &str) -> Result<Option<(Taken, Value)>> {
        let Some((class, source)) = self.class_of(ns, claim)? else {
            return Ok(None);
        };
        let name = format!("rehydra-{:016x}", random());
        let body = json!({
            "apiVersion": self.snapshots.api_version(),
            "kind": "VolumeSnapshot",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {"app.kubernetes.io/managed-by": "rehydra"},
                "annotations": {"rehydra.io/claim": claim},
            },
            "spec": {
                "volumeSnapshotClassName": class,
                "source": {"persistentVolumeClaimName": claim},
            },
        });
        kube::create(
            &self.snapshots.collection(&self.server, Some(ns)),
            &body,
            &format!("creating VolumeSnapshot {ns}/{name} of claim {claim}"),
            hint,
        )?;
        let mut taken = Taken {
            namespace: ns.to_string(),
            source: claim.to_string(),
            snapshot: name.clone(),
            size: None,
            claim: None,
        };
        let url = self.snapshots.object(&self.server, Some(ns), &name);
        let started = Instant::now();
        loop {
            let seen = kube::get(&url, &format!("reading VolumeSnapshot {ns}/{name}"), hint);
            let why = match &seen {
                Ok(Some(v)) if v["status"]["readyToUse"] == true => {
                    taken.size = rest::text(&v["status"]["restoreSize"], 40).map(str::to_string);
                    return Ok(Some((taken, source)));
                }
                Ok(Some(v)) => rest::text(&v["status"]["error"]["message"], 300)
                    .map(|m| format!("the driver reported: {m}")),
                Ok(None) => Some("it is gone".into()),
                Err(e) => Some(e.message.clone()),
            };
            let late = started.elapsed() >= self.wait;
            if why.is_some() || late || host::cancelled() {
                self.remove(&taken);
                if host::cancelled() {
                    return Err(Error::new(ErrorCode::Cancelled, "cancelled"));
                }
                return Err(failed(format!(
                    "VolumeSnapshot {ns}/{name} (class {class}) was not ready {}",
                    why.map_or_else(
                        || format!("within {} s", self.wait.as_secs()),
                        |w| format!("({w})")
                    )
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Make a claim from snapshot `t` of claim `source` (its storage class and access, the
    /// snapshot's size or the claim's, whichever is larger), and return its name.
    ///
    /// # Errors
    /// The claim has no storage class to provision from, or the API refused it.
    pub fn claim_from(&self, t: &mut Taken, source: &Value) -> Result<String> {
        let class = rest::text(&source["spec"]["storageClassName"], 253)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                failed(format!(
                    "claim {}/{} has no storage class to make a claim from its snapshot",
                    t.namespace, t.source
                ))
            })?;
        let asked = rest::text(&source["spec"]["resources"]["requests"]["storage"], 40);
        let size = match (asked, t.size.as_deref()) {
            (Some(a), Some(s)) if quantity(s) > quantity(a) => s,
            (Some(a), _) => a,
            (None, Some(s)) => s,
            (None, None) => {
                return Err(failed(format!(
                    "claim {}/{} asks for no size, and its snapshot says none",
                    t.namespace, t.source
                )));
            }
        };
        let name = t.snapshot.clone();
        let body = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": name,
                "namespace": t.namespace,
                "labels": {"app.kubernetes.io/managed-by": "rehydra"},
                "annotations": {"rehydra.io/claim": t.source},
            },
            "spec": {
                "storageClassName": class,
                "accessModes": ["ReadWriteOnce"],
                "volumeMode": "Filesystem",
                "resources": {"requests": {"storage": size}},
                "dataSource": {"apiGroup": GROUP, "kind": "VolumeSnapshot", "name": t.snapshot},
            },
        });
        kube::create(
            &self.claims(&t.namespace),
            &body,
            &format!(
                "creating claim {}/{name} from the snapshot of claim {}",
                t.namespace, t.source
            ),
            hint,
        )?;
        t.claim = Some(name.clone());
        Ok(name)
    }

    /// Delete the claim made from `t`, then the snapshot; a failure is logged, naming what
    /// to delete by hand.
    pub fn remove(&self, t: &Taken) {
        let ns = &t.namespace;
        let mut gone = Vec::new();
        if let Some(c) = &t.claim {
            gone.push((
                format!("{}/{c}", self.claims(ns)),
                format!("claim {ns}/{c}"),
            ));
        }
        gone.push((
            self.snapshots.object(&self.server, Some(ns), &t.snapshot),
            format!("VolumeSnapshot {ns}/{}", t.snapshot),
        ));
        for (url, what) in gone {
            if let Err(e) = kube::delete(&url, &format!("deleting {what}"), hint) {
                host::log(
                    host::Level::Warn,
                    &format!(
                        "{what}, made to copy claim {ns}/{}, could not be deleted ({}); delete it by hand",
                        t.source, e.message
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use rehydra_plugin_sdk::mock::{MockHost, Verb, props, response};

    use super::*;

    const API: &str = "https://aks.example:6443";

    fn served() -> Vec<ApiResource> {
        ["volumesnapshots", "volumesnapshotclasses"]
            .iter()
            .map(|r| ApiResource {
                group: GROUP.into(),
                version: "v1".into(),
                resource: (*r).into(),
                kind: String::new(),
                namespaced: *r == "volumesnapshots",
            })
            .collect()
    }

    /// A host answering `answer(method, url)`, every request kept as `METHOD url`.
    fn host(
        answer: impl Fn(&str, &str) -> (u16, Value) + 'static,
    ) -> (MockHost, Rc<RefCell<Vec<String>>>) {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let kept = seen.clone();
        let host = MockHost::new()
            .grant("http:aks.example:6443")
            .on_http(move |r| {
                let body = String::from_utf8_lossy(&r.body);
                kept.borrow_mut()
                    .push(format!("{} {} {body}", r.method, r.url));
                let (status, body) = answer(&r.method, &r.url);
                Ok(response(status, body.to_string()))
            });
        (host, seen)
    }

    #[test]
    fn a_drivers_default_class_is_chosen_and_off_or_unserved_means_none() {
        let list = json!({"kind": "VolumeSnapshotClassList", "metadata": {}, "items": [
            {"metadata": {"name": "a-plain"}, "driver": "disk.csi.akshci.com"},
            {"metadata": {"name": "z-default", "annotations": {DEFAULT_CLASS: "true"}}, "driver": "disk.csi.akshci.com"},
            {"metadata": {"name": "files"}, "driver": "file.csi.akshci.com"}]});
        let (host, _) = host(move |_, url| {
            if url.contains("/volumesnapshotclasses") {
                (200, list.clone())
            } else {
                (404, json!({}))
            }
        });
        let mut w = Vec::new();
        let mut run = |set: &[(&str, &str)], types: &[ApiResource]| {
            host.run(Verb::Backup, || {
                classes(&props(set), API, types, Duration::ZERO, &mut w)
            })
        };
        let s = run(&[], &served()).unwrap().unwrap();
        assert_eq!(s.by_driver["disk.csi.akshci.com"], "z-default");
        assert_eq!(s.by_driver["file.csi.akshci.com"], "files");
        assert!(run(&[("snapshots", "off")], &served()).unwrap().is_none());
        assert!(run(&[], &[]).unwrap().is_none(), "no snapshot API served");
        let e = run(&[("snapshots", "yes")], &served()).err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn a_snapshot_the_driver_fails_is_deleted_and_named() {
        let (host, seen) = host(|method, url| match (method, url) {
            ("GET", u) if u.ends_with("/persistentvolumeclaims/data") => (
                200,
                json!({"metadata": {"name": "data", "uid": "u1"}, "spec": {"volumeName": "pv1", "storageClassName": "fast"}}),
            ),
            ("GET", u) if u.ends_with("/persistentvolumes/pv1") => (
                200,
                json!({"spec": {"csi": {"driver": "disk.csi.akshci.com"}}}),
            ),
            ("POST", _) => (201, json!({})),
            ("GET", u) if u.contains("/volumesnapshots/rehydra-") => (
                200,
                json!({"status": {"readyToUse": false, "error": {"message": "disk busy"}}}),
            ),
            ("DELETE", _) => (200, json!({"kind": "Status", "status": "Success"})),
            _ => (404, json!({})),
        });
        let s = Snapshots {
            server: API.into(),
            snapshots: served()[0].clone(),
            by_driver: [("disk.csi.akshci.com".to_string(), "snaps".to_string())].into(),
            wait: Duration::from_secs(5),
        };
        let e = host
            .run(Verb::Backup, || s.take("shop", "data"))
            .err()
            .unwrap();
        assert!(
            e.message.contains("disk busy") && e.message.contains("class snaps"),
            "{}",
            e.message
        );
        let seen = seen.borrow();
        let made = seen
            .iter()
            .find(|c| c.starts_with("POST ") && c.contains("/namespaces/shop/volumesnapshots"));
        assert!(made.is_some(), "{seen:?}");
        assert!(
            seen.iter()
                .any(|c| c.starts_with("DELETE ") && c.contains("/volumesnapshots/rehydra-")),
            "the failed snapshot is deleted: {seen:?}"
        );
    }

    #[test]
    fn a_claim_from_a_snapshot_asks_for_the_larger_size() {
        let (host, seen) = host(|_, _| (201, json!({})));
        let s = Snapshots {
            server: API.into(),
            snapshots: served()[0].clone(),
            by_driver: BTreeMap::new(),
            wait: Duration::ZERO,
        };
        let source = json!({"spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "5Gi"}}}});
        for (snap, want) in [(Some("8Gi"), "8Gi"), (Some("1Gi"), "5Gi"), (None, "5Gi")] {
            let mut t = Taken {
                namespace: "shop".into(),
                source: "data".into(),
                snapshot: "rehydra-1".into(),
                size: snap.map(str::to_string),
                claim: None,
            };
            let name = host
                .run(Verb::Backup, || s.claim_from(&mut t, &source))
                .unwrap();
            assert_eq!(
                (name.as_str(), t.claim.as_deref()),
                ("rehydra-1", Some("rehydra-1"))
            );
            let sent = seen.borrow().last().cloned().unwrap();
            let body: Value = serde_json::from_str(sent.splitn(3, ' ').nth(2).unwrap()).unwrap();
            assert_eq!(
                body["spec"]["resources"]["requests"]["storage"], want,
                "{sent}"
            );
            assert_eq!(body["spec"]["dataSource"]["name"], "rehydra-1");
            assert_eq!(body["spec"]["storageClassName"], "fast");
        }
        assert_eq!(seen.borrow().len(), 3);
        let no_class = json!({"spec": {"resources": {"requests": {"storage": "5Gi"}}}});
        let mut t = Taken {
            namespace: "shop".into(),
            source: "data".into(),
            snapshot: "rehydra-2".into(),
            size: None,
            claim: None,
        };
        assert!(
            host.run(Verb::Backup, || s.claim_from(&mut t, &no_class))
                .is_err()
        );
        assert!(t.claim.is_none());
    }
}
