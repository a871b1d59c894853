//! `compare=live`: what changed in the directory since a restore point, object by object
//! and attribute by attribute (old → new), as the steps of a plan that writes nothing.
//! `compare=<restore point>`: the same between two restore points of the domain, from the
//! older to the newer (the other point read through the host's `find-point`, which only
//! finds points of the same asset). Objects are matched by `objectGUID` in every
//! partition; a deleted object is one the directory (or the newer point) no longer shows
//! (tombstones are not searched). The values of credentials and secrets (LAPS, BitLocker
//! recovery) are never shown, only that they changed. The older side's objects are held
//! in memory while comparing, as a restore plan holds them (within the plugin's 512 MiB).

use std::collections::BTreeMap;

use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::{engine, host};

use crate::backup::{self, META, Meta};
use crate::changes::{differences, show_change};
use crate::ldif::Obj;
use crate::rules::secret;

/// Most objects named one by one; the rest are counted.
const SHOWN: usize = 1000;

/// The plan listing what changed in `directory` since the point described by `meta`.
pub fn with_live(directory: &str, meta: &Meta, since: &str) -> Result<RestorePlan> {
    let point = every_object(engine::read_document, meta)?;
    let ncs: Vec<String> = meta.partitions.iter().map(|p| p.nc.clone()).collect();
    let found = compared(point, |f| {
        for nc in &ncs {
            backup::read_partition(directory, nc, &ncs, &mut *f)?;
        }
        Ok(())
    })?;
    let summary = found.summary(&format!("since {since}"));
    host::info(&format!("{directory} {summary}"));
    Ok(found.plan(
        &format!("What changed in {} {summary}", meta.domain),
        "Nothing is written: this compares the restore point with the live directory",
        (
            "not in the restore point",
            "in the restore point, gone from the directory",
        ),
    ))
}

/// The plan listing what changed between the point in hand (`here`, described by `meta`)
/// and the restore point `other` names (an id, a unique prefix or `latest`), from the
/// older of the two to the newer.
pub fn with_point(here: &RestorePoint, meta: &Meta, other: &str) -> Result<RestorePlan> {
    let there = engine::find_point(other)?;
    if there.id == here.id {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "compare={other} names the restore point being compared; name another point of {}, or compare=live",
                meta.domain
            ),
        ));
    }
    let there_meta = Meta::parse(&engine::read_point_document(&there.id, META)?)?;
    if !there_meta
        .naming_context
        .eq_ignore_ascii_case(&meta.naming_context)
    {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "restore point {} holds {}, not {}: compare points of one domain",
                short(&there.id),
                there_meta.naming_context,
                meta.naming_context
            ),
        ));
    }
    let read_there = |item: &str| engine::read_point_document(&there.id, item);
    // RFC 3339 in UTC from the host: ordered as text
    let (older, newer, found) = if there.time <= here.time {
        let before = every_object(read_there, &there_meta)?;
        let found = compared(before, |f| each_object(engine::read_document, meta, f))?;
        (&there, here, found)
    } else {
        let before = every_object(engine::read_document, meta)?;
        let found = compared(before, |f| each_object(read_there, &there_meta, f))?;
        (here, &there, found)
    };
    let summary = found.summary(&format!(
        "from {} ({}) to {} ({})",
        older.time,
        short(&older.id),
        newer.time,
        short(&newer.id)
    ));
    host::info(&format!("{} {summary}", meta.domain));
    Ok(found.plan(
        &format!("What changed in {} {summary}", meta.domain),
        "Nothing is written: this compares two restore points",
        (
            "not in the older point",
            "in the older point, not in the newer",
        ),
    ))
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Every object of every partition of a restore point, by GUID.
fn every_object(
    read: impl Fn(&str) -> Result<Vec<u8>>,
    meta: &Meta,
) -> Result<BTreeMap<Vec<u8>, Obj>> {
    let mut out = BTreeMap::new();
    each_object(read, meta, &mut |o: Obj| {
        if let Some(g) = o.values("objectGUID").first().cloned() {
            out.insert(g, o);
        }
        Ok(())
    })?;
    Ok(out)
}

fn each_object(
    read: impl Fn(&str) -> Result<Vec<u8>>,
    meta: &Meta,
    f: &mut dyn FnMut(Obj) -> Result<()>,
) -> Result<()> {
    for p in &meta.partitions {
        backup::each_object(&read, p, &mut *f)?;
    }
    Ok(())
}

/// Objects added, deleted and changed (DN, and what changed in it), sorted by DN.
struct Found {
    added: Vec<String>,
    deleted: Vec<String>,
    changed: Vec<(String, String)>,
}

/// What changed from `before` (objects by GUID) to the objects `after` gives.
fn compared(
    mut before: BTreeMap<Vec<u8>, Obj>,
    after: impl FnOnce(&mut dyn FnMut(Obj) -> Result<()>) -> Result<()>,
) -> Result<Found> {
    let total = before.len() as u64;
    let (mut added, mut changed) = (Vec::new(), Vec::new());
    let mut seen = 0u64;
    after(&mut |o: Obj| {
        seen += 1;
        if seen.is_multiple_of(500) {
            host::progress(seen, total, "objects compared");
        }
        let Some(g) = o.values("objectGUID").first() else {
            return Ok(());
        };
        match before.remove(g) {
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
                                show_change(k, a, b)
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
    let mut deleted: Vec<String> = before.into_values().map(|o| o.dn).collect();
    added.sort();
    deleted.sort();
    changed.sort();
    Ok(Found {
        added,
        deleted,
        changed,
    })
}

impl Found {
    fn summary(&self, span: &str) -> String {
        format!(
            "{span}: {} added, {} deleted, {} changed",
            self.added.len(),
            self.deleted.len(),
            self.changed.len()
        )
    }

    /// A plan of one summary step and a step per object (the first [`SHOWN`]); `why`
    /// says, for added and deleted objects, where they are missing.
    fn plan(self, title: &str, detail: &str, why: (&str, &str)) -> RestorePlan {
        let mut plan = empty_plan();
        plan.steps.push(Step::new("summary", title, detail.into()));
        let rows = self
            .added
            .into_iter()
            .map(|dn| (format!("Added {dn}"), why.0.to_string()))
            .chain(
                self.deleted
                    .into_iter()
                    .map(|dn| (format!("Deleted {dn}"), why.1.to_string())),
            )
            .chain(
                self.changed
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
        plan
    }
}

#[cfg(test)]
mod tests {
    use rehydra_plugin_sdk::mock::{MockHost, MockPoint};

    use super::*;
    use crate::backup::Partition;

    const SHARD: &str = "domain/objects-0001.ldif";
    const OLD: &str = "dn: CN=Alice,DC=test,DC=lan\nobjectGUID:: AQEBAQEBAQEBAQEBAQEBAQ==\ntitle: Engineer\n\ndn: CN=Bob,DC=test,DC=lan\nobjectGUID:: AgICAgICAgICAgICAgICAg==\ntitle: Operator\nuSNChanged: 10\n";
    const NEW: &str = "dn: CN=Bob,DC=test,DC=lan\nobjectGUID:: AgICAgICAgICAgICAgICAg==\ntitle: Intern\nuSNChanged: 99\n\ndn: CN=Carol,DC=test,DC=lan\nobjectGUID:: AwMDAwMDAwMDAwMDAwMDAw==\n";

    fn point(time: &str, ldif: &str) -> MockPoint {
        let meta = Meta {
            domain: "test.lan".into(),
            directory: "dc1.test.lan".into(),
            naming_context: "DC=test,DC=lan".into(),
            highest_usn: 1,
            tombstone_lifetime_days: 180,
            recycle_bin: false,
            domain_controllers: vec![],
            partitions: vec![Partition {
                name: "domain".into(),
                nc: "DC=test,DC=lan".into(),
                objects: 2,
                shards: vec![SHARD.into()],
            }],
        };
        MockPoint::new("test.lan@dc1.test.lan")
            .time(time)
            .document(META, serde_json::to_vec(&meta).unwrap())
            .document(SHARD, ldif)
    }

    #[test]
    fn two_points_compare_older_to_newer_whichever_is_in_hand() {
        let older = point("2026-12-01T00:00:00+00:00", OLD);
        let first = older.record();
        let mock = MockHost::new()
            .grant("engine")
            .with_point(older)
            .with_point(point("2026-12-02T00:00:00+00:00", NEW));
        let newer = mock.last_point().unwrap();
        let mut shown = Vec::new();
        for (here, there) in [(&newer, first.id.as_str()), (&first, newer.id.as_str())] {
            let mut req = mock.restore_request("-", &[("compare", there)]);
            req.restore_point = here.clone();
            // no directory is asked: the mock serves none
            let plan = mock.plan_restore::<crate::ActiveDirectory>(req).unwrap();
            let steps: Vec<String> = plan
                .steps
                .iter()
                .map(|s| format!("{} | {}", s.title, s.detail))
                .collect();
            shown.push(steps);
        }
        assert_eq!(shown[0], shown[1], "the same, older to newer");
        let s = &shown[0];
        assert!(s[0].contains("1 added, 1 deleted, 1 changed"), "{s:?}");
        assert!(s[0].contains("from 2026-12-01"), "{s:?}");
        assert_eq!(
            s[1],
            "Added CN=Carol,DC=test,DC=lan | not in the older point"
        );
        assert_eq!(
            s[2],
            "Deleted CN=Alice,DC=test,DC=lan | in the older point, not in the newer"
        );
        assert_eq!(
            s[3],
            "Changed CN=Bob,DC=test,DC=lan | title: Operator → Intern"
        );
        assert_eq!(s.len(), 4, "uSNChanged is bookkeeping: {s:?}");
        // the point itself is not another point, and a comparison restores nothing
        let req = mock.restore_request("-", &[("compare", "latest")]);
        let e = mock
            .plan_restore::<crate::ActiveDirectory>(req.clone())
            .unwrap_err();
        assert!(
            e.message.contains("names the restore point being compared"),
            "{e:?}"
        );
        let req = mock.restore_request("-", &[("compare", &first.id)]);
        let e = mock.restore::<crate::ActiveDirectory>(req).unwrap_err();
        assert!(e.message.contains("run it with --plan-only"), "{e:?}");
    }
}
