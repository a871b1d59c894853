//! The files of the claims a restore creates (`volume-data=pod`, see [`crate::volumes`]):
//! which claims get them, and writing them before the workloads start.

use rehydra_plugin_sdk::host;
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest;

use serde_json::Value;

use super::{Options, Prepared, Work, list};
use crate::index::{Entry, Index};
use crate::volumes::{self, Copier};

/// The archive of a claim's files in the restore point.
pub(crate) struct Files {
    pub(crate) item: String,
    pub(crate) bytes: u64,
}

/// The files claim `e` (as `body` goes to the target) gets, if the restore point holds
/// them and they may be written: only into a volume a provisioner makes for the claim. A
/// claim bound to a restored, statically provisioned volume, one without a storage class
/// or with a selector (both bind to volumes that exist), or one filled from a data source
/// is named and gets none.
pub(crate) fn files_of(
    req: &RestoreRequest,
    ix: &Index,
    e: &Entry,
    body: &Value,
    warnings: &mut Vec<String>,
) -> Option<Files> {
    let src = e.namespace.as_deref()?;
    if e.key != "persistentvolumeclaims"
        || !ix
            .claims
            .iter()
            .any(|c| c.data && c.namespace == src && c.name == e.name)
    {
        return None;
    }
    let item = volumes::item(src, &e.name);
    let Some(info) = req.restore_point.items.iter().find(|i| i.name == item) else {
        warnings.push(format!(
            "claim {}: the index says its files are in the restore point, but item {item} is not",
            e.item()
        ));
        return None;
    };
    if info.kind != ItemKind::Stream {
        warnings.push(format!(
            "claim {}: item {item} is not an archive (a stream): its files are not written",
            e.item()
        ));
        return None;
    }
    let spec = &body["spec"];
    let why = if let Some(v) = spec["volumeName"].as_str() {
        format!(
            "it binds to persistent volume {} (statically provisioned: it may be storage another cluster still uses)",
            rest::shown(v, 80)
        )
    } else if spec["storageClassName"].as_str() == Some("") {
        "it has no storage class, so it binds to a volume that exists".into()
    } else if spec["selector"].is_object() {
        "it selects a volume that exists (spec.selector)".into()
    } else if spec["dataSource"].is_object() || spec["dataSourceRef"].is_object() {
        "its volume is filled from a data source (spec.dataSource)".into()
    } else {
        return Some(Files {
            item,
            bytes: info.size,
        });
    };
    warnings.push(format!(
        "claim {}: its files are in the restore point but are not written, because {why}; copy them by hand if that volume is new",
        e.item()
    ));
    None
}

/// How the files of the claims this restore creates are copied in. A restore point that
/// holds them needs `volume-data=pod` (with `staging=`), or `volume-data=none` to restore
/// those claims empty on purpose; a claim that exists keeps its data.
pub(super) fn data_copies(
    req: &RestoreRequest,
    o: &Options,
    works: &[Work],
    warnings: &mut Vec<String>,
    blockers: &mut Vec<String>,
) -> Result<Option<Copier>> {
    let kept: Vec<String> = works
        .iter()
        .filter(|w| w.data.is_some() && w.existing.is_some())
        .map(Work::label)
        .collect();
    if !kept.is_empty() {
        warnings.push(format!(
            "{} exist in the target: their data is left as it is, not restored (a claim is never replaced)",
            list(&kept)
        ));
    }
    let new: Vec<String> = works
        .iter()
        .filter(|w| w.data.is_some() && w.existing.is_none())
        .map(Work::label)
        .collect();
    // a volume smaller than the files it gets would fill up halfway through the copy
    for w in works.iter().filter(|w| w.existing.is_none()) {
        let Some(f) = &w.data else { continue };
        let room = w.body["spec"]["resources"]["requests"]["storage"]
            .as_str()
            .and_then(volumes::quantity);
        if let Some(room) = room
            && f.bytes > room
        {
            warnings.push(format!(
                "{}: its files take {} bytes, more than the {room} bytes it asks for; the copy may run out of room (a storage class may round the size up)",
                w.label(),
                f.bytes
            ));
        }
    }
    let copier = volumes::copier(&req.options, &o.server, o.wait)?;
    if !new.is_empty() && copier.is_none() {
        if setting(&req.options, "volume-data").is_some_and(|v| v.trim() == "none") {
            warnings.push(format!(
                "the restore point holds the files of {}; with volume-data=none they get new, empty volumes",
                list(&new)
            ));
        } else {
            blockers.push(format!(
                "the restore point holds the files of {}: give volume-data=pod and staging=<folder kubectl copies through> (grant command:kubectl@<target> and command:rm@<target>) to restore them, or volume-data=none to restore the claims empty",
                list(&new)
            ));
        }
    }
    Ok(copier)
}

/// Copy the files of the claims this restore created (each with the uid the API server
/// gave it) into their new volumes, before any workload is created. Returns the bytes
/// written.
///
/// # Errors
/// A claim whose files could not be written stops the restore there.
pub(super) fn fill(p: &Prepared, claims: &[(&Work, String)]) -> Result<u64> {
    let Some(c) = &p.copier else {
        return Ok(0);
    };
    let mut bytes = 0;
    for (w, uid) in claims {
        let (Some(f), Some(ns)) = (&w.data, &w.ns) else {
            continue;
        };
        host::progress(0, 0, &format!("files of claim {ns}/{}", w.name));
        match c.load(&f.item, ns, &w.name, uid, f.bytes) {
            Ok(n) => bytes += n,
            Err(e) if e.code == ErrorCode::Cancelled => return Err(e),
            // the workloads would start on a volume without its files: stop before them
            Err(e) => {
                return Err(Error::new(
                    e.code,
                    format!(
                        "the files of {} could not be written, so no workload was created: {} (what was created stays: delete that claim and restore again)",
                        w.label(),
                        e.message
                    ),
                ));
            }
        }
    }
    Ok(bytes)
}
