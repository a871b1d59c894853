//! `plan-restore`, `restore` and `verify`.
//!
//! `mode=built-in` is the instance's own point-in-time restore ([`crate::builtin`]).
//! `mode=copies` (the default) restores from the backups the restore point keeps: the
//! plan reads the point's `chain.json` (checked whole, and it must name the point's own
//! asset), picks the full and the logs that reach `stop-at` with sql-common's chain rules,
//! and shows the steps and the `RESTORE … WITH NORECOVERY, CHECKSUM[, MOVE …]`,
//! `RESTORE LOG … [STOPAT]`, `RESTORE DATABASE … WITH RECOVERY` script for the target
//! instance (`instance=`, default the one backed up). A database of that name there is a
//! blocker unless `replace=true`. The restore then runs it, as the backup ran in reverse:
//!
//! 1. `kubectl exec … -- mkdir -p /var/opt/mssql/backups/rehydra` in the target's pod;
//! 2. each backup the plan uses written by the engine into `staging` (through
//!    `path-map`), `kubectl cp <staging>/<file> <ns>/<pod>:<folder>/<file> -c arc-sqlmi`,
//!    and the staged copy removed;
//! 3. the script over TDS, statement by statement;
//! 4. the copies in the pod removed (`kubectl exec … -- rm -f`), also when a step failed.

use rehydra_plugin_sdk::kube::kubectl::{self, Pod, abs_path};
use rehydra_plugin_sdk::windows::map_path;
use rehydra_plugin_sdk::{engine, host, prelude::*};
use sql_common::chain;
use sql_common::model::{CHAIN_ITEM, ChainDoc, Kept, verify_chain};
use sql_common::tsql::{self, DbFile, parse_time, show_time};

use crate::backup::{CONTAINER, POD_FOLDER, remove_in_pod};
use crate::builtin;
use crate::names::{self, server_of, shown};

fn lit(s: &str) -> String {
    rehydra_plugin_sdk::sql::literal(s)
}

fn quoted(s: &str) -> String {
    rehydra_plugin_sdk::sql::name(s)
}

fn mode(o: &[Property]) -> Result<bool> {
    match setting_or(o, "mode", "copies") {
        "copies" => Ok(false),
        "built-in" => Ok(true),
        m => Err(Error::new(
            ErrorCode::InvalidInput,
            format!("mode `{}` is not copies or built-in", shown(m, 40)),
        )),
    }
}

/// The point's chain, checked against the point's asset.
fn chain_of_point(req: &RestoreRequest) -> Result<ChainDoc> {
    let doc = ChainDoc::parse(&engine::read_document(CHAIN_ITEM)?)?;
    let d = names::parse_db(&req.restore_point.asset)?;
    if doc.server != d.instance_key() || doc.database != d.database {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "chain.json of this restore point names {}/{}, but the point is of {}; the point is damaged or was written by something else",
                shown(&doc.server, 80),
                shown(&doc.database, 128),
                shown(&req.restore_point.asset, 200)
            ),
        ));
    }
    Ok(doc)
}

/// `MOVE` clauses for a restore under another name: each file next to the original,
/// named for the new database.
fn moves(files: &[DbFile], from: &str, to: &str) -> Vec<String> {
    if from == to {
        return Vec::new();
    }
    files
        .iter()
        .map(|f| {
            let (dir, base) = f.physical.rsplit_once('/').unwrap_or(("", &f.physical));
            let new = match base.strip_prefix(from) {
                Some(rest) => format!("{to}{rest}"),
                None => format!("{to}_{base}"),
            };
            format!(
                "MOVE {} TO {}",
                lit(&f.logical),
                lit(&format!("{dir}/{new}"))
            )
        })
        .collect()
}

/// Where a restore from the copies goes and how it gets there: what the plan shows and
/// the restore runs.
struct Copies {
    plan: RestorePlan,
    /// The target instance's TDS endpoint; `None` when none is configured (a blocker).
    server: Option<String>,
    /// The target's pod; `None` without `staging` (a blocker).
    pod: Option<Pod>,
    staging: String,
    map: String,
    /// The backups the script reads: item, file name.
    files: Vec<(String, String)>,
    script: Vec<String>,
    database: String,
}

/// The plan of a restore from the point's copies.
fn plan_copies(req: &RestoreRequest) -> Result<Copies> {
    let o = &req.options;
    let doc = chain_of_point(req)?;
    let history = doc.history()?;
    let stop_at = match setting(o, "stop-at").filter(|v| !v.is_empty()) {
        Some(t) => Some(parse_time(t).ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("stop-at `{}` is not a time; write it as 2026-12-01T14:37:15 (the instance's clock)", shown(t, 60)),
            )
        })?),
        None => None,
    };
    let database =
        names::database("database", setting_or(o, "database", &doc.database))?.to_string();
    let (namespace, instance) = match setting(o, "instance").filter(|v| !v.is_empty()) {
        Some(i) => names::instance_ref(i)?,
        None => {
            let d = names::parse_db(&req.restore_point.asset)?;
            (d.namespace, d.instance)
        }
    };
    let key = format!("{namespace}/{instance}");
    let replace = flag(o, "replace");
    let mut p = empty_plan();
    let servers = names::servers(setting_or(o, "servers", ""))?;
    let server = server_of(&servers, &key).map(str::to_string);
    if server.is_none() {
        p.blockers.push(format!(
            "no SQL endpoint is configured for instance {key}: add servers={key}=<endpoint> (configured with rehydra plugins sql-server add <the endpoint discover shows>)"
        ));
    }
    let staging = match setting(o, "staging").filter(|v| !v.is_empty()) {
        Some(s) => abs_path("staging", s)?.trim_end_matches('/').to_string(),
        None => {
            p.blockers.push("staging: give an absolute folder on the command target where the backups are written before kubectl cp puts them into the pod, e.g. staging=/var/lib/rehydra/stage".into());
            String::new()
        }
    };
    let default_pod = format!("{instance}-0");
    let pod = if staging.is_empty() {
        None
    } else {
        Some(Pod::new(
            setting_or(o, "command-target", "local"),
            setting(o, "kube-context").filter(|c| !c.is_empty()),
            &namespace,
            setting_or(o, "pod", &default_pod),
            setting_or(o, "container", CONTAINER),
        )?)
    };
    let chosen = match chain::plan(&history, stop_at, true) {
        Ok(c) => c,
        Err(why) => {
            p.blockers.push(why.describe());
            return Ok(Copies {
                plan: p,
                server,
                pod,
                staging,
                map: String::new(),
                files: Vec::new(),
                script: Vec::new(),
                database,
            });
        }
    };
    // the target is asked only whether the database exists: nothing is written by a plan
    if let Some(server) = &server {
        match tsql::database(server, &database)? {
            Some(_) if !replace => p.blockers.push(format!(
                "database `{}` exists on instance {key}; restore under another name (database=…), or over it (replace=true)",
                shown(&database, 128)
            )),
            Some(_) => p.warnings.push(format!(
                "database `{}` on instance {key} is replaced (WITH REPLACE)",
                shown(&database, 128)
            )),
            None => {}
        }
    }
    let steps: Vec<&Kept> = chosen
        .steps
        .iter()
        .filter_map(|&i| doc.backups.get(i))
        .collect();
    let pod_name = pod
        .as_ref()
        .map_or(default_pod.as_str(), |p| p.pod.as_str());
    let files: Vec<(String, String)> = steps
        .iter()
        .map(|k| (k.item.clone(), k.item["backups/".len()..].to_string()))
        .collect();
    for (n, (k, (item, file))) in steps.iter().zip(&files).enumerate() {
        p.steps.push(Step::new(
            &format!("backup-{n}"),
            &format!("{} backup finished {}", k.kind, k.finish),
            format!(
                "{item} (LSN {} to {}): written to {}/{file}, then kubectl cp into {namespace}/{pod_name}:{POD_FOLDER}/{file} -c {CONTAINER}",
                k.first_lsn,
                k.last_lsn,
                if staging.is_empty() { "<staging>" } else { &staging }
            ),
        ));
    }
    let mv = moves(&doc.files, &doc.database, &database);
    let last = steps.len().saturating_sub(1);
    let mut script = Vec::new();
    for (n, (k, (_, file))) in steps.iter().zip(&files).enumerate() {
        let log = k.kind == "log";
        let mut with = vec!["NORECOVERY".to_string(), "CHECKSUM".to_string()];
        if !log {
            if replace {
                with.push("REPLACE".into());
            }
            with.extend(mv.iter().cloned());
        }
        if n == last
            && log
            && let Some(t) = stop_at
        {
            with.push(format!("STOPAT = {}", lit(&show_time(t))));
        }
        script.push(format!(
            "RESTORE {} {} FROM DISK = {} WITH {}",
            if log { "LOG" } else { "DATABASE" },
            quoted(&database),
            lit(&format!("{POD_FOLDER}/{file}")),
            with.join(", ")
        ));
    }
    script.push(format!(
        "RESTORE DATABASE {} WITH RECOVERY",
        quoted(&database)
    ));
    p.steps.push(Step::new(
        "script",
        &format!("the RESTORE script, run on instance {key}"),
        script.join(";\n"),
    ));
    p.steps.push(Step::new(
        "moment",
        "restored to",
        format!(
            "{} on the instance's clock (the chain reaches {})",
            show_time(stop_at.unwrap_or(chosen.reaches)),
            show_time(chosen.reaches)
        ),
    ));
    Ok(Copies {
        plan: p,
        server,
        pod,
        staging,
        map: setting_or(o, "path-map", "").to_string(),
        files,
        script,
        database,
    })
}

/// Run a planned restore from the copies (its plan has no blockers).
fn run_copies(c: &Copies) -> Result<RestoreReport> {
    c.plan.go_ahead()?;
    let (Some(server), Some(pod)) = (&c.server, &c.pod) else {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "the plan has no target",
        ));
    };
    let mut report = RestoreReport::new(0);
    report.warnings.clone_from(&c.plan.warnings);
    let total = (c.files.len() + c.script.len()) as u64;
    let mut done = 0u64;
    host::progress(
        done,
        total,
        &format!("restoring `{}`", shown(&c.database, 128)),
    );
    pod.run(
        &pod.exec_args(&["mkdir", "-p", POD_FOLDER]),
        "making the backup folder in the pod",
    )?;
    let mut in_pod = Vec::new();
    let ran = (|| -> Result<()> {
        for (item, file) in &c.files {
            host::progress(
                done,
                total,
                &format!("copying {file} into pod {}/{}", pod.namespace, pod.pod),
            );
            let staged = format!("{}/{file}", c.staging);
            let device = format!("{POD_FOLDER}/{file}");
            report.bytes += engine::restore_item(item, &map_path(&c.map, &staged)?, false)?;
            let copied = pod.run(
                &pod.cp_in_args(&staged, &device)?,
                "copying the backup into the pod",
            );
            report
                .warnings
                .extend(kubectl::unstage(&pod.target, &staged));
            copied?;
            in_pod.push(device);
            done += 1;
        }
        tsql::run_restore_script(
            server,
            &c.database,
            c.script.iter().map(String::as_str),
            &mut done,
            total,
        )?;
        Ok(())
    })();
    // the copies in the pod go, whatever happened
    for device in &in_pod {
        report.warnings.extend(remove_in_pod(pod, device));
    }
    for w in &report.warnings {
        host::log(host::Level::Warn, w);
    }
    ran?;
    host::progress(total, total, "done");
    host::info(&format!(
        "database `{}` restored on {server}",
        shown(&c.database, 128)
    ));
    Ok(report)
}

/// Plan a restore of the point in hand.
///
/// # Errors
/// Malformed settings or a damaged point.
pub fn plan(req: &RestoreRequest) -> Result<RestorePlan> {
    if mode(&req.options)? {
        builtin::plan(req).map(|p| p.plan)
    } else {
        plan_copies(req).map(|c| c.plan)
    }
}

/// Restore the point in hand.
///
/// # Errors
/// A plan with blockers, and any step's failure (the copies in the pod are removed
/// first); as [`builtin::restore`].
pub fn restore(req: &RestoreRequest) -> Result<RestoreReport> {
    if mode(&req.options)? {
        return builtin::restore(req);
    }
    run_copies(&plan_copies(req)?)
}

/// Every backup `chain.json` names is in the point, and the chain restores.
///
/// # Errors
/// A damaged point.
pub fn verify(req: &RestoreRequest) -> Result<VerifyReport> {
    let doc = chain_of_point(req)?;
    let (report, _) = verify_chain(&doc, &req.restore_point.asset, "arcsqlmi")?;
    Ok(report)
}
