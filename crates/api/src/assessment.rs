//! Assessment: a read-only sweep of an estate through the installed plugins, joined with
//! what a repository holds when one is given, judged by the plugins' `assess` rules and
//! the product's own ([`rules`]), and written as a report a consultant hands over
//! ([`report`]: JSON, CSV, a self-contained HTML file and its PDF), with a diff of two
//! assessments ([`diff`]).
//!
//! The sweep's plugin calls run read-only
//! ([`crate::plugins::Plugins::survey_reading`]): the host refuses writes over HTTP and
//! LDAP and to files; commands and SQL batches run as granted (the host cannot tell a
//! read from a write there), and [`plan`] says so for each plugin that holds such grants,
//! with everything it may reach, before anything runs. Nothing secret is in an assessment: it holds what
//! discovery and assessment return (names, flags, sizes, findings), the settings the
//! consultant gave, and counts from the repository; credentials never pass through here.

pub mod diff;
pub mod html;
mod joined;
pub mod report;
pub mod rules;
mod sizing;

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code, Result};
use crate::inventory::{self, Discovery};
use crate::plugins::{Plugins, Property};
use crate::{Context, Session};

pub use joined::Joined;
pub use sizing::Sizing;

/// The assessment file format this build writes and reads.
pub const FORMAT: u32 = 1;

/// One plugin to sweep and the discovery settings it gets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
pub struct PluginScope {
    /// Plugin id.
    pub plugin: String,
    /// Discovery settings (`subscriptions`, `nodes` …), checked against what it declares.
    pub settings: Vec<Property>,
}

/// Names on the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Labels {
    /// The customer.
    pub customer: String,
    /// The consultant (and firm).
    pub consultant: String,
    /// What was assessed, in the consultant's words.
    pub scope: String,
    /// The consultant's logo, embedded.
    pub logo: Option<Logo>,
}

/// An image embedded in the report (PNG or JPEG, at most [`Logo::MAX`] bytes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Logo {
    /// `image/png` or `image/jpeg`.
    pub mime: String,
    /// The image, base64.
    pub base64: String,
}

impl Logo {
    /// Largest logo accepted.
    pub const MAX: usize = 512 * 1024;

    /// A logo from a file's bytes: PNG or JPEG by their signatures, nothing else (an
    /// SVG can carry script).
    ///
    /// # Errors
    /// Too large, or neither PNG nor JPEG.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        use base64::Engine as _;
        if bytes.len() > Self::MAX {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "the logo is {} KiB; at most {} KiB is embedded in a report",
                    bytes.len() / 1024,
                    Self::MAX / 1024
                ),
            ));
        }
        let mime = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            "image/png"
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            "image/jpeg"
        } else {
            return Err(ApiError::new(
                Code::InvalidInput,
                "the logo is neither a PNG nor a JPEG file; convert it to PNG",
            ));
        };
        Ok(Self {
            mime: mime.into(),
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    }
}

/// The thresholds an assessment judges by.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct Thresholds {
    /// Recovery point objective: a newest restore point older than this misses it.
    pub rpo_hours: f64,
    /// A repository without a successful restore in this many days is flagged.
    pub restore_test_days: u32,
    /// Retention the sizing estimates repository growth for.
    pub retention_days: u32,
    /// Daily change assumed where the repository cannot measure it, in percent.
    pub daily_change_percent: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            rpo_hours: 24.0,
            restore_test_days: 30,
            retention_days: 30,
            daily_change_percent: 3.0,
        }
    }
}

/// What a sweep covers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "AssessmentOptions")]
pub struct Options {
    /// Plugins to sweep; empty: every installed plugin.
    pub plugins: Vec<String>,
    /// Discovery settings of the plugins swept (by plugin; one entry per plugin).
    pub settings: Vec<PluginScope>,
    /// Judged by.
    pub thresholds: Thresholds,
    /// Names on the report.
    pub labels: Labels,
}

/// What the sweep will do with one plugin, said before anything runs.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Planned {
    /// Plugin id.
    pub plugin: String,
    /// Its version, when it loads.
    pub version: Option<String>,
    /// Whether it will be swept.
    pub runs: bool,
    /// Why not, or what to know.
    pub note: String,
    /// Settings it gets (the values of those its manifest calls secret hidden).
    pub settings: Vec<Property>,
    /// What it may reach (its grants), with the verbs that run: `discover`, `assess`.
    pub grants: Vec<String>,
}

/// How the sweep of one plugin went.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Swept {
    /// Plugin id.
    pub plugin: String,
    /// `swept`, `failed` or `skipped`.
    pub status: String,
    /// Why it failed or was skipped.
    pub detail: String,
    /// Assets it found.
    pub assets: usize,
    /// Findings of its own rules.
    pub findings: usize,
}

/// A repository joined to the sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct RepositoryFacts {
    /// Repository id (short).
    pub id: String,
    /// Repository id (whole).
    pub full_id: String,
    /// Where it is, as the admin named it.
    pub location: String,
    /// `local folder`, `SMB share`, `Azure Blob`, `S3`.
    pub kind: String,
    /// Restore points in it.
    pub restore_points: usize,
    /// Logical bytes over stored bytes, as measured.
    pub reduction_ratio: f64,
    /// Bytes stored.
    pub stored_bytes: u64,
    /// Newest successful restore (a test or a real one) from it, per the catalog.
    pub last_restore: Option<DateTime<Utc>>,
    /// Policies that copy to a second repository.
    pub copying_policies: usize,
    /// Policies in all.
    pub policies: usize,
}

/// One asset of the estate, as the report lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct AssetRow {
    /// Id as its plugin reports it.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `vm`, `vault`, `namespace` …
    pub kind: String,
    /// Containing asset.
    pub parent: Option<String>,
    /// The top of its tree (cluster, subscription …), by name.
    pub group: String,
    /// The plugin that found it.
    pub plugin: String,
    /// Protection flags.
    pub flags: Vec<String>,
    /// `protected`, `stale`, `unprotected`, `container`, or `unknown` (no repository joined).
    pub status: String,
    /// Restore points of it.
    pub restore_points: usize,
    /// The newest one.
    pub last_backup: Option<DateTime<Utc>>,
    /// Data a first full backup reads, in MiB (the plugin's `size-mib`), when known.
    pub size_mib: Option<u64>,
    /// What its plugin reports about a cluster (OS, registration, nodes, volumes, pools);
    /// empty for other kinds.
    pub facts: Vec<Property>,
}

/// A finding, with a stable id two assessments are compared by.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, ts_rs::TS)]
pub struct FindingRow {
    /// `<rule>` or `<rule>:<asset id>`: stable between runs.
    pub id: String,
    /// Rule id (`hyperv.tvm-key`, `rehydra.unprotected` …).
    pub rule: String,
    /// `critical`, `high`, `medium`, `low` or `info`.
    pub severity: String,
    /// The plugin whose rule it is, or `rehydra`.
    pub source: String,
    /// Asset id.
    pub asset: Option<String>,
    /// Asset name.
    pub asset_name: Option<String>,
    /// What is wrong.
    pub title: String,
    /// What shows it.
    pub evidence: String,
    /// What to do.
    pub recommendation: String,
}

/// One of the top actions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Action {
    /// Rule.
    pub rule: String,
    /// Its severity.
    pub severity: String,
    /// What is wrong.
    pub title: String,
    /// What to do.
    pub recommendation: String,
    /// Assets it concerns (0 for the estate as a whole).
    pub assets: usize,
}

/// How many assets are in each state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Coverage {
    /// Within the RPO.
    pub protected: usize,
    /// Backed up, but older than the RPO.
    pub stale: usize,
    /// No restore point.
    pub unprotected: usize,
    /// Not judged: no repository was joined.
    pub unknown: usize,
}

/// The executive summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct Summary {
    /// 0 to 100 ([`rules::score`]).
    pub score: u32,
    /// A to F.
    pub grade: String,
    /// Findings per severity.
    pub by_severity: BTreeMap<String, usize>,
    /// Assets per protection state (containers not counted).
    pub coverage: Coverage,
    /// What to do first: at most five.
    pub top_actions: Vec<Action>,
}

/// A whole assessment, as `assessment.json` holds it.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Assessment {
    /// [`FORMAT`].
    pub format: u32,
    /// When it was made.
    pub generated: DateTime<Utc>,
    /// The Rehydra that made it.
    pub rehydra_version: String,
    /// Names on the report.
    pub labels: Labels,
    /// Judged by.
    pub thresholds: Thresholds,
    /// Repositories joined (none: protection was not judged).
    pub repositories: Vec<RepositoryFacts>,
    /// How each plugin's sweep went.
    pub sweep: Vec<Swept>,
    /// The estate.
    pub assets: Vec<AssetRow>,
    /// Every finding, worst first.
    pub findings: Vec<FindingRow>,
    /// Score, coverage, top actions.
    pub summary: Summary,
    /// Capacity and estimates.
    pub sizing: Sizing,
}

impl Assessment {
    /// Read an assessment file (as [`report::write`] wrote it).
    ///
    /// # Errors
    /// Not readable, not an assessment, or of a newer format.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let bytes = read_at_most(path, 256 << 20, "an assessment")?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                Code::InvalidInput,
                format!("{} is not an assessment (JSON): {e}", path.display()),
            )
        })?;
        match v.get("format").and_then(serde_json::Value::as_u64) {
            Some(f) if f == u64::from(FORMAT) => {}
            Some(f) => {
                return Err(ApiError::new(
                    Code::InvalidInput,
                    format!(
                        "{} is an assessment of format {f}; this Rehydra reads format {FORMAT}",
                        path.display()
                    ),
                ));
            }
            None => {
                return Err(ApiError::new(
                    Code::InvalidInput,
                    format!(
                        "{} is not an assessment.json written by `rehydra assess`",
                        path.display()
                    ),
                ));
            }
        }
        serde_json::from_value(v).map_err(|e| {
            ApiError::new(
                Code::InvalidInput,
                format!("{} is not a whole assessment: {e}", path.display()),
            )
        })
    }
}

/// Read a file of at most `max` bytes (`what` names it in the error), without reading
/// more than that from it first.
///
/// # Errors
/// Not readable, or larger.
pub fn read_at_most(path: &std::path::Path, max: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let io =
        |e: std::io::Error| ApiError::new(Code::Io, format!("cannot read {}: {e}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "{} is larger than {} KiB, too large for {what}",
                path.display(),
                max / 1024
            ),
        ));
    }
    Ok(bytes)
}

/// What the sweep will run: each plugin in scope (every installed one when none is
/// named), whether it runs and why not, its settings and grants. Nothing runs.
///
/// # Errors
/// The plugin folders or the catalog cannot be read; a plugin named in scope is not installed.
pub fn plan(plugins: &Plugins, opts: &Options) -> Result<Vec<Planned>> {
    let named = !opts.plugins.is_empty();
    let ids: Vec<String> = if named {
        opts.plugins.clone()
    } else {
        plugins.list()?.into_iter().map(|e| e.id).collect()
    };
    let mut given: std::collections::HashMap<&str, &PluginScope> = std::collections::HashMap::new();
    for s in &opts.settings {
        if given.insert(s.plugin.as_str(), s).is_some() {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!("the settings of plugin {} are given twice", s.plugin),
            ));
        }
        if !ids.contains(&s.plugin) {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "settings are given for plugin {}, which is not swept (not installed, or not named with --plugin)",
                    s.plugin
                ),
            ));
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for id in ids {
        if !seen.insert(id.clone()) {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!("plugin {id} is named twice"),
            ));
        }
        let s = PluginScope {
            settings: given
                .get(id.as_str())
                .map(|g| g.settings.clone())
                .unwrap_or_default(),
            plugin: id,
        };
        let info = match plugins.info(&s.plugin) {
            Ok(i) => i,
            Err(e) if named => return Err(e),
            Err(e) => {
                out.push(Planned {
                    plugin: s.plugin,
                    version: None,
                    runs: false,
                    note: format!("cannot be loaded: {}", rules::clean(&e.message, 2000)),
                    // which of them are secret is unknown without its manifest
                    settings: s
                        .settings
                        .iter()
                        .map(|p| Property {
                            name: rules::clean(&p.name, 100),
                            value: "(not shown)".into(),
                        })
                        .collect(),
                    grants: vec![],
                });
                continue;
            }
        };
        // what it gets, as shown: a setting its manifest calls secret is not repeated
        let shown = s
            .settings
            .iter()
            .map(|p| {
                let secret = info
                    .manifest
                    .settings
                    .iter()
                    .any(|d| d.secret && d.name == p.name);
                Property {
                    name: p.name.clone(),
                    value: if secret {
                        "(hidden)".into()
                    } else {
                        p.value.clone()
                    },
                }
            })
            .collect();
        let mut planned = Planned {
            plugin: s.plugin.clone(),
            version: info.entry.version.clone(),
            runs: true,
            note: if info
                .grants
                .iter()
                .any(|g| g.starts_with("command:") || g.starts_with("sql:"))
            {
                "discover and assess in read-only calls; its commands and SQL queries run as granted (the host cannot restrict those to reads)".into()
            } else {
                "discover and assess in read-only calls".into()
            },
            settings: shown,
            grants: info.grants.clone(),
        };
        if let Err(e) = plugins.check_settings(
            &s.plugin,
            rehydra_plugin_host::SettingVerb::Discover,
            &s.settings,
        ) {
            planned.runs = false;
            planned.note = format!("not swept: {}", rules::clean(&e.message, 2000));
        } else if info.grants.is_empty() && !info.manifest.capabilities.is_empty() {
            planned.runs = false;
            planned.note = format!(
                "not swept: nothing is granted to it (see `rehydra plugins info {}`)",
                s.plugin
            );
        }
        out.push(planned);
    }
    Ok(out)
}

/// Sweep: run the plan's plugins (in read-only calls), join the restore points of the
/// repositories given (none: protection is not judged), judge, and summarise. A plugin that fails is a finding, and
/// the others go on. `progress` hears each step.
///
/// # Errors
/// The plan cannot be made ([`plan`]); the repository cannot be read.
pub fn run(
    plugins: &Plugins,
    ctx: &Context,
    sessions: &[&Session],
    opts: &Options,
    progress: &dyn Fn(&str),
) -> Result<Assessment> {
    let now = Utc::now();
    let mut discovered = Vec::new();
    let mut sweep = Vec::new();
    for p in plan(plugins, opts)? {
        if !p.runs {
            sweep.push(Swept {
                plugin: p.plugin,
                status: "skipped".into(),
                detail: p.note,
                assets: 0,
                findings: 0,
            });
            continue;
        }
        progress(&format!("sweeping {}", p.plugin));
        let settings = opts
            .settings
            .iter()
            .find(|s| s.plugin == p.plugin)
            .map(|s| s.settings.clone())
            .unwrap_or_default();
        match plugins.survey_reading(&p.plugin, &settings) {
            Ok((d, _log)) => {
                sweep.push(Swept {
                    plugin: p.plugin,
                    status: "swept".into(),
                    detail: String::new(),
                    assets: d.assets.len(),
                    findings: d.findings.len(),
                });
                discovered.push(d);
            }
            Err(e) => sweep.push(Swept {
                plugin: p.plugin,
                status: "failed".into(),
                detail: rules::clean(&e.message, 2000),
                assets: 0,
                findings: 0,
            }),
        }
    }
    let mut joined: Option<Joined> = None;
    for s in sessions {
        progress(&format!("reading repository {}", s.location()));
        let j = joined::join(ctx, s)?;
        match &mut joined {
            None => joined = Some(j),
            Some(all) => all.add(j)?,
        }
    }
    Ok(judge(&discovered, sweep, joined.as_ref(), opts, now))
}

/// Judge what was discovered (and joined): the rows, the findings, the summary.
pub fn judge(
    discovered: &[Discovery],
    sweep: Vec<Swept>,
    joined: Option<&Joined>,
    opts: &Options,
    now: DateTime<Utc>,
) -> Assessment {
    let th = &opts.thresholds;
    let (points, restored) = joined.map_or((&[][..], HashSet::new()), |j| {
        (j.points.as_slice(), j.restored.clone())
    });
    let inv = inventory::build(discovered, points, &restored, th.rpo_hours, now);
    let assets = rows(discovered, &inv, joined.is_some());
    let findings = rules::findings(discovered, &sweep, &assets, joined, th, now);
    let summary = rules::summary(&assets, &findings);
    let sizing = sizing::estimate(
        &assets,
        joined.and_then(|j| j.repos.first()),
        joined.map(|j| j.points.as_slice()),
        th,
        now,
    );
    Assessment {
        format: FORMAT,
        generated: now,
        rehydra_version: env!("CARGO_PKG_VERSION").into(),
        labels: opts.labels.clone(),
        thresholds: th.clone(),
        repositories: joined.map(|j| j.repos.clone()).unwrap_or_default(),
        sweep,
        assets,
        findings,
        summary,
        sizing,
    }
}

/// Plugins whose assets are parts of another plugin's assets under the same id: a
/// Trusted launch VM's key, backed up by `tvm-keys`, does not protect the VM.
const PARTS_OF_ASSETS: [&str; 1] = ["tvm-keys"];

/// Largest `size-mib` taken (an exbibyte); a larger one is not believed.
const SIZE_MIB_MAX: u64 = 1 << 40;

/// The report's asset rows: the inventory's, with the top of each tree and the size.
/// Without a repository, nothing is called unprotected: it is unknown. An asset two
/// plugins report (a Trusted launch VM, by `hyperv-vm` and by `tvm-keys`) is one row: the
/// one placed in a tree, else the first.
fn rows(
    discovered: &[Discovery],
    inv: &[inventory::InventoryAsset],
    joined: bool,
) -> Vec<AssetRow> {
    let by_id: std::collections::HashMap<&str, (&str, Option<&str>)> = discovered
        .iter()
        .flat_map(|d| &d.assets)
        .map(|a| (a.id.as_str(), (a.name.as_str(), a.parent.as_deref())))
        .collect();
    // each row's asset as its plugin reported it, looked up once
    let reported: std::collections::HashMap<(&str, &str), &crate::plugins::Asset> = discovered
        .iter()
        .flat_map(|d| {
            d.assets
                .iter()
                .map(move |a| ((d.plugin.as_str(), a.id.as_str()), a))
        })
        .collect();
    let size = |a: &crate::plugins::Asset| {
        a.properties
            .iter()
            .find(|p| p.name == "size-mib")
            .and_then(|p| p.value.trim().parse::<u64>().ok())
            .filter(|m| *m <= SIZE_MIB_MAX)
    };
    let facts = |a: &crate::plugins::Asset| -> Vec<Property> {
        if a.kind != "cluster" {
            return vec![];
        }
        a.properties
            .iter()
            .take(256)
            .map(|p| Property {
                name: rules::clean(&p.name, 100),
                value: rules::clean(&p.value, 500),
            })
            .collect()
    };
    let mut out: Vec<AssetRow> = Vec::new();
    let mut at_row: std::collections::HashMap<(String, String), usize> =
        std::collections::HashMap::new();
    for a in inv {
        let asset = reported.get(&(a.plugin.as_str(), a.id.as_str())).copied();
        // the top of the tree, by name; a cycle stops after 64 steps
        let mut group = a.name.clone();
        let mut at = a.parent.as_deref();
        let mut hops = 0;
        while let Some(p) = at {
            let Some((name, up)) = by_id.get(p) else {
                group = p.rsplit('/').next().unwrap_or(p).to_string();
                break;
            };
            group = (*name).to_string();
            at = *up;
            hops += 1;
            if hops > 64 {
                break;
            }
        }
        let status = if !joined && a.status != "container" {
            "unknown".to_string()
        } else {
            a.status.clone()
        };
        let row = AssetRow {
            id: rules::clean(&a.id, 1000),
            name: rules::clean(&a.name, 1000),
            kind: rules::clean(&a.kind, 100),
            parent: a.parent.as_deref().map(|p| rules::clean(p, 1000)),
            group: rules::clean(&group, 1000),
            plugin: a.plugin.clone(),
            flags: a.flags.iter().map(|f| rules::clean(f, 100)).collect(),
            status,
            restore_points: a.restore_points,
            last_backup: a.last_backup,
            size_mib: asset.and_then(size),
            facts: asset.map(facts).unwrap_or_default(),
        };
        // a plugin that keeps a part of another plugin's asset (tvm-keys: a VM's key)
        // never judges the asset's protection by its own restore points
        let mut row = row;
        if PARTS_OF_ASSETS.contains(&a.plugin.as_str()) && row.status != "container" {
            row.status = if joined { "unprotected" } else { "unknown" }.into();
            row.restore_points = 0;
            row.last_backup = None;
        }
        // the same asset from two plugins is one row: the one in a tree, else the first;
        // a row of another kind never stands in for it
        match at_row.get(&(a.id.clone(), row.kind.clone())) {
            Some(&i) => {
                let better = out[i].parent.is_none() && row.parent.is_some()
                    || PARTS_OF_ASSETS.contains(&out[i].plugin.as_str());
                if better && !PARTS_OF_ASSETS.contains(&row.plugin.as_str()) {
                    out[i] = row;
                }
            }
            None => {
                at_row.insert((a.id.clone(), row.kind.clone()), out.len());
                out.push(row);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
