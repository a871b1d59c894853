//! The estate as one list: assets the installed plugins discovered, joined with what the
//! repository holds for them (restore points, age against the RPO) and the risks that
//! follow (a Trusted launch VM without a key backup, an Arc VM whose restore elsewhere
//! needs rehydration, never test-restored). The desktop app's inventory screen and
//! `rehydra inventory` both render this.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::RestorePointDto;
use crate::plugins::Asset;

/// A risk badge.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ts_rs::TS)]
pub struct Risk {
    /// Stable code: `tvm-key-missing`, `needs-rehydration`, `never-test-restored`, `rpo-missed`, `unprotected`.
    pub code: String,
    /// What the admin reads.
    pub title: String,
}

/// One row of the inventory.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct InventoryAsset {
    /// Asset id (as the plugin reports it, or the restore points' asset).
    pub id: String,
    /// Display name.
    pub name: String,
    /// `cluster`, `node`, `vm`, `folder` … (`backup` for an asset known only from restore points).
    pub kind: String,
    /// Id of the containing asset.
    pub parent: Option<String>,
    /// The plugin that discovered it (empty when only restore points know it).
    pub plugin: String,
    /// Protection flags from discovery.
    pub flags: Vec<String>,
    /// Restore points of this asset (any workload).
    pub restore_points: usize,
    /// Time of the newest one.
    pub last_backup: Option<DateTime<Utc>>,
    /// Hours since then.
    pub age_hours: Option<f64>,
    /// `protected` (within the RPO), `stale` (older), `unprotected` (none), or
    /// `container` for clusters and nodes.
    pub status: String,
    /// Risk badges.
    pub risks: Vec<Risk>,
}

/// A point in time (UTC), as `build` takes it.
pub type Now = DateTime<Utc>;

/// The current time.
#[must_use]
pub fn now() -> Now {
    Utc::now()
}

fn risk(code: &str, title: &str) -> Risk {
    Risk {
        code: code.into(),
        title: title.into(),
    }
}

/// Build the inventory. `discovered` holds each plugin's assets; `restored` the ids of
/// restore points that were ever restored (from the catalog's job runs); `rpo_hours` the
/// recovery point objective.
pub fn build(
    discovered: &[(String, Vec<Asset>)],
    restore_points: &[RestorePointDto],
    restored: &HashSet<String>,
    rpo_hours: f64,
    now: DateTime<Utc>,
) -> Vec<InventoryAsset> {
    let mut by_asset: HashMap<&str, Vec<&RestorePointDto>> = HashMap::new();
    for s in restore_points {
        by_asset.entry(s.asset.as_str()).or_default().push(s);
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let container = |k: &str| matches!(k, "cluster" | "node" | "subscription");
    for (plugin, assets) in discovered {
        for a in assets {
            seen.insert(a.id.clone());
            let points = by_asset.get(a.id.as_str()).cloned().unwrap_or_default();
            let mut row = row(
                a.id.clone(),
                a.name.clone(),
                a.kind.clone(),
                a.parent.clone(),
                plugin,
                a.flags.clone(),
                &points,
                restored,
                rpo_hours,
                now,
            );
            if container(&a.kind) {
                row.status = "container".into();
                row.risks.clear();
            } else {
                let has = |f: &str| a.flags.iter().any(|x| x == f);
                if has("trusted-launch") && !points.iter().any(|s| s.workload == "tvm-keys") {
                    row.risks.push(risk(
                        "tvm-key-missing",
                        "Trusted launch VM without a key backup",
                    ));
                }
                if has("arc-managed") {
                    row.risks.push(risk(
                        "needs-rehydration",
                        "Arc VM: a restore elsewhere needs rehydration",
                    ));
                }
            }
            out.push(row);
        }
    }
    // what only the repository knows (folders, disks, assets of plugins not run now)
    let mut rest: Vec<_> = by_asset
        .iter()
        .filter(|(a, _)| !seen.contains(**a))
        .collect();
    rest.sort_by_key(|(a, _)| *a);
    for (asset, points) in rest {
        let plugin = points
            .first()
            .map(|s| s.plugin_id.clone())
            .unwrap_or_default();
        let workload = points
            .first()
            .map(|s| s.workload.clone())
            .unwrap_or_default();
        out.push(row(
            (*asset).to_string(),
            (*asset).to_string(),
            "backup".into(),
            Some(format!("workload/{workload}")),
            &plugin,
            vec![],
            points,
            restored,
            rpo_hours,
            now,
        ));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn row(
    id: String,
    name: String,
    kind: String,
    parent: Option<String>,
    plugin: &str,
    flags: Vec<String>,
    points: &[&RestorePointDto],
    restored: &HashSet<String>,
    rpo_hours: f64,
    now: DateTime<Utc>,
) -> InventoryAsset {
    let last = points.iter().map(|s| s.time).max();
    let age = last.map(|t| (now - t).num_seconds().max(0) as f64 / 3600.0);
    let mut risks = Vec::new();
    let status = match age {
        None => {
            risks.push(risk("unprotected", "No restore point"));
            "unprotected"
        }
        Some(h) if h > rpo_hours => {
            risks.push(risk("rpo-missed", "Last restore point older than the RPO"));
            "stale"
        }
        Some(_) => "protected",
    };
    if !points.is_empty() && !points.iter().any(|s| restored.contains(&s.id)) {
        risks.push(risk("never-test-restored", "Never test-restored"));
    }
    InventoryAsset {
        id,
        name,
        kind,
        parent,
        plugin: plugin.to_string(),
        flags,
        restore_points: points.len(),
        last_backup: last,
        age_hours: age,
        status: status.into(),
        risks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(
        id: &str,
        asset: &str,
        workload: &str,
        hours_ago: i64,
        now: DateTime<Utc>,
    ) -> RestorePointDto {
        RestorePointDto {
            id: id.into(),
            short_id: id.into(),
            time: now - chrono::Duration::hours(hours_ago),
            workload: workload.into(),
            asset: asset.into(),
            hostname: String::new(),
            plugin_id: String::new(),
            plugin_version: String::new(),
            consistency: String::new(),
            tags: vec![],
            parent: None,
            items: vec![],
            bytes: 0,
            new_bytes: 0,
            stored_bytes: 0,
            seconds: 0.0,
            unchanged_files: 0,
            unchanged_bytes: 0,
            copied_from: None,
        }
    }

    fn asset(id: &str, kind: &str, flags: &[&str]) -> Asset {
        Asset {
            kind: kind.into(),
            id: id.into(),
            name: id.into(),
            parent: None,
            properties: vec![],
            flags: flags.iter().map(|f| (*f).to_string()).collect(),
        }
    }

    #[test]
    fn status_age_and_risks() {
        let now = Utc::now();
        let discovered = vec![(
            "hyperv-vm".to_string(),
            vec![
                asset("cluster/a", "cluster", &[]),
                asset("tvm", "vm", &["trusted-launch"]),
                asset("arc", "vm", &["arc-managed"]),
                asset("new", "vm", &[]),
            ],
        )];
        let snaps = vec![
            snap("s1", "tvm", "hyperv-vm", 2, now),
            snap("s2", "arc", "hyperv-vm", 30, now),
            snap("s3", "arc", "tvm-keys", 40, now),
            snap("s4", "/srv/data", "files", 1, now),
        ];
        let restored: HashSet<String> = ["s2".to_string()].into();
        let inv = build(&discovered, &snaps, &restored, 24.0, now);
        let get = |id: &str| inv.iter().find(|a| a.id == id).unwrap();
        let codes = |id: &str| {
            get(id)
                .risks
                .iter()
                .map(|r| r.code.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("cluster/a").status, "container");
        assert_eq!(get("tvm").status, "protected");
        assert_eq!(codes("tvm"), ["never-test-restored", "tvm-key-missing"]);
        assert_eq!(get("arc").status, "stale");
        assert_eq!(codes("arc"), ["rpo-missed", "needs-rehydration"]);
        assert_eq!(get("new").status, "unprotected");
        assert_eq!(get("/srv/data").kind, "backup");
        assert_eq!(get("/srv/data").restore_points, 1);
        assert!((get("tvm").age_hours.unwrap() - 2.0).abs() < 0.01);
    }
}
