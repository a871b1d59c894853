//! Volume data through a pod (`volume-data=pod`).
//!
//! For each claim, the plugin creates a short-lived pod in the claim's namespace that
//! mounts it at `/mnt/data` (read-only for a backup) and a scratch `emptyDir` at
//! `/rehydra`, and only sleeps; it waits for the pod to run, then drives kubectl on a
//! command target (`command:kubectl@<target>`, default `local`):
//!
//! - backup: `kubectl exec … -- tar -c -f /rehydra/data.tar -C /mnt/data .` (tar in the
//!   pod keeps owners, modes, links and hard links, which `kubectl cp` of a folder would
//!   lose), `kubectl cp <ns>/<pod>:/rehydra/data.tar <staging>/<pod>.tar`, and the engine
//!   stores that file as the item `volumes/<ns>/<claim>.tar` (unchanged files give the
//!   same bytes, which deduplicate);
//! - restore: the engine writes the item to `<staging>/<pod>.tar`, `kubectl cp` puts it
//!   into the pod's scratch folder, and `tar -x --numeric-owner` in the pod unpacks it into
//!   the new claim's volume.
//!
//! The pod is deleted and the staged file removed (`command:rm@<target>`) whatever
//! happened; what could not be is said. Consistency is `crash`: the files are read while
//! the application may write them, unless the pod mounts a claim made from a VolumeSnapshot
//! ([`crate::csi`]). A pod copying a claim in use runs on the node of a running pod
//! that mounts it, so a ReadWriteOnce volume can be mounted twice. It runs as root with only the
//! capabilities it needs (`DAC_OVERRIDE` to read every file, never `DAC_READ_SEARCH`; on
//! restore, setting owners and modes), never privileged, with the runtime's default
//! seccomp profile, a read-only root file system, no service-account token, and a
//! deadline. A restore unpacks only into a volume a provisioner made for the claim
//! ([`Copier::load`] checks it again once the pod runs). Block volumes are left out, said
//! in a warning.

use std::time::{Duration, Instant};

use rehydra_plugin_sdk::engine;
use rehydra_plugin_sdk::host;
use rehydra_plugin_sdk::kube::{self, kubectl};
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{self, shown};
use rehydra_plugin_sdk::windows::map_path;
use serde_json::{Value, json};

use crate::api::hint;
use crate::hooks::Hook;
use crate::objects::{ours, uid};

/// Where the copy pod mounts the claim.
const MOUNT: &str = "/mnt/data";
/// The copy pod's scratch folder (an `emptyDir`), and the archive in it.
const SCRATCH: &str = "/rehydra";
const ARCHIVE: &str = "/rehydra/data.tar";
/// How long a copy pod may live at the most, whatever happens to this job.
const DEADLINE_SECS: u64 = 86_400;
/// The copy pod's container.
const CONTAINER: &str = "copy";
/// The copy pod's image by default: a small one with `tar`, which `kubectl cp` needs.
pub const IMAGE: &str = "mcr.microsoft.com/azurelinux/busybox:1.36";
/// Between two looks at the copy pod.
pub(crate) const POLL: Duration = Duration::from_secs(1);

/// The item holding the files of claim `ns/claim`: a tar archive made in the pod.
pub fn item(ns: &str, claim: &str) -> String {
    format!("volumes/{ns}/{claim}.tar")
}

/// A Kubernetes quantity of bytes (`5Gi`, `500M`, `1073741824`), if it is one.
pub fn quantity(q: &str) -> Option<u64> {
    let q = q.trim();
    let digits = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let n: u64 = q[..digits].parse().ok()?;
    let unit: u64 = match &q[digits..] {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// The room an archive of `bytes` (of files, or a volume of that size) needs in the
/// scratch folder: an eighth more for tar's headers and padding, and 64 MiB.
pub fn room(bytes: u64) -> u64 {
    bytes.saturating_add(bytes / 8).saturating_add(64 << 20)
}

/// Was object `a` created no earlier than `b`? Both times as the API server writes them
/// (`2026-12-03T21:08:36Z`, which compare as text); a missing or odd time is a no.
fn made_after(a: &Value, b: &Value) -> bool {
    fn time(o: &Value) -> Option<&str> {
        o["metadata"]["creationTimestamp"].as_str().filter(|t| {
            t.len() == 20
                && t.ends_with('Z')
                && t.bytes().enumerate().all(|(i, c)| match i {
                    4 | 7 => c == b'-',
                    10 => c == b'T',
                    13 | 16 => c == b':',
                    19 => c == b'Z',
                    _ => c.is_ascii_digit(),
                })
        })
    }
    matches!((time(a), time(b)), (Some(a), Some(b)) if a >= b)
}

/// What a claim checked by [`Copier::fresh_volume`] must be besides bound to a new volume.
#[derive(Default, Clone, Copy)]
pub struct Made<'a> {
    /// The uid of the claim as the caller made it.
    pub uid: Option<&'a str>,
    /// The VolumeSnapshot it was filled from (else: from no data source).
    pub vs: Option<&'a str>,
}

/// How a copy pod reads a claim's files.
pub struct Mount<'a> {
    /// The claim it mounts: the claim itself, or one made from its VolumeSnapshot.
    pub claim: &'a str,
    /// Bytes the scratch folder may hold.
    pub room: Option<u64>,
    /// Where it runs (for a claim in use: on the node of a pod that mounts it).
    pub node: Option<&'a str>,
    /// Checked once the pod runs, before anything is read.
    pub check: Option<&'a dyn Fn() -> Result<()>>,
}

/// `DELETE url` of an object this job made: only if it is still the one with `uid` (a
/// name made again by someone else is left alone); by name when the API server gave no
/// uid.
///
/// # Errors
/// As [`kube::delete_uid`].
pub(crate) fn delete_made(url: &str, uid: &str, what: &str) -> Result<()> {
    if uid.is_empty() {
        kube::delete(url, what, hint)
    } else {
        kube::delete_uid(url, uid, what, hint)
    }
}

/// A copy pod this job made and saw running: kubectl's view of it, and its uid.
struct Started {
    pod: kubectl::Pod,
    uid: String,
}

/// How volume data is copied: the settings of `volume-data=pod`.
pub struct Copier {
    server: String,
    target: String,
    context: Option<String>,
    staging: String,
    map: String,
    image: String,
    wait: Duration,
}

fn invalid(m: String) -> Error {
    Error::new(ErrorCode::InvalidInput, m)
}

/// `volume-data`: `None` for `none` (and, when `required` is false, when it is not set).
///
/// # Errors
/// `invalid-input` naming the setting to fix.
pub fn copier(s: &[Property], server: &str, wait: Duration) -> Result<Option<Copier>> {
    match setting(s, "volume-data").map(str::trim) {
        None | Some("" | "none") => return Ok(None),
        Some("pod") => {}
        Some(other) => {
            return Err(invalid(format!(
                "volume-data `{}` is not none or pod",
                shown(other, 40)
            )));
        }
    }
    let staging = require(
        s,
        "staging",
        "an absolute folder on the command target where kubectl copies volume data, e.g. /var/lib/rehydra/stage",
    )?
    .trim_end_matches('/')
    .to_string();
    kubectl::abs_path("staging", &staging)?;
    let target = setting_or(s, "command-target", "local").to_string();
    let context = setting(s, "kube-context").map(str::to_string);
    // the names are checked here, once, with a pod name of the kind the copier makes
    kubectl::Pod::new(
        &target,
        context.as_deref(),
        "default",
        "rehydra-copy-0",
        CONTAINER,
    )?;
    let image = setting_or(s, "copy-image", IMAGE).trim().to_string();
    if image.is_empty()
        || image.len() > 512
        || image.starts_with('-')
        || image.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(invalid(format!(
            "copy-image `{}` is not an image reference",
            shown(&image, 80)
        )));
    }
    Ok(Some(Copier {
        // a copy pod is waited for even when claims and workloads are not (wait-secs=0)
        wait: if wait.is_zero() {
            Duration::from_secs(300)
        } else {
            wait
        },
        server: server.to_string(),
        target,
        context,
        staging,
        map: setting_or(s, "path-map", "").to_string(),
        image,
    }))
}

/// 64 random bits (RandomState is seeded from the system's random source, WASI
/// `random_get`).
pub(crate) fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(rehydra_plugin_sdk::time::now().unsigned_abs());
    h.finish()
}

/// Does `pod` run and mount `claim`?
pub fn runs_with(pod: &Value, claim: &str) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["spec"]["volumes"].as_array().is_some_and(|v| {
            v.iter()
                .any(|v| v["persistentVolumeClaim"]["claimName"].as_str() == Some(claim))
        })
}

/// What keeps a pod from running, in the words of its status.
fn why_not_running(pod: &Value) -> String {
    let waiting = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|c| {
            let w = &c["state"]["waiting"];
            Some(format!(
                "{}: {}",
                rest::text(&w["reason"], 80)?,
                rest::text(&w["message"], 300).unwrap_or_default()
            ))
        });
    let condition = || {
        pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|c| {
                (c["status"] == "False")
                    .then(|| rest::text(&c["message"], 300).map(str::to_string))
                    .flatten()
            })
    };
    waiting.or_else(condition).unwrap_or_else(|| {
        format!(
            "phase {}",
            rest::text(&pod["status"]["phase"], 40).unwrap_or("unknown")
        )
    })
}

impl Copier {
    fn pods(&self, ns: &str) -> String {
        format!("{}/api/v1/namespaces/{ns}/pods", self.server)
    }

    /// The pods of namespace `ns`.
    ///
    /// # Errors
    /// The API server's answer.
    pub fn pods_of(&self, ns: &str) -> Result<Vec<Value>> {
        kube::list(
            &self.pods(ns),
            &format!("listing the pods of namespace {ns}"),
            hint,
        )
    }

    /// Run a Velero hook in its pod with `kubectl exec`, within its timeout.
    ///
    /// # Errors
    /// A name kubectl cannot take, or the command failing (with what it said).
    pub fn run_hook(&self, ns: &str, h: &Hook) -> Result<()> {
        let pod = kubectl::Pod::new(
            &self.target,
            self.context.as_deref(),
            ns,
            &h.pod,
            &h.container,
        )?;
        let words: Vec<&str> = h.command.iter().map(String::as_str).collect();
        pod.run_within(
            &pod.exec_args(&words),
            &format!(
                "the hook of pod {ns}/{} ({})",
                h.pod,
                shown(&h.command.join(" "), 120)
            ),
            Some(h.timeout_secs),
        )
    }

    /// Create the copy pod that mounts `claim` to copy the files of claim `of` (the same,
    /// or the one whose VolumeSnapshot `claim` was made from), and wait until it runs, as
    /// the pod this job made (by uid). `read_only` for a backup; `room`, the bytes the
    /// scratch folder may hold; `node`, where a pod that mounts the claim runs (a
    /// backup's).
    fn start(
        &self,
        ns: &str,
        (claim, of): (&str, &str),
        read_only: bool,
        room: Option<u64>,
        node: Option<&str>,
    ) -> Result<Started> {
        let name = format!("rehydra-copy-{:016x}", random());
        let pod = kubectl::Pod::new(&self.target, self.context.as_deref(), ns, &name, CONTAINER)?;
        // reading every file needs DAC_OVERRIDE (never DAC_READ_SEARCH: with it a root
        // process may open_by_handle_at any file of the node's file system, which the
        // runtimes' default seccomp profiles then allow); writing them back with their
        // owners and modes, CHOWN, DAC_OVERRIDE, FOWNER and FSETID: all within Pod
        // Security's baseline list
        let caps: &[&str] = if read_only {
            &["DAC_OVERRIDE"]
        } else {
            &["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"]
        };
        // the archive's room, bounded (past it the kubelet evicts the pod). Only a restore's
        // pod asks the node for it (the archive's size is known): a backup's room is the
        // volume's size, not what it holds, and a pod bound to a node skips the scheduler,
        // whose kubelet refuses one asking for more disk than the node has free
        let mut scratch = json!({});
        let mut requests = json!({"cpu": "50m", "memory": "64Mi"});
        let mut limits = json!({"memory": "256Mi"});
        if let Some(r) = room {
            let r = r.to_string();
            scratch["sizeLimit"] = r.as_str().into();
            if !read_only {
                requests["ephemeral-storage"] = r.as_str().into();
                limits["ephemeral-storage"] = r.into();
            }
        }
        let mut spec = json!({
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "activeDeadlineSeconds": DEADLINE_SECS,
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": CONTAINER,
                "image": self.image,
                "command": ["sleep", DEADLINE_SECS.to_string()],
                "volumeMounts": [
                    {"name": "data", "mountPath": MOUNT, "readOnly": read_only},
                    {"name": "scratch", "mountPath": SCRATCH},
                ],
                "resources": {"requests": requests, "limits": limits},
                "securityContext": {
                    "runAsUser": 0,
                    "privileged": false,
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"], "add": caps},
                },
            }],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}},
                {"name": "scratch", "emptyDir": scratch},
            ],
        });
        if let Some(n) = node {
            spec["nodeName"] = n.into();
        }
        let body = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": ours(&name, ns, of),
            "spec": spec,
        });
        let made = kube::create(
            &self.pods(ns),
            &body,
            &format!("creating copy pod {ns}/{name} for claim {claim}"),
            hint,
        )?;
        let pod = Started {
            pod,
            uid: uid(&made),
        };
        let url = format!("{}/{name}", self.pods(ns));
        let started = Instant::now();
        loop {
            // a pod made again under the name by someone else is not ours (nor running)
            let seen = kube::get(&url, &format!("reading copy pod {ns}/{name}"), hint)?
                .filter(|p| !pod.uid.is_empty() && p["metadata"]["uid"] == pod.uid.as_str());
            let phase = seen.as_ref().map(|p| p["status"]["phase"].clone());
            match phase.as_ref().and_then(Value::as_str) {
                Some("Running") => return Ok(pod),
                Some("Failed" | "Succeeded") | None => {
                    let why = seen.as_ref().map_or("it is gone".into(), why_not_running);
                    self.stop(&pod);
                    return Err(Error::new(
                        ErrorCode::Failed,
                        format!("copy pod {ns}/{name} for claim {claim} stopped: {why}"),
                    ));
                }
                _ => {}
            }
            if host::cancelled() || started.elapsed() >= self.wait {
                let why = seen.as_ref().map_or(String::new(), why_not_running);
                self.stop(&pod);
                if host::cancelled() {
                    return Err(Error::new(ErrorCode::Cancelled, "cancelled"));
                }
                return Err(Error::new(
                    ErrorCode::Failed,
                    format!(
                        "copy pod {ns}/{name} for claim {claim} did not run within {} s ({why}); the image {} must be pullable on the node (copy-image=), and the namespace must admit a pod that runs as root with the capabilities named in the docs",
                        self.wait.as_secs(),
                        self.image
                    ),
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Delete the copy pod (only ours, by uid); a failure is logged (the pod only sleeps,
    /// and says whose it is).
    fn stop(&self, started: &Started) {
        let pod = &started.pod;
        let url = format!(
            "{}/{}?gracePeriodSeconds=0",
            self.pods(&pod.namespace),
            pod.pod
        );
        if let Err(e) = delete_made(&url, &started.uid, "deleting the copy pod") {
            host::log(
                host::Level::Warn,
                &format!(
                    "copy pod {}/{} could not be deleted ({}); delete it by hand",
                    pod.namespace, pod.pod, e.message
                ),
            );
        }
    }

    /// Is the copy pod still the one this job made (same uid, running, not being
    /// deleted)? `kubectl exec` reaches a pod by name: a pod made again under that name
    /// would get a new uid, so this, after the commands ran, proves they ran in ours.
    ///
    /// # Errors
    /// `failed` saying it was replaced.
    fn still_ours(&self, started: &Started) -> Result<()> {
        let pod = &started.pod;
        let url = format!("{}/{}", self.pods(&pod.namespace), pod.pod);
        let seen = kube::get(&url, "reading the copy pod", hint)?;
        let ours = seen.is_some_and(|p| {
            !started.uid.is_empty()
                && p["metadata"]["uid"] == started.uid.as_str()
                && p["metadata"]["deletionTimestamp"].is_null()
                && p["status"]["phase"] == "Running"
        });
        if ours {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::Failed,
                format!(
                    "copy pod {}/{} was deleted or replaced while kubectl used it, so what it copied cannot be trusted",
                    pod.namespace, pod.pod
                ),
            ))
        }
    }

    /// Remove a staged file from the command target; a failure is logged.
    fn unstage(&self, file: &str) {
        if let Some(w) = kubectl::unstage(&self.target, file) {
            host::log(host::Level::Warn, &w);
        }
    }

    /// A staged archive's name on the command target: random, and not the pod's (which
    /// whoever lists pods sees).
    fn staged(&self) -> String {
        format!("{}/rehydra-{:016x}.tar", self.staging, random())
    }

    /// Store the files of claim `ns/claim`, read through `m`, as the item
    /// [`item`]`(ns, claim)`.
    ///
    /// # Errors
    /// The pod, the check, kubectl or the engine failed (the pod and the staged copy are
    /// removed either way).
    pub fn save(&self, ns: &str, claim: &str, m: &Mount) -> Result<engine::ItemSummary> {
        let started = self.start(ns, (m.claim, claim), true, m.room, m.node)?;
        let pod = &started.pod;
        let staged = self.staged();
        let what = format!("copying the files of claim {ns}/{claim}");
        let copied = m
            .check
            .map_or(Ok(()), |check| check())
            .and_then(|()| {
                pod.run(
                    &pod.exec_args(&["tar", "-c", "-f", ARCHIVE, "-C", MOUNT, "."]),
                    &what,
                )
            })
            .and_then(|()| pod.run(&pod.cp_args(ARCHIVE, &staged)?, &what))
            .and_then(|()| self.still_ours(&started))
            .and_then(|()| map_path(&self.map, &staged))
            .and_then(|local| engine::ingest_file(&item(ns, claim), &local));
        self.stop(&started);
        self.unstage(&staged);
        copied
    }

    /// Write item `item` (an archive of `bytes`) into claim `ns/claim`, which must still be
    /// the one the restore created (`uid`) and be bound to a new volume a provisioner made
    /// for it ([`Self::fresh_volume`]).
    ///
    /// # Errors
    /// Not such a volume, or the pod, the engine or kubectl failed (the pod and the staged
    /// copy are removed either way).
    pub fn load(&self, item: &str, ns: &str, claim: &str, uid: &str, bytes: u64) -> Result<u64> {
        let started = self.start(ns, (claim, claim), false, Some(room(bytes)), None)?;
        let pod = &started.pod;
        let staged = self.staged();
        let what = format!("copying the files into claim {ns}/{claim}");
        let written = self
            .fresh_volume(
                ns,
                claim,
                Made {
                    uid: Some(uid),
                    vs: None,
                },
            )
            .and_then(|_| map_path(&self.map, &staged))
            .and_then(|local| engine::restore_item(item, &local, false))
            .and_then(|bytes| {
                pod.run(&pod.cp_in_args(&staged, ARCHIVE)?, &what)?;
                pod.run(
                    &pod.exec_args(&["tar", "-x", "-f", ARCHIVE, "-C", MOUNT, "--numeric-owner"]),
                    &what,
                )?;
                // (the files may have gone elsewhere: said, so the claim is not trusted)
                self.still_ours(&started)?;
                Ok(bytes)
            });
        self.stop(&started);
        self.unstage(&staged);
        written
    }

    /// Is claim `ns/claim` bound (now that the copy pod runs) to a new volume its storage
    /// class's provisioner made for it? That is: the volume is bound to this claim (by
    /// uid), of the claim's class, annotated as made by that class's provisioner, created
    /// no earlier than the claim, and mounts no node's path; the claim is not filled from
    /// a data source. Anything else (a retained volume the claim was matched to, one
    /// restored or cloned) may hold data or be in use elsewhere.
    ///
    /// With `made`, the claim must also be the one the caller made (its uid), and filled
    /// from that VolumeSnapshot, if one is named, and nothing else.
    ///
    /// # Errors
    /// `not-found` when the claim is not the one the caller made; `failed` naming what
    /// the volume is.
    pub(crate) fn fresh_volume(&self, ns: &str, claim: &str, made: Made) -> Result<Value> {
        let read = |url: String, what: String| -> Result<Value> {
            Ok(kube::get(&url, &what, hint)?.unwrap_or(Value::Null))
        };
        let c = read(
            format!(
                "{}/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}",
                self.server
            ),
            format!("reading claim {ns}/{claim}"),
        )?;
        if made
            .uid
            .is_some_and(|u| c["metadata"]["uid"].as_str() != Some(u))
        {
            return Err(Error::new(
                ErrorCode::NotFound,
                format!("claim {ns}/{claim} is not the one this job made (it was replaced)"),
            ));
        }
        let pv_name = rest::text(&c["spec"]["volumeName"], 253).unwrap_or_default();
        let pv = if pv_name.is_empty() {
            Value::Null
        } else {
            read(
                format!(
                    "{}/api/v1/persistentvolumes/{}",
                    self.server,
                    rest::encode(pv_name)
                ),
                format!("reading persistent volume {pv_name}"),
            )?
        };
        let class = rest::text(&c["spec"]["storageClassName"], 253).unwrap_or_default();
        let sc = if class.is_empty() {
            Value::Null
        } else {
            read(
                format!(
                    "{}/apis/storage.k8s.io/v1/storageclasses/{}",
                    self.server,
                    rest::encode(class)
                ),
                format!("reading storage class {class}"),
            )?
        };
        let provisioner = sc["provisioner"].as_str();
        let spec = &c["spec"];
        let filled = match made.vs {
            None => spec["dataSource"].is_object() || spec["dataSourceRef"].is_object(),
            Some(s) => {
                let ours = |d: &Value| {
                    d["apiGroup"] == crate::csi::GROUP
                        && d["kind"] == "VolumeSnapshot"
                        && d["name"] == s
                };
                !ours(&spec["dataSource"])
                    || !(spec["dataSourceRef"].is_null() || ours(&spec["dataSourceRef"]))
            }
        };
        let why = if pv.is_null() {
            "cannot be read"
        } else if !(pv["spec"]["claimRef"]["uid"].is_string()
            && pv["spec"]["claimRef"]["uid"] == c["metadata"]["uid"])
        {
            "is not bound to this claim"
        } else if crate::restore::node_path(&pv) {
            "mounts a path of a node"
        } else if class.is_empty()
            || pv["spec"]["storageClassName"].as_str() != Some(class)
            || provisioner.is_none()
            || pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"].as_str()
                != provisioner
        {
            "its storage class's provisioner did not make (it may be storage in use elsewhere)"
        } else if !made_after(&pv, &c) {
            "is older than the claim (a retained volume it was matched to, which may hold data)"
        } else if filled {
            "is filled from another data source than the claim should be"
        } else {
            return Ok(pv);
        };
        Err(Error::new(
            ErrorCode::Failed,
            format!(
                "claim {ns}/{claim} is bound to persistent volume `{}`, which {why}: its files are not written there",
                shown(pv_name, 80),
            ),
        ))
    }

    /// What the plan says a copy does.
    pub fn describe(&self, ns: &str, claim: &str) -> String {
        format!(
            "a pod of image {} mounts claim {ns}/{claim}; kubectl on {} copies the files through {}",
            self.image, self.target, self.staging
        )
    }
}

#[cfg(test)]
mod tests {
    use rehydra_plugin_sdk::mock::props;

    use super::*;

    #[test]
    fn settings_are_checked_before_anything_runs() {
        let wait = Duration::from_secs(5);
        assert!(
            copier(&props(&[]), "https://k:6443", wait)
                .unwrap()
                .is_none()
        );
        assert!(
            copier(&props(&[("volume-data", "none")]), "https://k:6443", wait)
                .unwrap()
                .is_none()
        );
        let bad = |kv: &[(&str, &str)]| copier(&props(kv), "https://k:6443", wait).err();
        assert!(
            bad(&[("volume-data", "all")])
                .unwrap()
                .message
                .contains("none or pod")
        );
        assert!(
            bad(&[("volume-data", "pod")])
                .unwrap()
                .message
                .contains("`staging`")
        );
        for (k, v) in [
            ("staging", "relative/dir"),
            ("staging", "/stage/../etc"),
            ("command-target", "a b"),
            ("kube-context", "--kubeconfig=/x"),
            ("copy-image", "--privileged"),
            ("copy-image", "busybox latest"),
        ] {
            let mut kv = vec![("volume-data", "pod"), ("staging", "/stage")];
            kv.retain(|(n, _)| *n != k);
            kv.push((k, v));
            assert!(bad(&kv).is_some(), "{k}={v}");
        }
        let c = copier(
            &props(&[("volume-data", "pod"), ("staging", "/stage/")]),
            "https://k:6443",
            wait,
        )
        .unwrap()
        .unwrap();
        assert_eq!((c.staging.as_str(), c.target.as_str()), ("/stage", "local"));
        assert_eq!(item("shop", "data"), "volumes/shop/data.tar");
        assert_eq!(quantity("5Gi"), Some(5 << 30));
        assert_eq!(quantity("500M"), Some(500_000_000));
        assert_eq!(quantity("1024"), Some(1024));
        for odd in ["", "Gi", "1.5Gi", "5Xi", "99999999999Pi", "-1"] {
            assert_eq!(quantity(odd), None, "{odd}");
        }
        assert_eq!(room(0), 64 << 20);
        assert_eq!(room(8 << 30), (9 << 30) + (64 << 20));
        assert_eq!(room(u64::MAX), u64::MAX, "no overflow");
    }

    #[test]
    fn a_volume_made_before_its_claim_is_not_new() {
        let at = |t: &str| json!({"metadata": {"creationTimestamp": t}});
        let claim = at("2026-12-03T21:08:36Z");
        assert!(made_after(&at("2026-12-03T21:08:36Z"), &claim));
        assert!(made_after(&at("2026-12-03T21:09:00Z"), &claim));
        assert!(!made_after(&at("2025-01-01T00:00:00Z"), &claim));
        for odd in [
            "",
            "2026-12-03 21:09:00Z",
            "2026-12-03T21:09:00+01:00",
            "9999",
        ] {
            assert!(!made_after(&at(odd), &claim), "{odd}");
            assert!(!made_after(&claim, &at(odd)), "{odd}");
        }
        assert!(!made_after(&json!({}), &claim));
    }
}
