//! The restore wizard's two calls, for any restore point: compute the plan (steps,
//! warnings, blockers; nothing touched), then run it. Restore points made by a plugin go
//! to that plugin's `plan-restore` / `restore`; the others (folders, files, disks) are
//! planned by a dry run of the engine's restore, whose conflicts become blockers unless
//! the user chose to overwrite.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code, Result, refuse_blocked};
use crate::plugins::{Plugins, RestorePlan, Step, properties};
use crate::{Cancel, DiskLocation, Progress, RestoreOptions, RestorePointFilter, Session};

/// What the user chose in the wizard.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
pub struct RestoreChoice {
    /// Restore point (id or prefix).
    pub restore_point: String,
    /// Only this path inside the restore point (engine restores).
    #[serde(default)]
    pub path: Option<String>,
    /// Target folder or file (a plugin may read it differently: a cluster path …).
    pub target: String,
    /// Replace what exists (engine restores; a plugin restore replaces through the
    /// plugin's own `overwrite` setting, in `options`, so one control decides).
    #[serde(default)]
    pub overwrite: bool,
    /// Plugin options (`name=value`), for restore points made by a plugin.
    #[serde(default)]
    pub options: Vec<(String, String)>,
    /// Copy `path` out of the file system inside the restore point's disk (file-level
    /// restore) instead of restoring the disk itself.
    #[serde(default)]
    pub inside_disk: bool,
    /// Instant recovery: serve the restore point's disk over NBD (`target` is then the
    /// address to listen on) instead of restoring it.
    #[serde(default)]
    pub instant: bool,
    /// The disk item, when the restore point holds several (instant recovery).
    #[serde(default)]
    pub item: Option<String>,
    /// Instant recovery: make the export writable, keeping writes in this new file.
    #[serde(default)]
    pub overlay: Option<String>,
}

/// The plan shown before anything runs.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct PlanView {
    /// `plugin` (the plugin's own plan) or `engine`.
    pub kind: String,
    /// The plugin that plans and runs it, if any.
    pub plugin: Option<String>,
    /// The plan.
    pub plan: RestorePlan,
}

/// What a run did.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct RunView {
    /// Bytes written.
    pub bytes: u64,
    /// Files written (engine restores).
    pub files: u64,
    /// Warnings and plugin log lines.
    pub notes: Vec<String>,
}

fn plugin_of(session: &Session, spec: &str) -> Result<Option<String>> {
    let (_, snap) = session.resolve(spec, &RestorePointFilter::default())?;
    Ok(Some(snap.plugin.id).filter(|p| !p.is_empty() && p != rehydra_core::archiver::BUILTIN))
}

fn engine_options(c: &RestoreChoice, dry_run: bool) -> RestoreOptions {
    RestoreOptions {
        overwrite: c.overwrite,
        subpath: c.path.clone().filter(|p| !p.is_empty()),
        dry_run,
        ..RestoreOptions::default()
    }
}

/// Compute the plan; touches nothing.
///
/// # Errors
/// Unknown restore point, unreadable repository, plugin failure.
pub fn plan(session: &Session, plugins: Option<&Plugins>, c: &RestoreChoice) -> Result<PlanView> {
    if c.target.trim().is_empty() {
        return Err(ApiError::new(Code::InvalidInput, "choose a restore target"));
    }
    if c.instant {
        return plan_instant(session, c);
    }
    if let Some(id) = plugin_of(session, &c.restore_point)? {
        let p = plugins.ok_or_else(|| {
            ApiError::new(
                Code::InvalidInput,
                format!("restore point made by plugin `{id}`: plugins are not available"),
            )
        })?;
        let (plan, _log) = p.plan_restore(
            session,
            &c.restore_point,
            &c.target,
            &properties(&c.options),
        )?;
        return Ok(PlanView {
            kind: "plugin".into(),
            plugin: Some(id),
            plan,
        });
    }
    if c.inside_disk {
        return plan_inside(session, c);
    }
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    let dry = match session.restore(
        &c.restore_point,
        &RestorePointFilter::default(),
        std::path::Path::new(&c.target),
        &engine_options(c, true),
        &crate::NoProgress,
        &Cancel::default(),
    ) {
        Ok(d) => d,
        // the engine refuses existing targets before anything else: a blocker
        Err(e) if e.code == Code::TargetExists => {
            let what = e
                .message
                .split("; nothing was written")
                .next()
                .unwrap_or(&e.message);
            blockers.push(format!("{what}; choose another target or allow replacing"));
            crate::RestoreSummary::default()
        }
        Err(e) => return Err(e),
    };
    if !dry.conflicts.is_empty() {
        let list = dry
            .conflicts
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let more = dry.conflicts.len().saturating_sub(5);
        let text = format!(
            "{} target(s) already exist: {list}{}",
            dry.conflicts.len(),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
        if c.overwrite {
            warnings.push(format!("{text}; they will be replaced"));
        } else {
            blockers.push(format!(
                "{text}; choose another target or allow overwriting"
            ));
        }
    }
    Ok(PlanView {
        kind: "engine".into(),
        plugin: None,
        plan: RestorePlan {
            steps: vec![Step {
                id: "restore".into(),
                title: format!(
                    "Restore {} to {}",
                    c.path
                        .as_deref()
                        .filter(|p| !p.is_empty())
                        .unwrap_or("everything"),
                    c.target
                ),
                detail: format!(
                    "{:.1} MiB{}; every chunk verified against its hash; files written under a temporary name and renamed when complete",
                    dry.bytes as f64 / 1_048_576.0,
                    if dry.files > 0 {
                        format!(" in {} files and {} folders", dry.files, dry.dirs)
                    } else {
                        String::new()
                    }
                ),
                depends_on: vec![],
            }],
            warnings,
            blockers,
        },
    })
}

fn disk_at(c: &RestoreChoice) -> DiskLocation {
    DiskLocation {
        restore_point: c.restore_point.clone(),
        filter: RestorePointFilter::default(),
        item: None,
        partition: None,
    }
}

/// File-level restore from inside a disk: what is there, and whether it would replace
/// anything in the target folder.
fn plan_inside(session: &Session, c: &RestoreChoice) -> Result<PlanView> {
    let path = c
        .path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    let entries = session.list_files(&disk_at(c), &path)?;
    let bytes: u64 = entries.iter().map(|e| e.size).sum();
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    let dest = std::path::Path::new(&c.target).join(name);
    if !name.is_empty() && dest.exists() {
        let text = format!("{} exists already", dest.display());
        if c.overwrite {
            warnings.push(format!("{text}; files in it are replaced"));
        } else {
            blockers.push(format!("{text}; choose another target or allow replacing"));
        }
    }
    Ok(PlanView {
        kind: "engine".into(),
        plugin: None,
        plan: RestorePlan {
            steps: vec![Step {
                id: "files".into(),
                title: format!("Copy {path} from inside the disk to {}", c.target),
                detail: format!(
                    "{} entries, {:.1} MiB at the top level; only the chunks these files use are read and verified; files written under a temporary name, modification times kept",
                    entries.len(),
                    bytes as f64 / 1_048_576.0
                ),
                depends_on: vec![],
            }],
            warnings,
            blockers,
        },
    })
}

/// An instant-recovery export being served.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct InstantExport {
    /// `nbd://ADDRESS/disk`.
    pub url: String,
    /// The address actually bound (a port of 0 is resolved).
    pub address: String,
    /// The disk item served.
    pub item: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where writes go, when writable.
    pub overlay: Option<String>,
}

/// Export name used by the wizard.
const EXPORT: &str = "disk";

fn listen_addr(c: &RestoreChoice) -> Result<std::net::SocketAddr> {
    c.target.trim().parse().map_err(|_| {
        ApiError::new(
            Code::InvalidInput,
            format!(
                "`{}` is not an address to listen on: give IP:PORT, for example 127.0.0.1:10809",
                c.target.trim()
            ),
        )
    })
}

fn overlay_of(c: &RestoreChoice) -> Option<&std::path::Path> {
    c.overlay
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(std::path::Path::new)
}

/// Instant recovery: which disk, where it is served, read-only or with an overlay.
fn plan_instant(session: &Session, c: &RestoreChoice) -> Result<PlanView> {
    let (_, snap) = session.resolve(&c.restore_point, &RestorePointFilter::default())?;
    let disk = crate::instant::choose_disk(&snap, &c.restore_point, c.item.as_deref())?;
    let addr = listen_addr(c)?;
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    if let Err(e) = std::net::TcpListener::bind(addr) {
        blockers.push(format!(
            "cannot listen on {addr} ({e}); choose another address or port"
        ));
    }
    if !addr.ip().is_loopback() {
        warnings.push(format!(
            "NBD has no authentication or encryption: anyone who reaches {addr} can read the disk; keep it on a trusted network"
        ));
    }
    let overlay = overlay_of(c);
    match overlay {
        Some(o) => {
            if let Some(problem) = session.overlay_problem(o) {
                blockers.push(problem);
            }
        }
        None => warnings.push(
            "read-only: a VM or tool using the export cannot write to it; give an overlay file to make it writable (writes go there, never to the repository)".into(),
        ),
    }
    let url = format!("nbd://{addr}/{EXPORT}");
    Ok(PlanView {
        kind: "instant".into(),
        plugin: None,
        plan: RestorePlan {
            steps: vec![
                Step {
                    id: "serve".into(),
                    title: format!("Serve disk `{}` at {url}", disk.name),
                    detail: format!(
                        "{:.1} MiB, {}; only the chunks a client reads are fetched and verified; runs until you stop it",
                        disk.size as f64 / 1_048_576.0,
                        overlay.map_or_else(
                            || "read-only".to_string(),
                            |o| format!("writes kept in the new file {}", o.display())
                        )
                    ),
                    depends_on: vec![],
                },
                Step {
                    id: "use".into(),
                    title: "Use it from a Linux or KVM host".into(),
                    detail: format!(
                        "qemu-img convert -O vhdx {url} disk.vhdx (a full restore while it runs), or qemu-nbd --connect=/dev/nbd0 {url} to mount or boot it; a Hyper-V host cannot attach NBD directly"
                    ),
                    depends_on: vec!["serve".into()],
                },
            ],
            warnings,
            blockers,
        },
    })
}

/// Bind the export's address after re-planning (blockers refuse). Serve it with
/// [`serve_instant`] on a thread of its own.
///
/// # Errors
/// Blockers, no disk, address unavailable.
pub fn bind_instant(
    session: &Session,
    c: &RestoreChoice,
) -> Result<(std::net::TcpListener, InstantExport)> {
    let p = plan_instant(session, c)?;
    refuse_blocked(
        "instant recovery is blocked, nothing was started",
        &p.plan.blockers,
    )?;
    let (_, snap) = session.resolve(&c.restore_point, &RestorePointFilter::default())?;
    let disk = crate::instant::choose_disk(&snap, &c.restore_point, c.item.as_deref())?;
    let addr = listen_addr(c)?;
    let l = std::net::TcpListener::bind(addr)
        .map_err(|e| ApiError::new(Code::Io, format!("listening on {addr}: {e}")))?;
    let bound = l
        .local_addr()
        .map_err(|e| ApiError::new(Code::Io, format!("listening on {addr}: {e}")))?;
    Ok((
        l,
        InstantExport {
            url: format!("nbd://{bound}/{EXPORT}"),
            address: bound.to_string(),
            item: disk.name.clone(),
            size: disk.size,
            overlay: overlay_of(c).map(|o| o.display().to_string()),
        },
    ))
}

/// Serve a bound export until `cancel`.
///
/// # Errors
/// Overlay cannot be created, repository unreadable, socket failure.
pub fn serve_instant(
    session: &Session,
    c: &RestoreChoice,
    listener: &std::net::TcpListener,
    cancel: &Cancel,
) -> Result<crate::NbdSummary> {
    session.serve_nbd(
        &c.restore_point,
        &RestorePointFilter::default(),
        c.item.as_deref(),
        listener,
        EXPORT,
        overlay_of(c),
        cancel,
    )
}

/// Re-plan, refuse if anything blocks, then run.
///
/// # Errors
/// Blockers (nothing touched), restore failure, cancelled.
pub fn run(
    session: &Session,
    plugins: Option<&Plugins>,
    c: &RestoreChoice,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<RunView> {
    if c.instant {
        return Err(ApiError::new(
            Code::InvalidInput,
            "instant recovery is started with bind_instant and serve_instant, not run",
        ));
    }
    let p = plan(session, plugins, c)?;
    refuse_blocked(
        "the restore plan is blocked, nothing was touched",
        &p.plan.blockers,
    )?;
    if let (Some(_), Some(pl)) = (&p.plugin, plugins) {
        let out = pl.restore(
            session,
            &c.restore_point,
            &c.target,
            &properties(&c.options),
            true,
            progress,
            cancel,
        )?;
        // what a person reads at the end: the plugin's statements at debug level stay in
        // the job log
        let mut notes: Vec<String> = out
            .log
            .into_iter()
            .filter(|l| !crate::plugins::is_debug(l))
            .collect();
        if let Some(r) = &out.report {
            notes.extend(r.warnings.iter().cloned());
        }
        return Ok(RunView {
            bytes: out.report.map_or(0, |r| r.bytes),
            files: 0,
            notes,
        });
    }
    if c.inside_disk {
        let path = c
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let s = session.restore_files(
            &disk_at(c),
            &path,
            std::path::Path::new(&c.target),
            c.overwrite,
        )?;
        let mut notes = s.warnings.clone();
        if s.skipped as usize > s.warnings.len() {
            notes.push(format!("{} entries skipped in all", s.skipped));
        }
        return Ok(RunView {
            bytes: s.bytes,
            files: s.files,
            notes,
        });
    }
    let s = session.restore(
        &c.restore_point,
        &RestorePointFilter::default(),
        std::path::Path::new(&c.target),
        &engine_options(c, false),
        progress,
        cancel,
    )?;
    Ok(RunView {
        bytes: s.bytes,
        files: s.files,
        notes: s.warnings,
    })
}
