//! One function per subcommand; each is a thin call into `rehydra-api`.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use rehydra_api::{
    self as api, BackupOptions, Cancel, CheckOptions, Context, DiskOutput, InitOptions, KdfParams,
    KeepPolicy, PruneOptions, RestoreOptions, RestorePointFilter, Session, Source, SourceItem,
};

use crate::args::{Cli, Command, FilterArgs};
use crate::output::{Bar, backup_outcome, bytes, json, warnings};
use crate::password;

pub(crate) fn context(cli: &Cli) -> Context {
    let d = Context::user_default();
    Context {
        catalog: if cli.no_catalog {
            None
        } else {
            cli.catalog.clone().or(d.catalog)
        },
        cache_dir: if cli.no_cache {
            None
        } else {
            cli.cache_dir.clone().or(d.cache_dir)
        },
        bandwidth: api::Bandwidth {
            upload: kib(cli.limit_upload),
            download: kib(cli.limit_download),
        },
        ..Context::default()
    }
}

/// A rate in KiB/s as bytes per second (saturating; 0 was refused by the parser).
fn kib(rate: Option<u64>) -> Option<std::num::NonZeroU64> {
    rate.and_then(|k| std::num::NonZeroU64::new(k.saturating_mul(1024)))
}

pub(crate) fn open(cli: &Cli) -> Result<Session> {
    // check the location before asking for a password
    api::backend_for(&context(cli), &cli.repo)?;
    let pw = password::current(
        cli.password_file.as_deref(),
        cli.password_command.as_deref(),
        &cli.repo,
    )?;
    let s = api::open(&context(cli), &cli.repo, &pw)?;
    warnings(s.repository().warnings());
    Ok(s)
}

/// Open a copy target (its own password: file, REHYDRA_COPY_PASSWORD, or a prompt).
pub(crate) fn open_copy_target(cli: &Cli, location: &str, file: Option<&Path>) -> Result<Session> {
    open_second(cli, location, file, "copy target", "--to-password-file")
}

/// Open a repository other than `-r`'s, `what` it is (`copy target`, `joined
/// repository`) naming it in the prompt and errors, `flag` the option of its password file.
pub(crate) fn open_second(
    cli: &Cli,
    location: &str,
    file: Option<&Path>,
    what: &str,
    flag: &str,
) -> Result<Session> {
    api::backend_for(&context(cli), location).with_context(|| format!("{what} `{location}`"))?;
    let pw = password::second_repository(file, &format!("the {what} {location}"), flag)?;
    api::open(&context(cli), location, &pw).with_context(|| format!("{what} `{location}`"))
}

pub(crate) fn cancel_on_ctrl_c() -> std::sync::Arc<Cancel> {
    let c = std::sync::Arc::new(Cancel::default());
    let c2 = c.clone();
    let _ = ctrlc::set_handler(move || c2.cancel());
    c
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = humantime::parse_duration(s)
        .with_context(|| format!("`{s}` is neither an RFC 3339 time nor a duration like 7d"))?;
    Ok(Utc::now() - chrono::Duration::from_std(d)?)
}

pub(crate) fn filter(f: &FilterArgs) -> Result<RestorePointFilter> {
    Ok(RestorePointFilter {
        asset: f.asset.clone(),
        workload: f.workload.clone(),
        tags: f.tags.clone(),
        hostname: f.host.clone(),
        since: f.since.as_deref().map(parse_time).transpose()?,
        until: f.until.as_deref().map(parse_time).transpose()?,
    })
}

pub(crate) fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// Run a command; returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    if cli.progress == crate::args::ProgressArg::Json && !cli.json {
        return Err(api::ApiError::new(
            api::Code::InvalidInput,
            "--progress json (REHYDRA_PROGRESS=json) goes with --json: every line on stdout is then a JSON object",
        )
        .into());
    }
    crate::output::set_json_lines(cli.progress == crate::args::ProgressArg::Json);
    match &cli.command {
        Command::Init(a) => {
            let pw = password::new(None, cli.password_file.as_deref())?;
            let avg = a.chunk_avg_kib.clamp(4, 4096) * 1024;
            let mut opts = InitOptions {
                pack_size: a.pack_size_mib.clamp(1, 1024) << 20,
                zstd_level: a.compression,
                kdf: KdfParams {
                    m_kib: a.kdf_memory_kib,
                    t: a.kdf_iterations,
                    p: 1,
                },
                label: a.label.clone(),
                ..InitOptions::default()
            };
            opts.chunker.avg = avg;
            opts.chunker.min = (avg / 4).max(4096);
            opts.chunker.max = avg * 4;
            let s = api::init(&context(&cli), &cli.repo, &pw, opts)?;
            if cli.json {
                json(&serde_json::json!({"id": s.id(), "location": cli.repo}))?;
            } else {
                println!("created repository {} at {}", &s.id()[..8], cli.repo);
                println!("keep the password safe: without it the data cannot be restored");
            }
            Ok(0)
        }
        Command::Backup(a) => {
            let exclude = api::exclude(&a.exclude.patterns()?, a.exclude.one_file_system)?;
            if a.paths.is_empty() && (!exclude.patterns().is_empty() || exclude.one_file_system) {
                return Err(api::ApiError::new(
                    api::Code::InvalidInput,
                    "--exclude, --exclude-file and --one-file-system apply to folders given as PATH",
                )
                .into());
            }
            let s = open(&cli)?;
            let mut items = Vec::new();
            for p in &a.paths {
                items.push(SourceItem {
                    name: absolute(p),
                    source: Source::Path(p.clone()),
                });
            }
            for p in &a.files {
                items.push(SourceItem {
                    name: absolute(p),
                    source: Source::File(p.clone()),
                });
            }
            let format = match a.disk_format.as_str() {
                "vhdx" => api::DiskFormat::Vhdx,
                "vhd" => api::DiskFormat::Vhd,
                "qcow2" => api::DiskFormat::Qcow2,
                "raw" => api::DiskFormat::Raw,
                _ => api::DiskFormat::Auto,
            };
            if a.changed_ranges.is_some() && a.disks.len() != 1 {
                bail!("--changed-ranges applies to exactly one --disk");
            }
            for p in &a.disks {
                let source = match (&a.changed_ranges, &a.changed_since) {
                    (Some(file), Some(since)) => {
                        let (id, snap) = s.resolve(since, &RestorePointFilter::default())?;
                        // the same disk under its own name, else the restore point's only disk
                        // (a checkpoint chain is backed up under the name of its newest file)
                        let name = absolute(p);
                        let disks: Vec<&str> = snap
                            .items
                            .iter()
                            .filter(|i| i.kind == api::ItemKind::Disk)
                            .map(|i| i.name.as_str())
                            .collect();
                        let item = if disks.contains(&name.as_str()) || disks.len() != 1 {
                            name
                        } else {
                            disks[0].to_string()
                        };
                        Source::DiskChanged {
                            path: p.clone(),
                            format,
                            changes: api::ChangedRanges {
                                since: id,
                                item,
                                ranges: read_ranges(file)?,
                            },
                        }
                    }
                    _ => Source::Disk {
                        path: p.clone(),
                        format,
                    },
                };
                items.push(SourceItem {
                    name: absolute(p),
                    source,
                });
            }
            if a.stdin {
                items.push(SourceItem {
                    name: a.stdin_name.clone(),
                    source: Source::Reader(Box::new(std::io::stdin())),
                });
            }
            // before anything is read: the engine's rule for item names
            api::check_item_names(items.iter().map(|i| i.name.as_str()))?;
            let asset = a
                .asset
                .clone()
                .or_else(|| items.first().map(|i| i.name.clone()))
                .unwrap_or_default();
            let workload = a.workload.clone().unwrap_or_else(|| {
                if !a.disks.is_empty() && a.paths.is_empty() {
                    "disk".into()
                } else {
                    "files".into()
                }
            });
            let opts = BackupOptions {
                workload,
                asset,
                tags: a.tags.clone(),
                hostname: a.host.clone(),
                read_all: a.read_all,
                exclude,
                ..BackupOptions::default()
            };
            let bar = Bar::new(&cli);
            let cancel = cancel_on_ctrl_c();
            let out = s.backup(items, &opts, &bar, &cancel)?;
            let sn = &out.restore_point;
            backup_outcome(cli.json, &out, &out.warnings, || {
                format!(
                    "restore point {} saved: {}, {} new ({} stored), {:.1} s",
                    sn.short_id,
                    sn.read_summary(),
                    bytes(sn.new_bytes),
                    bytes(sn.stored_bytes),
                    sn.seconds
                )
            })
        }
        Command::RestorePoints(f) => {
            let s = open(&cli)?;
            let list = s.restore_points(&filter(f)?)?;
            if cli.json {
                json(&list)?;
            } else {
                println!(
                    "{:<9} {:<20} {:<8} {:<10} {:>10}  asset",
                    "id", "time (UTC)", "workload", "host", "size"
                );
                for d in &list {
                    println!(
                        "{:<9} {:<20} {:<8} {:<10} {:>10}  {}{}",
                        d.short_id,
                        d.time.format("%Y-%m-%d %H:%M:%S"),
                        d.workload,
                        d.hostname,
                        bytes(d.bytes),
                        d.asset,
                        if d.tags.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", d.tags.join(","))
                        }
                    );
                }
                println!("{} restore point(s)", list.len());
            }
            Ok(0)
        }
        Command::Restore(a) => {
            let s = open(&cli)?;
            let opts = RestoreOptions {
                overwrite: a.overwrite,
                item: a.item.clone(),
                subpath: a.path.clone(),
                dry_run: a.dry_run,
                disk_format: match a.to_format.as_str() {
                    "vhdx" => DiskOutput::Vhdx,
                    "vhd" => DiskOutput::Vhd,
                    _ => DiskOutput::Raw,
                },
                in_place: a.in_place,
            };
            let bar = Bar::new(&cli);
            let cancel = cancel_on_ctrl_c();
            let r = s.restore(
                &a.restore_point,
                &filter(&a.filter)?,
                &a.target,
                &opts,
                &bar,
                &cancel,
            )?;
            if cli.json {
                json(&r)?;
            } else if a.dry_run {
                println!(
                    "would restore {} to {}; {} existing target(s){}",
                    bytes(r.bytes),
                    a.target.display(),
                    r.conflicts.len(),
                    if r.conflicts.is_empty() || a.overwrite {
                        ""
                    } else {
                        " (use --overwrite to replace them)"
                    }
                );
                for c in r.conflicts.iter().take(20) {
                    println!("  exists: {c}");
                }
            } else {
                println!(
                    "restored {} file(s), {} folder(s), {} ({} as holes) to {}",
                    r.files,
                    r.dirs,
                    bytes(r.bytes),
                    bytes(r.hole_bytes),
                    a.target.display()
                );
            }
            warnings(&r.warnings);
            Ok(0)
        }
        Command::Diff { from, to } => {
            let s = open(&cli)?;
            let d = s.diff(from, to)?;
            if cli.json {
                json(&d)?;
            } else {
                for c in &d.changes {
                    println!("{}  {}", c.change, c.path);
                }
                println!(
                    "{} added, {} removed, {} modified",
                    d.added, d.removed, d.modified
                );
            }
            Ok(0)
        }
        Command::Check(a) if a.storage => {
            let r = api::check_storage(&context(&cli), &cli.repo)?;
            if cli.json {
                json(&r)?;
            } else if r.broken.is_empty() {
                println!(
                    "{}: the storage behaves as a repository needs (checked in {}, removed)",
                    r.location, r.scratch
                );
            } else {
                println!(
                    "{}: the storage breaks {} rule(s) a repository relies on:",
                    r.location,
                    r.broken.len()
                );
                for b in &r.broken {
                    println!("  {b}");
                }
            }
            Ok(if r.broken.is_empty() { 0 } else { 14 })
        }
        Command::Check(a) => {
            let s = open(&cli)?;
            let subset = match &a.read_data_subset {
                None => None,
                Some(t) => {
                    let (n, m) = t
                        .split_once('/')
                        .context("--read-data-subset takes n/m, for example 1/7")?;
                    let (n, m): (u32, u32) = (n.trim().parse()?, m.trim().parse()?);
                    if n == 0 || m == 0 || n > m {
                        bail!("--read-data-subset {t}: n must be between 1 and m");
                    }
                    Some((n, m))
                }
            };
            let bar = Bar::new(&cli);
            let r = s.check(
                &CheckOptions {
                    read_data: a.read_data || subset.is_some(),
                    subset,
                },
                &bar,
            )?;
            if cli.json {
                json(&r)?;
            } else {
                for w in &r.warnings {
                    println!("warning: {w}");
                }
                for e in &r.errors {
                    println!("error: {e}");
                }
                println!(
                    "{} restore point(s), {} pack(s){}: {}",
                    r.restore_points,
                    r.packs,
                    if r.packs_read > 0 {
                        format!(
                            ", {} read ({} chunks verified)",
                            r.packs_read, r.chunks_read
                        )
                    } else {
                        String::new()
                    },
                    if r.ok() { "no errors" } else { "DAMAGED" }
                );
                if !r.damaged_restore_points.is_empty() {
                    println!(
                        "affected restore points: {}",
                        r.damaged_restore_points
                            .iter()
                            .map(|s| &s[..8])
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                }
            }
            Ok(if r.ok() { 0 } else { 14 })
        }
        Command::Copy(a) => {
            let s = open(&cli)?;
            let t = open_copy_target(&cli, &a.to, a.to_password_file.as_deref())?;
            let bar = Bar::new(&cli);
            let cancel = cancel_on_ctrl_c();
            let out = s.copy_to(&t, &a.restore_points, &filter(&a.filter)?, &bar, &cancel)?;
            if cli.json {
                json(&out)?;
            } else {
                for c in &out {
                    if c.already_copied {
                        println!("{} already copied as {}", &c.source[..8], c.copy.short_id);
                    } else {
                        println!(
                            "{} copied as {}: {} chunks read, {} reused from the previous copy, {} new ({} stored)",
                            &c.source[..8],
                            c.copy.short_id,
                            c.chunks_read,
                            c.chunks_reused,
                            c.new_chunks,
                            bytes(c.stored_bytes)
                        );
                    }
                }
            }
            Ok(0)
        }
        Command::Forget(a) => {
            let s = open(&cli)?;
            let within = a
                .keep_within
                .as_deref()
                .map(|w| {
                    humantime::parse_duration(w).with_context(|| {
                        format!("--keep-within `{w}`: expected a duration like 7d")
                    })
                })
                .transpose()?;
            let policy = KeepPolicy {
                last: a.keep_last,
                hourly: a.keep_hourly,
                daily: a.keep_daily,
                weekly: a.keep_weekly,
                monthly: a.keep_monthly,
                yearly: a.keep_yearly,
                within: within.map(chrono::Duration::from_std).transpose()?,
            };
            let d = s.forget(&policy, &filter(&a.filter)?, a.dry_run)?;
            let removed = d.iter().filter(|x| !x.keep).count();
            if cli.json {
                json(&d)?;
            } else {
                for x in &d {
                    println!(
                        "{} {} {} {}{}",
                        if x.keep { "keep  " } else { "remove" },
                        &x.id[..8],
                        x.time.format("%Y-%m-%d %H:%M:%S"),
                        x.group,
                        if x.keep {
                            format!(" ({})", x.reasons.join(", "))
                        } else {
                            String::new()
                        }
                    );
                }
                println!(
                    "{} kept, {} {}",
                    d.len() - removed,
                    removed,
                    if a.dry_run {
                        "would be removed"
                    } else {
                        "removed"
                    }
                );
            }
            if a.prune && !a.dry_run {
                let r = s.prune(&PruneOptions::default(), &Bar::new(&cli))?;
                if !cli.json {
                    print_prune(&r);
                }
            }
            Ok(0)
        }
        Command::Prune(a) => {
            let s = open(&cli)?;
            let r = s.prune(
                &PruneOptions {
                    repack_threshold_percent: a.repack_threshold,
                    dry_run: a.dry_run,
                },
                &Bar::new(&cli),
            )?;
            if cli.json {
                json(&r)?;
            } else {
                print_prune(&r);
            }
            Ok(0)
        }
        Command::Key(k) => crate::keys::run(&cli, k),
        Command::Files(fc) => crate::files::run(&cli, fc),
        Command::Nbd {
            restore_point,
            item,
            listen,
            export,
            overlay,
            filter: f,
        } => {
            let s = open(&cli)?;
            let listener = std::net::TcpListener::bind(listen)
                .with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr()?;
            let cancel = cancel_on_ctrl_c();
            if !cli.quiet {
                eprintln!(
                    "serving nbd://{addr}/{export} ({}); Ctrl-C stops",
                    if overlay.is_some() {
                        "writable, writes go to the overlay"
                    } else {
                        "read-only"
                    }
                );
            }
            let r = s.serve_nbd(
                restore_point,
                &filter(f)?,
                item.as_deref(),
                &listener,
                export,
                overlay.as_deref(),
                &cancel,
            )?;
            if cli.json {
                json(&r)?;
            } else if !cli.quiet {
                eprintln!(
                    "stopped; {} block(s) of 4 KiB were written to the overlay",
                    r.written_blocks
                );
            }
            Ok(0)
        }
        Command::Inventory {
            rpo_hours,
            discover,
            settings,
        } => {
            let mut discovered = Vec::new();
            if let Some(id) = discover {
                let (d, log) = crate::plugins::platform(&cli)?
                    .survey(id, &crate::plugins::props(settings)?)?;
                crate::plugins::print_log(&cli, &log);
                discovered.push(d);
            }
            let snaps = open(&cli)?.restore_points(&api::RestorePointFilter::default())?;
            let restored: std::collections::HashSet<String> =
                api::job_runs(&context(&cli), 100_000)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| {
                        r.kind == "restore" && r.status == rehydra_api::JobStatus::Succeeded
                    })
                    .filter_map(|r| r.restore_point_id)
                    .collect();
            let inv = api::inventory::build(
                &discovered,
                &snaps,
                &restored,
                *rpo_hours,
                api::inventory::now(),
            );
            if cli.json {
                json(&inv)?;
            } else {
                for a in &inv {
                    let age = a
                        .age_hours
                        .map_or_else(|| "never".to_string(), |h| format!("{h:.1} h ago"));
                    let risks: Vec<&str> = a.risks.iter().map(|r| r.title.as_str()).collect();
                    println!(
                        "{:<11} {:<8} {:<40} last {:<12} {}",
                        a.status,
                        a.kind,
                        a.name,
                        age,
                        risks.join("; ")
                    );
                }
            }
            Ok(0)
        }
        Command::Stats => {
            let s = open(&cli)?;
            let st = s.stats()?;
            if cli.json {
                json(&st)?;
            } else {
                println!(
                    "repository {} (format v{}) at {}",
                    &st.id[..8],
                    st.version,
                    st.location
                );
                println!("restore points: {}", st.restore_points);
                println!(
                    "logical data:   {} ({} of it zeros, never stored)",
                    bytes(st.logical_bytes),
                    bytes(st.zero_bytes)
                );
                println!(
                    "unique data:    {} in {} chunks",
                    bytes(st.unique_bytes),
                    st.chunks
                );
                println!(
                    "stored:         {} in {} packs, {} index files",
                    bytes(st.pack_bytes),
                    st.packs,
                    st.index_files
                );
                println!("reduction:      {:.2}x", st.reduction_ratio);
                println!(
                    "chunk index:    {} entries on disk in {} run(s), {} of fences in memory",
                    st.index.on_disk,
                    st.index.runs,
                    bytes(st.index.fence_bytes)
                );
            }
            Ok(0)
        }
        Command::Catalog(c) => crate::catalog::run(&cli, c),
        Command::Policy(c) => crate::policy::run(&cli, c),
        Command::Operator(c) => crate::operator::run(&cli, c),
        Command::Service {
            action,
            run,
            status,
            windows_service,
        } => crate::service::run(&cli, action.as_ref(), run, *status, *windows_service),
        Command::Plugins(c) => crate::plugins::run(&cli, c),
        Command::Assess(a) => crate::assess::run(&cli, a),
        Command::Azure(c) => crate::azure::run(&cli, c),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "rehydra", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { dir } => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
            if !cli.json {
                println!("manual pages written to {}", dir.display());
            }
            Ok(0)
        }
    }
}

pub(crate) fn print_prune(r: &rehydra_api::PruneReport) {
    for n in &r.notes {
        println!("note: {n}");
    }
    println!(
        "{} pack(s) examined: {} unused, {} left by interrupted runs, {} repacked ({} chunks copied); deleted {} pack(s) and {} index file(s), {} freed{}",
        r.packs,
        r.unused_packs,
        r.orphan_packs,
        r.repacked_packs,
        r.repacked_chunks,
        r.deleted_packs,
        r.deleted_index_files,
        bytes(r.freed_bytes),
        if r.deferred_plans > 0 {
            format!(
                "; {} plan(s) deferred until running backups end",
                r.deferred_plans
            )
        } else {
            String::new()
        }
    );
}

/// Report a key-slot change as text or JSON.
pub(crate) fn done(cli: &Cli, what: &str, id: &str) -> Result<()> {
    if cli.json {
        json(&serde_json::json!({ "result": what, "key_slot": id }))
    } else {
        println!("{what} {}", &id[..8.min(id.len())]);
        Ok(())
    }
}

/// `offset length` per line (decimal or 0x-hex), `#` comments and blank lines ignored.
pub(crate) fn read_ranges(file: &Path) -> Result<Vec<(u64, u64)>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading changed ranges from {}", file.display()))?;
    let num = |t: &str| match t.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut f = line.split_whitespace();
        match (f.next().and_then(num), f.next().and_then(num), f.next()) {
            (Some(o), Some(l), None) => out.push((o, l)),
            _ => bail!(
                "{} line {}: `{line}` is not `offset length`",
                file.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}
