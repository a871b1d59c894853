//! CSI snapshots of the claims a backup copies (`volume-data=pod` with `snapshots=csi`, the
//! default).
//!
//! Where a claim's volume is a CSI driver's and a VolumeSnapshotClass
//! (`snapshot.storage.k8s.io`) serves that driver, the backup takes a VolumeSnapshot of
//! the claim while the Velero pre hooks hold the application (only until the VolumeSnapshot is
//! cut, not until it is ready), then, after the post hooks, makes a short-lived claim from
//! it (`spec.dataSource`) and the copy pod reads that claim: the files of one moment,
//! while the application runs on. Before anything is read the claim must be the one this
//! job made, filled from its own VolumeSnapshot into a volume its class's provisioner made for
//! it ([`crate::volumes::Copier::fresh_volume`]), and the VolumeSnapshot must still be ours;
//! otherwise, or when any step fails, the claim is copied while in use, and said so.
//!
//! The VolumeSnapshot and its claim are deleted (by uid) whatever happens. A class that would
//! keep a copy of the files afterwards (a VolumeSnapshotClass or a StorageClass with
//! `Retain`) is not used: that claim is copied while in use. A cluster that serves no
//! VolumeSnapshot API, or a driver without a class, is copied while in use too.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rehydra_plugin_sdk::host;
use rehydra_plugin_sdk::kube;
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{self, shown};
use serde_json::{Value, json};

use crate::api::{ApiResource, hint};
use crate::objects::{ours, uid};
use crate::volumes::{Copier, Made, POLL, delete_made, quantity, random};

/// The API group of CSI snapshots.
pub const GROUP: &str = "snapshot.storage.k8s.io";
/// The annotation that makes a VolumeSnapshotClass its driver's default.
const DEFAULT_CLASS: &str = "snapshot.storage.kubernetes.io/is-default-class";

/// A VolumeSnapshotClass.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Class {
    name: String,
    /// `deletionPolicy: Retain`: the storage keeps the VolumeSnapshot after it is deleted.
    retain: bool,
}

/// The VolumeSnapshot API a cluster serves, and a class for each CSI driver.
pub struct Csi {
    server: String,
    snapshots: ApiResource,
    /// CSI driver → its default class, else its first by name.
    by_driver: BTreeMap<String, Class>,
    wait: Duration,
}

/// A VolumeSnapshot of a claim, and the claim made from it once it is made.
pub struct Taken {
    pub namespace: String,
    /// The claim it is a VolumeSnapshot of, as it was when the VolumeSnapshot was asked for.
    pub source: String,
    source_claim: Value,
    /// The CSI driver of the claim's volume.
    driver: String,
    pub vs: String,
    vs_uid: String,
    /// Its size as the driver reports it (`status.restoreSize`), once ready.
    size: Option<String>,
    /// The claim made from it (name, uid) and the size it asks for.
    made: Option<(String, String, String)>,
    /// Why the claim made from it must stay: it was bound to a volume it did not get
    /// from a provisioner, which deleting the claim would release (or delete).
    kept: std::cell::RefCell<Option<String>>,
}

/// How far a VolumeSnapshot has come.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The storage has cut it (`status.creationTime`): the application may go on.
    Cut,
    /// It can be read (`status.readyToUse`).
    Ready,
}

/// `snapshots`: `csi` (the default) or `off`.
///
/// # Errors
/// `invalid-input` for anything else.
pub fn wanted(s: &[Property]) -> Result<bool> {
    match setting(s, "snapshots").map(str::trim) {
        None | Some("" | "csi") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(Error::new(
            ErrorCode::InvalidInput,
            format!("snapshots `{}` is not csi or off", shown(other, 40)),
        )),
    }
}

/// `snapshots`: `None` with `snapshots=off`, or when the cluster serves no VolumeSnapshot API or
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
) -> Result<Option<Csi>> {
    if !wanted(s)? {
        return Ok(None);
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
                .or_insert_with(|| Class {
                    name: name.to_string(),
                    retain: c["deletionPolicy"] != "Delete",
                });
        }
    }
    Ok(Some(Csi {
        server: server.to_string(),
        snapshots: snapshots.clone(),
        by_driver,
        wait,
    }))
}

fn failed(m: String) -> Error {
    Error::new(ErrorCode::Failed, m)
}

impl Csi {
    fn claims(&self, ns: &str) -> String {
        format!(
            "{}/api/v1/namespaces/{ns}/persistentvolumeclaims",
            self.server
        )
    }

    fn get(&self, url: &str, what: &str) -> Result<Value> {
        kube::get(url, what, hint)?.ok_or_else(|| failed(format!("{what}: it is gone")))
    }

    /// Ask for a VolumeSnapshot of claim `ns/claim`: `None` when its volume is no CSI driver's
    /// or no class serves its driver.
    ///
    /// # Errors
    /// A class or storage class that would keep a copy of the files, or the API refused.
    pub fn start(&self, ns: &str, claim: &str) -> Result<Option<Taken>> {
        let source = self.get(
            &format!("{}/{claim}", self.claims(ns)),
            &format!("reading claim {ns}/{claim}"),
        )?;
        let Some(pv) = rest::text(&source["spec"]["volumeName"], 253) else {
            return Ok(None);
        };
        let pv = self.get(
            &format!(
                "{}/api/v1/persistentvolumes/{}",
                self.server,
                rest::encode(pv)
            ),
            &format!("reading persistent volume {pv}"),
        )?;
        let Some((driver, class)) = rest::text(&pv["spec"]["csi"]["driver"], 253)
            .and_then(|d| self.by_driver.get(d).map(|c| (d.to_string(), c.clone())))
        else {
            return Ok(None);
        };
        if class.retain {
            return Err(failed(format!(
                "VolumeSnapshotClass {} keeps what it snapshots (deletionPolicy is not Delete), so a copy of the files would stay behind",
                class.name
            )));
        }
        // the claim made from the VolumeSnapshot gets the claim's storage class: one that keeps
        // released volumes would keep a copy of the files after this job
        let storage = rest::text(&source["spec"]["storageClassName"], 253)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                failed(format!(
                    "claim {ns}/{claim} has no storage class to make a claim from its VolumeSnapshot"
                ))
            })?;
        let sc = self.get(
            &format!(
                "{}/apis/storage.k8s.io/v1/storageclasses/{}",
                self.server,
                rest::encode(storage)
            ),
            &format!("reading storage class {storage}"),
        )?;
        if sc["reclaimPolicy"] == "Retain" {
            return Err(failed(format!(
                "storage class {storage} keeps released volumes (reclaimPolicy Retain), so a claim made from the VolumeSnapshot would leave a copy of the files behind"
            )));
        }
        let name = format!("rehydra-{:016x}", random());
        let body = json!({
            "apiVersion": self.snapshots.api_version(),
            "kind": "VolumeSnapshot",
            "metadata": ours(&name, ns, claim),
            "spec": {
                "volumeSnapshotClassName": class.name,
                "source": {"persistentVolumeClaimName": claim},
            },
        });
        let made = kube::create(
            &self.snapshots.collection(&self.server, Some(ns)),
            &body,
            &format!("creating VolumeSnapshot {ns}/{name} of claim {claim}"),
            hint,
        )?;
        Ok(Some(Taken {
            namespace: ns.to_string(),
            source: claim.to_string(),
            source_claim: source,
            driver,
            vs: name,
            vs_uid: uid(&made),
            size: None,
            made: None,
            kept: std::cell::RefCell::new(None),
        }))
    }

    /// The VolumeSnapshot as it is now, checked to be the one this job asked for.
    fn still_ours(&self, t: &Taken) -> Result<Value> {
        let ns = &t.namespace;
        let v = self.get(
            &self.snapshots.object(&self.server, Some(ns), &t.vs),
            &format!("reading VolumeSnapshot {ns}/{}", t.vs),
        )?;
        if t.vs_uid.is_empty()
            || v["metadata"]["uid"] != t.vs_uid.as_str()
            || v["spec"]["source"]["persistentVolumeClaimName"] != t.source.as_str()
        {
            return Err(failed(format!(
                "VolumeSnapshot {ns}/{} is not the one this job asked for (it was replaced)",
                t.vs
            )));
        }
        Ok(v)
    }

    /// Wait until VolumeSnapshot `t` reaches `stage`, at most until `wait-secs` after
    /// `since` (one deadline for every VolumeSnapshot of a namespace while its
    /// application is held).
    ///
    /// # Errors
    /// The driver reported an error, the VolumeSnapshot is gone or not ours, the wait ran out,
    /// or the job was cancelled.
    pub fn wait(&self, t: &mut Taken, stage: Stage, since: Instant) -> Result<()> {
        loop {
            let v = self.still_ours(t)?;
            let st = &v["status"];
            let reached = match stage {
                Stage::Cut => st["creationTime"].is_string() || st["readyToUse"] == true,
                Stage::Ready => st["readyToUse"] == true,
            };
            if reached {
                t.size = rest::text(&st["restoreSize"], 40).map(str::to_string);
                return Ok(());
            }
            if let Some(m) = rest::text(&st["error"]["message"], 300) {
                return Err(failed(format!(
                    "VolumeSnapshot {}/{}: the driver reported: {m}",
                    t.namespace, t.vs
                )));
            }
            if host::cancelled() {
                return Err(Error::new(ErrorCode::Cancelled, "cancelled"));
            }
            if since.elapsed() >= self.wait {
                return Err(failed(format!(
                    "VolumeSnapshot {}/{} was not {} within {} s",
                    t.namespace,
                    t.vs,
                    if stage == Stage::Cut {
                        "taken"
                    } else {
                        "ready"
                    },
                    self.wait.as_secs()
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Make a claim from ready VolumeSnapshot `t`: the source claim's storage class, the larger
    /// of its request and the VolumeSnapshot's size (which may not pass the volume's capacity).
    /// Returns its name and the size it asks for.
    ///
    /// # Errors
    /// A size that does not add up, or the API refused.
    pub fn claim_from(&self, t: &mut Taken) -> Result<(String, String)> {
        let spec = &t.source_claim["spec"];
        let class = rest::text(&spec["storageClassName"], 253).unwrap_or_default();
        let asked = rest::text(&spec["resources"]["requests"]["storage"], 40);
        let capacity = rest::text(&t.source_claim["status"]["capacity"]["storage"], 40);
        let size = match (asked, t.size.as_deref()) {
            (_, Some(s)) if capacity.is_some_and(|c| quantity(s) > quantity(c)) => {
                return Err(failed(format!(
                    "the VolumeSnapshot says it holds {}, more than the volume it was taken of ({})",
                    shown(s, 40),
                    capacity.unwrap_or_default()
                )));
            }
            (Some(a), Some(s)) if quantity(s) > quantity(a) => s,
            (Some(a), _) => a,
            (None, Some(s)) => s,
            (None, None) => {
                return Err(failed(format!(
                    "claim {}/{} asks for no size, and its VolumeSnapshot says none",
                    t.namespace, t.source
                )));
            }
        }
        .to_string();
        let name = format!("rehydra-{:016x}", random());
        let body = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": ours(&name, &t.namespace, &t.source),
            "spec": {
                "storageClassName": class,
                "accessModes": ["ReadWriteOnce"],
                "volumeMode": "Filesystem",
                "resources": {"requests": {"storage": size}},
                "dataSource": {"apiGroup": GROUP, "kind": "VolumeSnapshot", "name": t.vs},
            },
        });
        let made = kube::create(
            &self.claims(&t.namespace),
            &body,
            &format!(
                "creating claim {}/{name} from the VolumeSnapshot of claim {}",
                t.namespace, t.source
            ),
            hint,
        )?;
        t.made = Some((name.clone(), uid(&made), size.clone()));
        Ok((name, size))
    }

    /// Once the copy pod runs (the claim is then in use and stays bound): the claim is the
    /// one this job made, filled from this job's VolumeSnapshot into a new volume of the same
    /// CSI driver; and the VolumeSnapshot is still ours.
    ///
    /// # Errors
    /// `failed` naming what is not so.
    pub fn check(&self, t: &Taken, copier: &Copier) -> Result<()> {
        let Some((claim, uid, _)) = &t.made else {
            return Err(failed("no claim was made from the VolumeSnapshot".into()));
        };
        self.still_ours(t)?;
        let made = Made {
            uid: Some(uid.as_str()).filter(|u| !u.is_empty()),
            vs: Some(&t.vs),
        };
        if made.uid.is_none() {
            return Err(failed(format!(
                "claim {}/{claim} came back without a uid",
                t.namespace
            )));
        }
        // ours, bound to a volume it did not get from a provisioner, must stay; a claim
        // replaced under the name (`not-found`) is not ours to keep
        let pv = copier
            .fresh_volume(&t.namespace, claim, made)
            .inspect_err(|e| {
                if e.code != ErrorCode::NotFound {
                    *t.kept.borrow_mut() = Some(e.message.clone());
                }
            })?;
        if pv["spec"]["csi"]["driver"] != t.driver.as_str() {
            return Err(failed(format!(
                "the volume of claim {}/{claim} is not of driver {}",
                t.namespace, t.driver
            )));
        }
        Ok(())
    }

    /// Delete the claim made from `t` (unless it must stay: see [`Taken`]), then the
    /// VolumeSnapshot, each only if it is still the one this job made (by uid). Returns
    /// what stays behind, to say (copies of the files may be in it).
    pub fn remove(&self, t: &Taken) -> Vec<String> {
        let ns = &t.namespace;
        let mut left = Vec::new();
        let mut gone = Vec::new();
        if let Some((c, uid, _)) = &t.made {
            if let Some(why) = t.kept.borrow().as_ref() {
                left.push(format!(
                    "claim {ns}/{c}, made to copy claim {ns}/{} from a VolumeSnapshot, is left in place: {why}; deleting it would release or delete that volume. Check the volume, then delete the claim by hand",
                    t.source
                ));
            } else {
                gone.push((
                    format!("{}/{c}", self.claims(ns)),
                    uid.as_str(),
                    format!("claim {ns}/{c}"),
                ));
            }
        }
        gone.push((
            self.snapshots.object(&self.server, Some(ns), &t.vs),
            t.vs_uid.as_str(),
            format!("VolumeSnapshot {ns}/{}", t.vs),
        ));
        for (url, uid, what) in gone {
            if let Err(e) = delete_made(&url, uid, &format!("deleting {what}")) {
                left.push(format!(
                    "{what}, made to copy claim {ns}/{}, could not be deleted ({}); delete it by hand (it holds a copy of the claim's files)",
                    t.source, e.message
                ));
            }
        }
        for w in &left {
            host::log(host::Level::Warn, w);
        }
        left
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

    fn snapshots(by_driver: &[(&str, &str)]) -> Csi {
        Csi {
            server: API.into(),
            snapshots: served()[0].clone(),
            by_driver: by_driver
                .iter()
                .map(|(d, c)| {
                    let class = Class {
                        name: (*c).into(),
                        retain: false,
                    };
                    ((*d).to_string(), class)
                })
                .collect(),
            wait: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_drivers_default_class_is_chosen_and_off_or_unserved_means_none() {
        let list = json!({"kind": "VolumeSnapshotClassList", "metadata": {}, "items": [
            {"metadata": {"name": "a-plain"}, "driver": "disk.csi.akshci.com", "deletionPolicy": "Delete"},
            {"metadata": {"name": "z-default", "annotations": {DEFAULT_CLASS: "true"}}, "driver": "disk.csi.akshci.com", "deletionPolicy": "Delete"},
            {"metadata": {"name": "files"}, "driver": "file.csi.akshci.com", "deletionPolicy": "Retain"}]});
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
        assert_eq!(s.by_driver["disk.csi.akshci.com"].name, "z-default");
        assert!(!s.by_driver["disk.csi.akshci.com"].retain);
        assert!(s.by_driver["file.csi.akshci.com"].retain);
        assert!(run(&[("snapshots", "off")], &served()).unwrap().is_none());
        assert!(
            run(&[], &[]).unwrap().is_none(),
            "no VolumeSnapshot API served"
        );
        let e = run(&[("snapshots", "yes")], &served()).err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidInput);
    }

    /// A cluster where claim shop/data is on volume pv1 of the disk driver, in storage class
    /// `fast` (reclaim policy `reclaim`); snapshots answer `VolumeSnapshot`.
    fn cluster(reclaim: &'static str, vs: Value) -> (MockHost, Rc<RefCell<Vec<String>>>) {
        host(move |method, url| match (method, url) {
            ("GET", u) if u.ends_with("/persistentvolumeclaims/data") => (
                200,
                json!({"metadata": {"name": "data", "uid": "u1"}, "spec": {"volumeName": "pv1", "storageClassName": "fast",
                    "resources": {"requests": {"storage": "5Gi"}}}, "status": {"capacity": {"storage": "8Gi"}}}),
            ),
            ("GET", u) if u.ends_with("/persistentvolumes/pv1") => (
                200,
                json!({"spec": {"csi": {"driver": "disk.csi.akshci.com"}}}),
            ),
            ("GET", u) if u.ends_with("/storageclasses/fast") => (
                200,
                json!({"metadata": {"name": "fast"}, "provisioner": "disk.csi.akshci.com", "reclaimPolicy": reclaim}),
            ),
            ("POST", _) => (201, json!({"metadata": {"uid": "made-1"}})),
            ("GET", u) if u.contains("/volumesnapshots/rehydra-") => (200, vs.clone()),
            ("DELETE", _) => (200, json!({"kind": "Status", "status": "Success"})),
            _ => (404, json!({})),
        })
    }

    #[test]
    fn a_vs_the_driver_fails_is_named_and_deleted_by_uid() {
        let failing = json!({"metadata": {"uid": "made-1"}, "spec": {"source": {"persistentVolumeClaimName": "data"}},
            "status": {"readyToUse": false, "error": {"message": "disk busy"}}});
        let (host, seen) = cluster("Delete", failing);
        let s = snapshots(&[("disk.csi.akshci.com", "snaps")]);
        let e = host
            .run(Verb::Backup, || {
                let mut t = s.start("shop", "data")?.expect("a class serves the driver");
                let waited = s.wait(&mut t, Stage::Cut, Instant::now());
                assert!(s.remove(&t).is_empty());
                waited
            })
            .err()
            .unwrap();
        assert!(e.message.contains("disk busy"), "{}", e.message);
        let seen = seen.borrow();
        assert!(
            seen.iter().any(|c| c.starts_with("POST ")
                && c.contains("/namespaces/shop/volumesnapshots")
                && c.contains(r#""volumeSnapshotClassName":"snaps""#)),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|c| c.starts_with("DELETE ")
                && c.contains("/volumesnapshots/rehydra-")
                && c.contains(r#""uid":"made-1""#)),
            "the failed VolumeSnapshot is deleted, if it is still ours: {seen:?}"
        );
    }

    #[test]
    fn no_vs_is_taken_where_a_copy_would_stay_behind_or_of_another_claim() {
        let (host, seen) = cluster("Retain", json!({}));
        let s = snapshots(&[("disk.csi.akshci.com", "snaps")]);
        let e = host
            .run(Verb::Backup, || s.start("shop", "data"))
            .err()
            .unwrap();
        assert!(e.message.contains("reclaimPolicy Retain"), "{}", e.message);
        assert!(!seen.borrow().iter().any(|c| c.starts_with("POST ")));
        assert!(
            host.run(Verb::Backup, || snapshots(&[]).start("shop", "data"))
                .unwrap()
                .is_none(),
            "no class for the driver: no VolumeSnapshot"
        );
        // a VolumeSnapshot of another claim under the name this job chose is not ours
        let other = json!({"metadata": {"uid": "made-1"}, "spec": {"source": {"persistentVolumeClaimName": "secrets"}},
            "status": {"readyToUse": true, "creationTime": "2026-12-03T21:00:00Z"}});
        let (host, _) = cluster("Delete", other);
        let e = host
            .run(Verb::Backup, || {
                let mut t = s.start("shop", "data")?.unwrap();
                s.wait(&mut t, Stage::Ready, Instant::now())
            })
            .err()
            .unwrap();
        assert!(e.message.contains("replaced"), "{}", e.message);
    }

    #[test]
    fn a_claim_from_a_vs_asks_for_the_larger_size_within_the_volume() {
        for (snap, want) in [
            (Some("6Gi"), Ok("6Gi")),
            (Some("1Gi"), Ok("5Gi")),
            (None, Ok("5Gi")),
            (Some("9Ti"), Err("more than the volume")),
        ] {
            let ready = json!({"metadata": {"uid": "made-1"}, "spec": {"source": {"persistentVolumeClaimName": "data"}},
                "status": {"readyToUse": true, "restoreSize": snap}});
            let (host, seen) = cluster("Delete", ready);
            let s = snapshots(&[("disk.csi.akshci.com", "snaps")]);
            let got = host.run(Verb::Backup, || {
                let mut t = s.start("shop", "data")?.unwrap();
                s.wait(&mut t, Stage::Ready, Instant::now())?;
                s.claim_from(&mut t)
            });
            match (want, got) {
                (Ok(size), Ok((name, asked))) => {
                    assert_eq!(asked, size);
                    let seen = seen.borrow();
                    let sent = seen.iter().rfind(|c| c.starts_with("POST ")).unwrap();
                    let body: Value =
                        serde_json::from_str(sent.splitn(3, ' ').nth(2).unwrap()).unwrap();
                    assert_eq!(body["metadata"]["name"], name.as_str());
                    assert_eq!(
                        body["spec"]["resources"]["requests"]["storage"], size,
                        "{sent}"
                    );
                    assert_eq!(body["spec"]["dataSource"]["kind"], "VolumeSnapshot");
                    assert_eq!(body["spec"]["storageClassName"], "fast");
                }
                (Err(why), Err(e)) => assert!(e.message.contains(why), "{}", e.message),
                (want, got) => panic!("{snap:?}: wanted {want:?}, got {:?}", got.map(|g| g.1)),
            }
        }
    }
}
