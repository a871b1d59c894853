//! `compare=live`: what changed in the directory since a restore point, object by object
//! and attribute by attribute (old → new), as the steps of a plan that writes nothing.
//! Objects are matched by `objectGUID` in every partition of the point; a deleted object
//! is one the directory no longer shows (tombstones are not searched). The values of
//! credentials and secrets (LAPS, BitLocker recovery) are never shown, only that they
//! changed. The point's objects are held in memory while comparing, as a restore plan
//! holds them (within the plugin's 512 MiB).

use std::collections::BTreeMap;

use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::{engine, host};

use crate::backup::{self, Meta};
use crate::changes::{differences, show};
use crate::ldif::Obj;
use crate::rules::secret;

/// Most objects named one by one; the rest are counted.
const SHOWN: usize = 1000;

/// The plan listing what changed in `directory` since the point described by `meta`.
pub fn with_live(directory: &str, meta: &Meta, since: &str) -> Result<RestorePlan> {
    let mut point: BTreeMap<Vec<u8>, Obj> = BTreeMap::new();
    for p in &meta.partitions {
        backup::each_object(engine::read_document, p, |o| {
            if let Some(g) = o.values("objectGUID").first().cloned() {
                point.insert(g, o);
            }
            Ok(())
        })?;
    }
    let ncs: Vec<String> = meta.partitions.iter().map(|p| p.nc.clone()).collect();
    let (mut added, mut changed) = (Vec::new(), Vec::new());
    let mut seen = 0u64;
    for nc in &ncs {
        backup::read_partition(directory, nc, &ncs, |o| {
            seen += 1;
            if seen.is_multiple_of(500) {
                host::progress(seen, point.len() as u64, "objects compared");
            }
            let Some(g) = o.values("objectGUID").first() else {
                return Ok(());
            };
            match point.remove(g) {
                None => added.push(o.dn),
                Some(old) => {
                    let diff = differences(&old, &o);
                    let moved = !old.dn.eq_ignore_ascii_case(&o.dn);
                    if moved || !diff.is_empty() {
                        let mut lines: Vec<String> = diff
                            .iter()
                            .map(|(k, a, b)| {
                                if secret(k) {
                                    format!("{k}: changed (values hidden)")
                                } else {
                                    format!("{k}: {} → {}", show(a), show(b))
                                }
                            })
                            .collect();
                        if moved {
                            lines.insert(0, format!("was {}", old.dn));
                        }
                        changed.push((o.dn, lines.join("; ")));
                    }
                }
            }
            Ok(())
        })?;
    }
    let mut deleted: Vec<String> = point.into_values().map(|o| o.dn).collect();
    added.sort();
    deleted.sort();
    changed.sort();
    let mut plan = empty_plan();
    let summary = format!(
        "since {since}: {} added, {} deleted, {} changed",
        added.len(),
        deleted.len(),
        changed.len()
    );
    host::info(&format!("{directory} {summary}"));
    plan.steps.push(Step::new(
        "summary",
        &format!("What changed in {} {summary}", meta.domain),
        "Nothing is written: this compares the restore point with the live directory".into(),
    ));
    let rows = added
        .into_iter()
        .map(|dn| {
            (
                format!("Added {dn}"),
                "not in the restore point".to_string(),
            )
        })
        .chain(deleted.into_iter().map(|dn| {
            (
                format!("Deleted {dn}"),
                "in the restore point, gone from the directory".to_string(),
            )
        }))
        .chain(
            changed
                .into_iter()
                .map(|(dn, d)| (format!("Changed {dn}"), d)),
        );
    let mut more = 0usize;
    for (i, (title, detail)) in rows.enumerate() {
        if i < SHOWN {
            plan.steps.push(Step::new(&format!("c{i}"), &title, detail));
        } else {
            more += 1;
        }
    }
    if more > 0 {
        plan.warnings.push(format!(
            "{more} more changes are not listed (the first {SHOWN} are)"
        ));
    }
    Ok(plan)
}
