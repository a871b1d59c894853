//! The product's own rules, across plugins and the repository, and the summary.
//!
//! Each rule has a stable id (`rehydra.<name>`), a severity, the evidence and what to do.
//! The plugins' findings come first as they are, except where a joined repository
//! answers the question better: a plugin's rule listed in [`JUDGED_BY_REPOSITORY`] gives
//! way to the product's rule of the same fact (a Trusted launch VM whose key *is* backed
//! up is not flagged).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::{Action, AssetRow, Coverage, FindingRow, Joined, Summary, Swept, Thresholds};
use crate::inventory::Discovery;

/// Severities, worst first.
pub const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

/// Plugin rules that a joined repository judges instead, with the product rule that
/// does: `hyperv.tvm-key` says every Trusted launch VM needs a key backup; with the
/// repository at hand, only those without one are flagged.
pub const JUDGED_BY_REPOSITORY: [(&str, &str); 1] = [("hyperv.tvm-key", "rehydra.tvm-key-missing")];

/// The product's rules: id, severity, title, recommendation.
pub const RULES: [(&str, &str, &str, &str); 12] = [
    (
        "rehydra.sweep-failed",
        "medium",
        "Part of the estate could not be read",
        "fix the access named in the evidence (grant, credential, network) and run the assessment again",
    ),
    (
        "rehydra.not-swept",
        "info",
        "An installed plugin was not swept",
        "give the plugin the settings or grants it needs, or leave it out with --plugin",
    ),
    (
        "rehydra.no-repository",
        "info",
        "Protection was not judged: no repository was joined",
        "run the assessment with the repository (-r) to see what is protected, stale or missing",
    ),
    (
        "rehydra.unprotected",
        "high",
        "No restore point",
        "add the asset to a policy (rehydra policy add) and run it once",
    ),
    (
        "rehydra.rpo-missed",
        "medium",
        "Newest restore point older than the RPO",
        "check the policy's schedule and its last runs (rehydra policy list)",
    ),
    (
        "rehydra.not-in-newest",
        "high",
        "Not in the newest restore point of what holds it",
        "look at the newest backup's warnings (its backup failed: access, throttling) and run it again",
    ),
    (
        "rehydra.older-than-tombstone",
        "critical",
        "Newest restore point of a domain older than its tombstone lifetime",
        "back the domain up now (its objects, and a DC's system state); a DC restored from an older point must never rejoin the domain, and objects deleted since cannot be brought back from it",
    ),
    (
        "rehydra.tvm-key-missing",
        "critical",
        "Trusted launch VM without a backup of its guest state key",
        "back up its key with the tvm-keys plugin; without it a restored VM does not boot",
    ),
    (
        "rehydra.no-restore-test",
        "high",
        "No restore tested recently",
        "restore a recent point into a scratch folder or cluster (a drill) and record it",
    ),
    (
        "rehydra.no-offsite-copy",
        "high",
        "No copy of the restore points off this repository",
        "give the policies a copy target (policy add --copy-to) on other storage, ideally off the cluster",
    ),
    (
        "rehydra.clusterstorage-whole",
        "medium",
        "C:\\ClusterStorage copied whole as files",
        "protect the VMs with the hyperv-vm plugin (a consistent checkpoint, only changed blocks) and keep only the node folders you need with cluster-files",
    ),
    (
        "rehydra.repository-not-immutable",
        "medium",
        "Restore points can be deleted by whoever can write the repository",
        "keep a copy where deletion needs other credentials (another account's Blob container or S3 bucket with object lock, set on the storage side); Rehydra does not set immutability itself yet",
    ),
];

fn rule(id: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    RULES
        .iter()
        .find(|r| r.0 == id)
        .copied()
        .unwrap_or(("rehydra.unknown", "info", "", ""))
}

/// Rank of a severity: 0 for critical; unknown words last.
pub fn rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| *s == severity)
        .unwrap_or(SEVERITIES.len())
}

fn product(id: &str, asset: Option<&AssetRow>, evidence: String) -> FindingRow {
    let (rule, severity, title, recommendation) = rule(id);
    FindingRow {
        id: asset.map_or_else(|| rule.to_string(), |a| format!("{rule}:{}", a.id)),
        rule: rule.into(),
        severity: severity.into(),
        source: "rehydra".into(),
        asset: asset.map(|a| a.id.clone()),
        asset_name: asset.map(|a| a.name.clone()),
        title: title.into(),
        evidence,
        recommendation: recommendation.into(),
    }
}

/// Domains (an asset whose plugin reports `tombstone-lifetime-days`) whose newest
/// restore point is older than that: after the lifetime the directory purges deleted
/// objects' tombstones, so a DC restored from the point would bring back objects every
/// other DC forgot (the lingering objects of USN rollback), and the point can no longer
/// tell what was deleted since. An asset without a restore point is
/// `rehydra.unprotected` already.
fn older_than_tombstone(
    discovered: &[Discovery],
    assets: &[AssetRow],
    now: DateTime<Utc>,
) -> Vec<FindingRow> {
    let mut out = Vec::new();
    for d in discovered {
        for a in &d.assets {
            let Some(days) = a
                .properties
                .iter()
                .find(|p| p.name == "tombstone-lifetime-days")
                .and_then(|p| p.value.trim().parse::<u32>().ok())
                .filter(|d| *d > 0)
            else {
                continue;
            };
            let id = clean(&a.id, 1000);
            let Some(row) = assets.iter().find(|r| r.id == id && r.plugin == d.plugin) else {
                continue;
            };
            let Some(last) = row.last_backup else {
                continue;
            };
            let age = now - last;
            if age > chrono::Duration::days(i64::from(days)) {
                out.push(product(
                    "rehydra.older-than-tombstone",
                    Some(row),
                    format!(
                        "the newest restore point of {} {} is from {} ({} days ago); the forest's tombstone lifetime is {days} days",
                        row.kind,
                        row.name,
                        last.format("%Y-%m-%d"),
                        age.num_days()
                    ),
                ));
            }
        }
    }
    out
}

/// A text from a plugin as the report holds it: control characters (other than line
/// breaks) replaced, at most `max` characters.
pub fn clean(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// The longest text a finding field keeps.
const TEXT_MAX: usize = 2000;

/// Every finding: the plugins', then the product's; worst first, then by rule and asset.
/// A plugin's rule may not pass for the product's: one named `rehydra.…` is kept under
/// `<plugin>/<rule>`. Findings that share an id but say different things are all kept,
/// the later ones numbered (`…#2`).
#[allow(clippy::too_many_arguments)]
pub fn findings(
    discovered: &[Discovery],
    sweep: &[Swept],
    assets: &[AssetRow],
    joined: Option<&Joined>,
    th: &Thresholds,
    now: DateTime<Utc>,
) -> Vec<FindingRow> {
    let names: HashMap<&str, &str> = assets
        .iter()
        .map(|a| (a.id.as_str(), a.name.as_str()))
        .collect();
    let mut out = Vec::new();
    for d in discovered {
        for f in &d.findings {
            if joined.is_some() && JUDGED_BY_REPOSITORY.iter().any(|(r, _)| *r == f.rule) {
                continue;
            }
            let rule = if f.rule.to_ascii_lowercase().starts_with("rehydra.") {
                format!("{}/{}", d.plugin, f.rule)
            } else {
                clean(&f.rule, 200)
            };
            let asset = f.asset.as_deref().map(|a| clean(a, 1000));
            out.push(FindingRow {
                id: asset
                    .as_ref()
                    .map_or_else(|| rule.clone(), |a| format!("{rule}:{a}")),
                rule,
                severity: if rank(&f.severity) < SEVERITIES.len() {
                    f.severity.clone()
                } else {
                    "info".into()
                },
                // the product speaks as `rehydra`; a plugin of that name does not
                source: if d.plugin.eq_ignore_ascii_case("rehydra") {
                    format!("plugin {}", d.plugin)
                } else {
                    d.plugin.clone()
                },
                asset_name: f
                    .asset
                    .as_deref()
                    .and_then(|a| names.get(a))
                    .map(|n| clean(n, 1000)),
                asset,
                title: clean(&f.title, TEXT_MAX),
                evidence: clean(&f.detail, TEXT_MAX),
                recommendation: clean(&f.recommendation, TEXT_MAX),
            });
        }
    }
    for s in sweep {
        let id = match s.status.as_str() {
            "failed" => "rehydra.sweep-failed",
            "skipped" => "rehydra.not-swept",
            _ => continue,
        };
        let mut f = product(id, None, format!("{}: {}", s.plugin, s.detail));
        f.id = format!("{id}:{}", s.plugin);
        out.push(f);
    }
    match joined {
        None => out.push(product(
            "rehydra.no-repository",
            None,
            format!(
                "{} asset(s) found; none judged against restore points",
                assets.iter().filter(|a| a.status == "unknown").count()
            ),
        )),
        Some(j) => {
            // decided from the rows' status and the repository, never from a plugin's words
            let keys: std::collections::HashSet<&str> = j
                .points
                .iter()
                .filter(|p| p.workload == "tvm-keys")
                .map(|p| p.asset.as_str())
                .collect();
            for a in assets.iter().filter(|a| a.kind != "backup") {
                match a.status.as_str() {
                    "unprotected" => out.push(product(
                        "rehydra.unprotected",
                        Some(a),
                        format!(
                            "{} {} has no restore point of its own in repository {}",
                            a.kind,
                            a.name,
                            j.names()
                        ),
                    )),
                    "stale" => out.push(product(
                        "rehydra.rpo-missed",
                        Some(a),
                        format!(
                            "newest restore point {} (RPO {} h)",
                            a.last_backup.map_or_else(String::new, |t| t
                                .format("%Y-%m-%d %H:%M UTC")
                                .to_string()),
                            th.rpo_hours
                        ),
                    )),
                    _ => {}
                }
                if a.flags.iter().any(|f| f == crate::inventory::NOT_IN_NEWEST) {
                    out.push(product(
                        "rehydra.not-in-newest",
                        Some(a),
                        format!(
                            "{} {} is in older restore points of {} but not in its newest",
                            a.kind,
                            a.name,
                            a.parent.as_deref().unwrap_or("its whole")
                        ),
                    ));
                }
                if a.kind == "vm"
                    && a.flags.iter().any(|f| f == "trusted-launch")
                    && !keys.contains(a.id.as_str())
                {
                    out.push(product(
                        "rehydra.tvm-key-missing",
                        Some(a),
                        format!(
                            "{} is a Trusted launch VM and repository {} holds no tvm-keys restore point for it",
                            a.name,
                            j.names()
                        ),
                    ));
                }
            }
            out.extend(older_than_tombstone(discovered, assets, now));
            let days = i64::from(th.restore_test_days);
            let last = j.last_restore();
            let tested = last.is_some_and(|t| now - t <= chrono::Duration::days(days));
            if !tested && !j.points.is_empty() {
                out.push(product(
                    "rehydra.no-restore-test",
                    None,
                    match last {
                        Some(t) => format!(
                            "the last successful restore from repository {} was on {} (more than {days} days ago)",
                            j.names(),
                            t.format("%Y-%m-%d")
                        ),
                        None => format!(
                            "the catalog records no successful restore from repository {}",
                            j.names()
                        ),
                    },
                ));
            }
            // folder backups of C:\ClusterStorage or a whole volume under it: every VM's
            // disks copied as files while they run
            let mut whole: Vec<&str> = j
                .points
                .iter()
                .filter(|p| {
                    (p.plugin_id.is_empty() || p.plugin_id == rehydra_core::archiver::BUILTIN)
                        && whole_cluster_storage(&p.asset)
                })
                .map(|p| p.asset.as_str())
                .collect();
            whole.sort_unstable();
            whole.dedup();
            for path in whole {
                let mut f = product(
                    "rehydra.clusterstorage-whole",
                    None,
                    format!(
                        "repository {} holds folder backups of {} ({} restore point(s)): the VMs' disks as files, copied while they run",
                        j.names(),
                        clean(path, 500),
                        j.points.iter().filter(|p| p.asset == path).count()
                    ),
                );
                f.id = format!("rehydra.clusterstorage-whole:{}", clean(path, 500));
                out.push(f);
            }
            // a copy: a policy into the first repository that makes one, or another joined
            // repository holding copies of the first one's points
            let copying = j.repos.first().map_or(0, |r| r.copying_policies);
            if copying == 0 && j.copies_elsewhere() == 0 {
                out.push(product(
                    "rehydra.no-offsite-copy",
                    None,
                    format!(
                        "{} polic(ies) back up into it, none with a copy target, and no other joined repository holds copies of its points; repository {} holds the only restore points",
                        j.repos.first().map_or(0, |r| r.policies),
                        j.names()
                    ),
                ));
            }
            for r in &j.repos {
                let mut f = product(
                    "rehydra.repository-not-immutable",
                    None,
                    format!(
                        "repository {} is a {}; its restore points can be deleted with the access that writes them",
                        r.id, r.kind
                    ),
                );
                f.id = format!("rehydra.repository-not-immutable:{}", r.id);
                out.push(f);
            }
        }
    }
    // worst first; findings that tie are ordered by what they say, so that the numbering
    // below is the same from run to run for the same findings
    out.sort_by(|a, b| {
        let key = |f: &FindingRow| {
            (
                rank(&f.severity),
                f.rule.clone(),
                f.asset_name.clone(),
                f.id.clone(),
                f.evidence.clone(),
                f.title.clone(),
                f.source.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    // the same finding twice is one; different findings under one id are numbered
    let mut kept = std::collections::HashSet::new();
    out.retain(|f| kept.insert(f.clone()));
    let mut seen: HashMap<String, usize> = HashMap::new();
    for f in &mut out {
        let n = seen.entry(f.id.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            f.id = format!("{}#{n}", f.id);
        }
    }
    out
}

/// `C:\ClusterStorage`, or one whole volume under it, as a folder backup names it: at a
/// drive's root (`C:\ClusterStorage`), on a node's administrative share
/// (`\\hv01\c$\ClusterStorage`), as the hidden CSV share (`\\hv01\ClusterStorage$`), or
/// as the last folder of a mount of a node's drive here (`/mnt/hv01-c/ClusterStorage`).
fn whole_cluster_storage(path: &str) -> bool {
    let unix = path.starts_with('/');
    let p = path.replace('/', "\\").to_ascii_lowercase();
    let p = p.trim_end_matches(['\\', '.', ' ']);
    let parts: Vec<&str> = p.split('\\').collect();
    let Some(at) = parts
        .iter()
        .rposition(|c| *c == "clusterstorage" || *c == "clusterstorage$")
    else {
        return false;
    };
    let rest: Vec<&&str> = parts[at + 1..].iter().filter(|c| !c.is_empty()).collect();
    if rest.len() > 1 || rest.iter().any(|c| c.starts_with('.')) {
        return false;
    }
    let root = match &parts[..at] {
        // C:\ClusterStorage
        [drive] => drive.len() == 2 && drive.ends_with(':'),
        // \\hv01\ClusterStorage$
        ["", "", _host] => parts[at].ends_with('$'),
        // \\hv01\c$\ClusterStorage; \\?\C:\ClusterStorage
        ["", "", "?", drive] => drive.len() == 2 && drive.ends_with(':'),
        ["", "", _host, share] => share.len() == 2 && share.ends_with('$'),
        _ => false,
    };
    root || (unix && !parts[at].ends_with('$'))
}

/// What a finding of a severity costs the score, once per rule.
fn weight(severity: &str) -> f64 {
    match severity {
        "critical" => 20.0,
        "high" => 10.0,
        "medium" => 4.0,
        "low" => 1.0,
        _ => 0.0,
    }
}

/// The score: 100, minus for each rule with findings its severity's weight (critical 20,
/// high 10, medium 4, low 1, info 0) and a quarter of that again for each further asset
/// it concerns, up to four more; never below 0.
pub fn score(findings: &[FindingRow]) -> u32 {
    let mut per_rule: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for f in findings {
        let e = per_rule.entry(&f.rule).or_insert((0.0, 0));
        e.0 = e.0.max(weight(&f.severity));
        e.1 += 1;
    }
    let lost: f64 = per_rule
        .values()
        .map(|(w, n)| w * (1.0 + 0.25 * (n.saturating_sub(1).min(4)) as f64))
        .sum();
    (100.0 - lost).clamp(0.0, 100.0).round() as u32
}

/// A for 90 and up, B 75, C 60, D 40, else F.
pub fn grade(score: u32) -> &'static str {
    match score {
        90.. => "A",
        75..=89 => "B",
        60..=74 => "C",
        40..=59 => "D",
        _ => "F",
    }
}

/// Score, coverage and the top five actions (one per rule, worst first, then the rule
/// that concerns the most assets).
pub fn summary(assets: &[AssetRow], findings: &[FindingRow]) -> Summary {
    let mut by_severity: BTreeMap<String, usize> =
        SEVERITIES.iter().map(|s| ((*s).to_string(), 0)).collect();
    for f in findings {
        *by_severity.entry(f.severity.clone()).or_default() += 1;
    }
    let mut coverage = Coverage::default();
    for a in assets {
        match a.status.as_str() {
            "protected" => coverage.protected += 1,
            "stale" => coverage.stale += 1,
            "unprotected" => coverage.unprotected += 1,
            "unknown" => coverage.unknown += 1,
            _ => {}
        }
    }
    let mut actions: Vec<Action> = Vec::new();
    for f in findings.iter().filter(|f| f.severity != "info") {
        match actions.iter_mut().find(|a| a.rule == f.rule) {
            Some(a) => a.assets += usize::from(f.asset.is_some()),
            None => actions.push(Action {
                rule: f.rule.clone(),
                severity: f.severity.clone(),
                title: f.title.clone(),
                recommendation: f.recommendation.clone(),
                assets: usize::from(f.asset.is_some()),
            }),
        }
    }
    actions.sort_by(|a, b| {
        (rank(&a.severity), std::cmp::Reverse(a.assets), &a.rule).cmp(&(
            rank(&b.severity),
            std::cmp::Reverse(b.assets),
            &b.rule,
        ))
    });
    actions.truncate(5);
    let score = score(findings);
    Summary {
        score,
        grade: grade(score).into(),
        by_severity,
        coverage,
        top_actions: actions,
    }
}
