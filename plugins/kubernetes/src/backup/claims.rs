//! The files of the claims a backup stores (`volume-data=pod`, see [`crate::volumes`]), a
//! namespace at a time:
//!
//! 1. with `hooks=velero`, the Velero pre hooks of the running pods that mount its claims
//!    ([`crate::hooks`]);
//! 2. a VolumeSnapshot of each claim whose driver has a class ([`crate::csi`]), waited
//!    for until the storage has cut it (not until it is ready);
//! 3. the files of the other claims, copied while in use;
//! 4. the post hooks, also when a copy failed or the job was cancelled;
//! 5. once each VolumeSnapshot is ready, the files of its claim, from a claim made from it and
//!    checked before anything is read (any failure: copied while in use instead); the
//!    VolumeSnapshot and its claim are deleted either way.
//!
//! Each claim whose files are not in the restore point is named in a warning, and so is
//! each one copied while in use because its VolumeSnapshot failed.

use std::time::Instant;

use rehydra_plugin_sdk::engine;
use rehydra_plugin_sdk::host;
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{self, shown};
use serde_json::Value;

use crate::csi::{Csi, Stage, Taken};
use crate::hooks::{self, Hook};
use crate::index::{Claim, Index};
use crate::volumes::{self, Copier, Mount, quantity};

/// How the backup copies claims: the copier, whether Velero's hooks run, and the CSI
/// snapshots it may take.
pub(super) struct Copies<'a> {
    pub copier: Option<&'a Copier>,
    pub hooks: bool,
    pub csi: Option<&'a Csi>,
}

fn cancelled() -> Error {
    Error::new(ErrorCode::Cancelled, "cancelled; nothing was stored")
}

/// Copy the files of every claim of `ix` (see the module's documentation).
///
/// # Errors
/// Only a cancelled job; every other failure is a warning naming the claim.
pub(super) fn copy_volumes(how: &Copies, ix: &mut Index, warnings: &mut Vec<String>) -> Result<()> {
    let Some(copier) = how.copier else {
        for c in &ix.claims {
            warnings.push(format!(
                "claim {}/{} ({}): its data is not in this restore point (volume-data=pod copies it through a pod); a restore creates the claim with a new, empty volume",
                c.namespace,
                c.name,
                c.size.as_deref().unwrap_or("size unknown")
            ));
        }
        return Ok(());
    };
    let mut namespaces: Vec<String> = ix.claims.iter().map(|c| c.namespace.clone()).collect();
    namespaces.dedup();
    let total = ix.claims.len() as u64;
    let mut done = 0;
    for ns in namespaces {
        let pods = copier.pods_of(&ns).unwrap_or_else(|e| {
            warnings.push(format!(
                "namespace {ns}: its pods could not be listed ({}): no Velero hook runs, and copy pods go where the scheduler puts them",
                e.message
            ));
            Vec::new()
        });
        let mut claims: Vec<&mut Claim> =
            ix.claims.iter_mut().filter(|c| c.namespace == ns).collect();
        let (held, post) = if how.hooks {
            pre_hooks(copier, &ns, &pods, &claims, warnings)
        } else {
            (Vec::new(), Vec::new())
        };
        let mut ns_copy = Namespace {
            copier,
            pods: &pods,
            warnings: &mut *warnings,
            done: &mut done,
            total,
        };
        // the claims whose files may be copied at all; their snapshots are asked for, and
        // cut, while the application is quiet
        let mut live = Vec::new();
        let mut taken: Vec<(usize, Taken)> = Vec::new();
        let mut stopped = None;
        for (i, c) in claims.iter().enumerate() {
            if let Some(why) = ns_copy.left_out(c, &held) {
                ns_copy.warnings.push(why);
                *ns_copy.done += 1;
                continue;
            }
            let Some(snaps) = how.csi else {
                live.push(i);
                continue;
            };
            match snaps.start(&ns, &c.name) {
                Ok(Some(t)) => taken.push((i, t)),
                Ok(None) => live.push(i),
                Err(e) => {
                    ns_copy.live_instead(c, &e);
                    live.push(i);
                }
            }
        }
        let mut cut = Vec::new();
        let held_since = Instant::now();
        for (i, mut t) in taken {
            let Some(snaps) = how.csi else { break };
            match snaps.wait(&mut t, Stage::Cut, held_since) {
                Ok(()) => cut.push((i, t)),
                Err(e) => {
                    ns_copy.warnings.extend(snaps.remove(&t));
                    if e.code == ErrorCode::Cancelled {
                        stopped = Some(cancelled());
                    } else {
                        ns_copy.live_instead(&*claims[i], &e);
                        live.push(i);
                    }
                }
            }
        }
        for &i in &live {
            if stopped.is_some() {
                break;
            }
            if let Err(e) = ns_copy.copy(&mut *claims[i]) {
                stopped = Some(e);
            }
        }
        post_hooks(copier, &ns, &post, &mut *ns_copy.warnings);
        // the snapshots' files, after the hooks (the application runs on meanwhile); a
        // claim whose VolumeSnapshot could not be read is copied while in use; each VolumeSnapshot and
        // its claim go, whatever happened
        for (i, mut t) in cut {
            let Some(snaps) = how.csi else { break };
            if stopped.is_none() {
                let read = ns_copy.begin(&*claims[i]).and_then(|()| {
                    snaps.wait(&mut t, Stage::Ready, Instant::now())?;
                    let (mount, size) = snaps.claim_from(&mut t)?;
                    let check = || snaps.check(&t, copier);
                    let m = Mount {
                        claim: &mount,
                        room: quantity(&size).map(volumes::room),
                        node: None,
                        check: Some(&check),
                    };
                    copier.save(&ns, &claims[i].name, &m)
                });
                let from = format!("from VolumeSnapshot {}", t.vs);
                match read {
                    Ok(sum) => ns_copy.stored(&mut *claims[i], &sum, &from),
                    Err(e) if e.code == ErrorCode::Cancelled => stopped = Some(e),
                    Err(e) => {
                        ns_copy.live_instead(&*claims[i], &e);
                        if let Err(e) = ns_copy.copy_live(&mut *claims[i]) {
                            stopped = Some(e);
                        }
                    }
                }
            }
            ns_copy.warnings.extend(snaps.remove(&t));
        }
        if let Some(e) = stopped {
            return Err(e);
        }
    }
    Ok(())
}

/// The copies of one namespace's claims.
struct Namespace<'a> {
    copier: &'a Copier,
    pods: &'a [Value],
    warnings: &'a mut Vec<String>,
    done: &'a mut u64,
    total: u64,
}

/// The running pods of `pods` that mount claim `c`.
fn users<'p>(pods: &'p [Value], c: &Claim) -> Vec<&'p Value> {
    pods.iter()
        .filter(|p| volumes::runs_with(p, &c.name))
        .collect()
}

/// The node of a running pod that mounts claim `c` (a ReadWriteOnce volume mounts on one
/// node: a copy of the claim in use runs there).
fn node_of<'p>(pods: &'p [Value], c: &Claim) -> Option<&'p str> {
    users(pods, c)
        .first()
        .copied()
        .and_then(|p| rest::text(&p["spec"]["nodeName"], 253))
}

impl Namespace<'_> {
    /// Why claim `c`'s files are not copied at all (a block volume, or a pre hook of a pod
    /// that mounts it failed), if they are not.
    fn left_out(&self, c: &Claim, held: &[String]) -> Option<String> {
        let size = c.size.as_deref().unwrap_or("size unknown");
        if c.block {
            return Some(format!(
                "claim {}/{} is a block volume: its data is not in this restore point (only file systems are copied)",
                c.namespace, c.name
            ));
        }
        users(self.pods, c)
            .iter()
            .any(|p| held.iter().any(|h| p["metadata"]["name"] == h.as_str()))
            .then(|| {
                format!(
                    "claim {}/{} ({size}): its data is not in this restore point: a pre hook of a pod that mounts it failed",
                    c.namespace, c.name
                )
            })
    }

    /// Count claim `c` as the next one copied, and say so.
    ///
    /// # Errors
    /// A cancelled job.
    fn begin(&mut self, c: &Claim) -> Result<()> {
        *self.done += 1;
        if host::cancelled() {
            return Err(cancelled());
        }
        host::progress(
            *self.done,
            self.total,
            &format!("files of claim {}/{}", c.namespace, c.name),
        );
        Ok(())
    }

    /// Say that claim `c` is copied while in use because its VolumeSnapshot failed (`e`).
    fn live_instead(&mut self, c: &Claim, e: &Error) {
        self.warnings.push(format!(
            "claim {}/{}: not copied from a VolumeSnapshot ({}); its files are copied while in use",
            c.namespace, c.name, e.message
        ));
    }

    /// Record that claim `c`'s files are stored (`how`: from where).
    fn stored(&mut self, c: &mut Claim, sum: &engine::ItemSummary, how: &str) {
        c.data = true;
        host::info(&format!(
            "claim {}/{}: {} bytes of files stored ({} new), {how}",
            c.namespace, c.name, sum.size, sum.new_bytes
        ));
    }

    /// Count claim `c` ([`Self::begin`]) and copy its files while in use
    /// ([`Self::copy_live`]).
    ///
    /// # Errors
    /// Only a cancelled job.
    fn copy(&mut self, c: &mut Claim) -> Result<()> {
        self.begin(c)?;
        self.copy_live(c)
    }

    /// Copy claim `c`'s files while in use, on the node of a pod that mounts it
    /// ([`node_of`]). A failure is a warning naming the claim.
    ///
    /// # Errors
    /// Only a cancelled job.
    fn copy_live(&mut self, c: &mut Claim) -> Result<()> {
        let m = Mount {
            claim: &c.name,
            room: c.size.as_deref().and_then(quantity).map(volumes::room),
            node: node_of(self.pods, c),
            check: None,
        };
        match self.copier.save(&c.namespace, &c.name, &m) {
            Ok(sum) => {
                self.stored(c, &sum, "copied while in use");
                Ok(())
            }
            Err(e) if e.code == ErrorCode::Cancelled => Err(e),
            Err(e) => {
                self.warnings.push(format!(
                    "claim {}/{} ({}): its data is not in this restore point: {}",
                    c.namespace,
                    c.name,
                    c.size.as_deref().unwrap_or("size unknown"),
                    e.message
                ));
                Ok(())
            }
        }
    }
}

/// Run the Velero pre hooks of the running pods (not ours) that mount one of `claims`;
/// returns the pods whose `Fail` hook failed (their claims are not copied) and the post
/// hooks to run.
fn pre_hooks(
    copier: &Copier,
    ns: &str,
    pods: &[Value],
    claims: &[&mut Claim],
    warnings: &mut Vec<String>,
) -> (Vec<String>, Vec<Hook>) {
    // a copy pod of ours is never a hook's pod (its annotations are not the app's word)
    let users = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/managed-by"] != "rehydra")
        .filter(|p| claims.iter().any(|c| volumes::runs_with(p, &c.name)));
    let mut held = Vec::new();
    let mut post = Vec::new();
    for p in users {
        match hooks::of(p, "pre") {
            Ok(Some(h)) => {
                warnings.extend(h.warning.clone());
                match copier.run_hook(ns, &h) {
                    Ok(()) => host::info(&format!("pre hook of pod {ns}/{} ran", h.pod)),
                    Err(e) if h.fail => {
                        warnings.push(format!(
                            "pre hook of pod {ns}/{} failed (on-error Fail): the claims it mounts are not copied: {}",
                            h.pod, e.message
                        ));
                        held.push(h.pod.clone());
                    }
                    Err(e) => warnings.push(format!(
                        "pre hook of pod {ns}/{} failed (on-error Continue): {}",
                        h.pod, e.message
                    )),
                }
            }
            Ok(None) => {}
            Err(why) => warnings.push(why),
        }
        match hooks::of(p, "post") {
            Ok(Some(h)) => {
                warnings.extend(h.warning.clone());
                post.push(h);
            }
            Ok(None) => {}
            Err(why) => warnings.push(why),
        }
    }
    (held, post)
}

/// Run the post hooks, whatever happened to the copies (a frozen file system must thaw);
/// their failures are logged too, since a cancelled backup reports no warnings.
fn post_hooks(copier: &Copier, ns: &str, post: &[Hook], warnings: &mut Vec<String>) {
    for h in post {
        match copier.run_hook(ns, h) {
            Ok(()) => host::info(&format!("post hook of pod {ns}/{} ran", h.pod)),
            Err(e) => {
                let w = format!(
                    "post hook of pod {ns}/{} failed: {}; run it by hand ({})",
                    h.pod,
                    e.message,
                    shown(&h.command.join(" "), 120)
                );
                host::log(host::Level::Warn, &w);
                warnings.push(w);
            }
        }
    }
}
