//! `plan-restore`, `restore` and `verify`.
//!
//! `mode=built-in` is the instance's own point-in-time restore ([`crate::builtin`]).
//! `mode=copies` (the default) restores from the backups the restore point keeps: the
//! plan reads the point's `chain.json` (checked whole, and it must name the point's own
//! asset), picks the full and the logs that reach `stop-at` with sql-common's chain rules,
//! and shows the steps and the `RESTORE … WITH NORECOVERY, CHECKSUM[, MOVE …]`,
//! `RESTORE LOG … [STOPAT]`, `RESTORE DATABASE … WITH RECOVERY` script. Running it is not
//! done yet: the plan carries a blocker that says so, and `restore` refuses.

use rehydra_plugin_sdk::{engine, prelude::*};
use sql_common::chain;
use sql_common::model::{CHAIN_ITEM, ChainDoc, Kept, verify_chain};
use sql_common::tsql::{DbFile, parse_time, show_time};

use crate::backup::{CONTAINER, POD_FOLDER};
use crate::builtin;
use crate::names::{self, shown};

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

/// The plan of a restore from the point's copies.
fn plan_copies(req: &RestoreRequest) -> Result<RestorePlan> {
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
    let mut p = empty_plan();
    let chosen = match chain::plan(&history, stop_at, true) {
        Ok(c) => c,
        Err(why) => {
            p.blockers.push(why.describe());
            return Ok(p);
        }
    };
    let steps: Vec<&Kept> = chosen
        .steps
        .iter()
        .filter_map(|&i| doc.backups.get(i))
        .collect();
    let pod = format!("{}-0", doc.server);
    for (n, k) in steps.iter().enumerate() {
        let file = &k.item["backups/".len()..];
        p.steps.push(Step::new(
            &format!("backup-{n}"),
            &format!("{} backup finished {}", k.kind, k.finish),
            format!(
                "{} (LSN {} to {}): restore it to a staging folder, then kubectl cp <staging>/{file} {pod}:{POD_FOLDER}/{file} -c {CONTAINER}",
                k.item, k.first_lsn, k.last_lsn
            ),
        ));
    }
    let mv = moves(&doc.files, &doc.database, &database);
    let last = steps.len().saturating_sub(1);
    let mut script = Vec::new();
    for (n, k) in steps.iter().enumerate() {
        let log = k.kind == "log";
        let mut with = vec!["NORECOVERY".to_string(), "CHECKSUM".to_string()];
        if !log {
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
            lit(&format!("{POD_FOLDER}/{}", &k.item["backups/".len()..])),
            with.join(", ")
        ));
    }
    script.push(format!(
        "RESTORE DATABASE {} WITH RECOVERY",
        quoted(&database)
    ));
    p.steps.push(Step::new(
        "script",
        "the RESTORE script, run on the instance",
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
    p.blockers.push(
        "this plugin does not yet run restores from its copies: restore the backups with the steps above and run the script yourself, or use mode=built-in within the instance's retention".into(),
    );
    Ok(p)
}

/// Plan a restore of the point in hand.
///
/// # Errors
/// Malformed settings or a damaged point.
pub fn plan(req: &RestoreRequest) -> Result<RestorePlan> {
    if mode(&req.options)? {
        builtin::plan(req).map(|p| p.plan)
    } else {
        plan_copies(req)
    }
}

/// Restore the point in hand.
///
/// # Errors
/// `unsupported` for copies; as [`builtin::restore`].
pub fn restore(req: &RestoreRequest) -> Result<RestoreReport> {
    if mode(&req.options)? {
        return builtin::restore(req);
    }
    Err(Error::new(
        ErrorCode::Unsupported,
        "restoring from Rehydra's copies is planned (plan-restore shows the steps and the script) but not run by this plugin yet; use mode=built-in within the instance's retention",
    ))
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
