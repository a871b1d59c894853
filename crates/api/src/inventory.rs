//! The estate as one list: assets the installed plugins discovered, joined with what the
//! repository holds for them (restore points, age against the RPO) and the risks that
//! follow (a Trusted launch VM without a key backup, an Arc VM whose restore elsewhere
//! needs rehydration, never test-restored) and what the plugins' own `assess` found
//! about each asset (a secret about to expire …). An asset whose plugin marks it
//! `protected-with=<id>` (a secret of a key vault) is protected by that asset's restore
//! points. The desktop app's inventory screen and `rehydra inventory` both render this.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::RestorePointDto;
use crate::plugins::{Asset, Finding};

/// What one plugin's discovery found: its assets, and its `assess` findings about them.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Plugin id.
    pub plugin: String,
    /// Assets discovered.
    pub assets: Vec<Asset>,
    /// Findings of its `assess` over those assets.
    pub findings: Vec<Finding>,
}

/// Findings at these severities become risk badges on their asset's row.
const BADGE_SEVERITIES: [&str; 3] = ["medium", "high", "critical"];

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
    /// Restore points of this asset made by the plugin that found it (or, for an asset only
    /// the repository knows, any).
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

/// The flag and risk of a part of an asset (a vault's secret) that the newest restore
/// point of its whole does not hold, though older ones do.
pub const NOT_IN_NEWEST: &str = "not-in-newest-restore-point";

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
    discovered: &[Discovery],
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
    for d in discovered {
        let plugin = &d.plugin;
        for a in &d.assets {
            seen.insert(a.id.clone());
            let property = |name: &str| {
                a.properties
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| p.value.as_str())
            };
            // a part of another asset (a vault's secret) is protected by that asset's
            // points, those that hold its item when it names one
            let with = property("protected-with").unwrap_or(a.id.as_str());
            let item = property("protected-in-item").filter(|_| with != a.id);
            // its protection: restore points its own plugin made, or the engine's own
            // backups of it (a Trusted launch VM's key backup, made by tvm-keys under the
            // VM's id, does not protect the VM)
            let all = by_asset.get(with).cloned().unwrap_or_default();
            let by_us: Vec<&RestorePointDto> = all
                .iter()
                .copied()
                .filter(|s| {
                    s.plugin_id.is_empty()
                        || s.plugin_id == *plugin
                        || s.plugin_id == rehydra_core::archiver::BUILTIN
                })
                .collect();
            let points: Vec<&RestorePointDto> = by_us
                .iter()
                .copied()
                .filter(|s| item.is_none_or(|i| s.items.iter().any(|x| x.name == i)))
                .collect();
            // in older points of its whole but not the newest (its backup failed there)
            let newest = |ps: &[&RestorePointDto]| ps.iter().map(|s| s.time).max();
            let left_out = !points.is_empty() && newest(&points) < newest(&by_us);
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
                if left_out {
                    row.flags.push(NOT_IN_NEWEST.into());
                    row.risks.push(risk(
                        NOT_IN_NEWEST,
                        "Not in the newest restore point of what holds it",
                    ));
                }
                let has = |f: &str| a.flags.iter().any(|x| x == f);
                if has("trusted-launch") && !all.iter().any(|s| s.workload == "tvm-keys") {
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
            for f in d.findings.iter().filter(|f| {
                f.asset.as_deref() == Some(a.id.as_str())
                    && BADGE_SEVERITIES.contains(&f.severity.as_str())
            }) {
                row.risks.push(risk(&f.rule, &f.title));
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
        RestorePointDto::made(id, asset, workload, hours_ago, now)
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
        let discovered = vec![Discovery {
            plugin: "hyperv-vm".to_string(),
            assets: vec![
                asset("cluster/a", "cluster", &[]),
                asset("tvm", "vm", &["trusted-launch"]),
                asset("arc", "vm", &["arc-managed"]),
                asset("new", "vm", &[]),
            ],
            findings: vec![],
        }];
        let snaps = vec![
            snap("s1", "tvm", "hyperv-vm", 2, now),
            snap("s2", "arc", "hyperv-vm", 30, now),
            {
                let mut k = snap("s3", "arc", "tvm-keys", 40, now);
                k.plugin_id = "tvm-keys".into();
                k
            },
            {
                // only its key is backed up: the VM itself is not protected
                let mut k = snap("s5", "new", "tvm-keys", 1, now);
                k.plugin_id = "tvm-keys".into();
                k
            },
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

    #[test]
    fn plugin_findings_are_badges_and_parts_share_their_whole() {
        let now = Utc::now();
        let mut secret = asset("kv/secrets/a", "secret", &[]);
        secret.parent = Some("kv".into());
        secret.properties = vec![crate::plugins::Property {
            name: "protected-with".into(),
            value: "kv".into(),
        }];
        let finding = |sev: &str, rule: &str| Finding {
            rule: rule.into(),
            severity: sev.into(),
            asset: Some("kv/secrets/a".into()),
            title: format!("{rule} title"),
            detail: String::new(),
            recommendation: String::new(),
        };
        let discovered = vec![Discovery {
            plugin: "keyvault".into(),
            assets: vec![asset("kv", "vault", &[]), secret],
            findings: vec![
                finding("high", "keyvault.expiring"),
                finding("info", "keyvault.note"),
            ],
        }];
        let snaps = vec![snap("s1", "kv", "keyvault", 1, now)];
        let inv = build(&discovered, &snaps, &HashSet::new(), 24.0, now);
        let a = inv.iter().find(|a| a.id == "kv/secrets/a").unwrap();
        assert_eq!(
            a.status, "protected",
            "a vault's secret is protected by the vault's points"
        );
        let codes: Vec<&str> = a.risks.iter().map(|r| r.code.as_str()).collect();
        assert!(codes.contains(&"keyvault.expiring"), "{codes:?}");
        assert!(
            !codes.contains(&"keyvault.note"),
            "info findings are not badges"
        );
    }

    #[test]
    fn a_part_naming_its_item_is_protected_by_the_points_that_hold_it() {
        let now = Utc::now();
        let part = |name: &str| {
            let mut a = asset(&format!("kv/secrets/{name}"), "secret", &[]);
            a.parent = Some("kv".into());
            a.properties = [
                ("protected-with", "kv".to_string()),
                ("protected-in-item", format!("backup/secrets/{name}")),
            ]
            .into_iter()
            .map(|(n, v)| crate::plugins::Property {
                name: n.into(),
                value: v,
            })
            .collect();
            a
        };
        let discovered = vec![Discovery {
            plugin: "keyvault".into(),
            assets: vec![
                asset("kv", "vault", &[]),
                part("kept"),
                part("failed-last"),
                part("new"),
            ],
            findings: vec![],
        }];
        let holding = |id: &str, hours_ago: i64, names: &[&str]| {
            let mut p = snap(id, "kv", "keyvault", hours_ago, now);
            p.items = names
                .iter()
                .map(|n| crate::dto::ItemDto {
                    name: format!("backup/secrets/{n}"),
                    kind: "document".into(),
                    size: 1,
                })
                .collect();
            p
        };
        let snaps = vec![
            holding("s1", 5, &["kept", "failed-last"]),
            holding("s2", 1, &["kept"]),
        ];
        let inv = build(&discovered, &snaps, &HashSet::new(), 24.0, now);
        let get = |id: &str| {
            inv.iter()
                .find(|a| a.id == format!("kv/secrets/{id}"))
                .unwrap()
        };
        assert_eq!(get("kept").status, "protected");
        assert_eq!(get("kept").restore_points, 2);
        assert!(get("kept").flags.is_empty());
        // in an older point only: still within the RPO, and said to be missing from the newest
        assert_eq!(get("failed-last").status, "protected");
        assert_eq!(get("failed-last").restore_points, 1);
        assert_eq!(get("failed-last").flags, [NOT_IN_NEWEST]);
        assert!(
            get("failed-last")
                .risks
                .iter()
                .any(|r| r.code == NOT_IN_NEWEST)
        );
        // made after the newest backup: in no point at all
        assert_eq!(get("new").status, "unprotected");
        assert_eq!(get("new").restore_points, 0);
    }
}
