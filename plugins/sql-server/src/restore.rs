//! `plan-restore`, `restore` and `verify`: a database back to a moment.
//!
//! The plan reads the point's chain, picks the full, the latest differential and the
//! logs that reach `stop-at` (see [`crate::chain::plan`]), checks the target instance
//! (`server=`, else the asset's own, or after a failover a replica: [`crate::target`])
//! (the database exists: `replace=true` or another name; files under another name go
//! next to the originals with the new name, or to `data-folder`/`log-folder`), and shows
//! the `RESTORE … WITH NORECOVERY … STOPAT` script it will run. The restore puts the
//! chosen backups in the staging folder, runs the script statement by statement, and
//! removes the staged files. `mode=files` writes the backups and `restore.sql` to the
//! target folder instead, for a DBA to run by hand.

use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::windows::map_path;
use rehydra_plugin_sdk::{engine, host};

use crate::backup::{on_instance, replicas, unstage};
use crate::chain::{self, Kind};
use crate::model::{CHAIN_ITEM, ChainDoc, Kept, chain_finding, verify_chain};
use crate::target::default_target;
use crate::tsql::{self, BULK_SECS, DbFile, parse_time, show_time};

/// One statement of the script.
pub struct Statement {
    pub sql: String,
}

/// A checked restore plan.
pub struct Planned {
    pub plan: RestorePlan,
    pub server: String,
    pub database: String,
    pub script: Vec<Statement>,
    /// (item, path on the instance) of every backup the script reads.
    pub staged: Vec<(String, String)>,
    pub files_mode: bool,
}

impl From<Planned> for RestorePlan {
    fn from(p: Planned) -> Self {
        p.plan
    }
}

fn chain_of_point() -> Result<ChainDoc> {
    ChainDoc::parse(&engine::read_document(CHAIN_ITEM)?)
}

fn lit(s: &str) -> String {
    rehydra_plugin_sdk::sql::literal(s)
}

fn quoted(s: &str) -> String {
    rehydra_plugin_sdk::sql::name(s)
}

/// The last component of a path written with either separator.
fn base_name(p: &str) -> &str {
    p.rsplit(['\\', '/']).next().unwrap_or(p)
}

fn dir_name(p: &str) -> &str {
    p.rfind(['\\', '/']).map_or("", |i| &p[..i])
}

/// `MOVE` clauses: where each file goes on the target.
fn moves(
    files: &[DbFile],
    from: &str,
    to: &str,
    data: Option<&str>,
    log: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        let folder = match (f.kind.eq_ignore_ascii_case("LOG"), data, log) {
            (true, _, Some(l)) | (true, Some(l), None) => l.to_string(),
            (false, Some(d), _) => d.to_string(),
            _ => dir_name(&f.physical).to_string(),
        };
        let name = base_name(&f.physical);
        // under another name the files take it too, so the original's stay untouched
        let new_name = if from == to {
            name.to_string()
        } else if let Some(rest) = name.strip_prefix(from) {
            format!("{to}{rest}")
        } else {
            format!("{to}_{name}")
        };
        if data.is_some() || log.is_some() || from != to {
            out.push(format!(
                "MOVE {} TO {}",
                lit(&f.logical),
                lit(&on_instance(&folder, &new_name))
            ));
        }
    }
    out
}

/// Where the files go (`data-folder`, `log-folder`): as given; on another instance, where
/// that instance puts new databases unless given (the original folders may not exist
/// there); otherwise `None`, next to the originals.
fn folders(
    o: &[Property],
    doc: &ChainDoc,
    server: &str,
    files_mode: bool,
    p: &mut RestorePlan,
) -> (Option<String>, Option<String>) {
    let given = |n| setting(o, n).map(str::to_string);
    let (data, log) = (given("data-folder"), given("log-folder"));
    // a data-folder given alone takes the log files too, as on the same instance
    if files_mode || server.eq_ignore_ascii_case(&doc.server) || data.is_some() {
        return (data, log);
    }
    match tsql::default_folders(server) {
        Ok((d, l)) => {
            let (data, log) = (d, log.or(l));
            if let Some(d) = &data {
                p.steps.push(Step::new(
                    "folders",
                    "files on the target instance",
                    format!(
                        "data files in {d}, log files in {} ({server}'s default folders unless given)",
                        log.as_deref().unwrap_or(d)
                    ),
                ));
            }
            (data, log)
        }
        Err(e) => {
            p.warnings.push(format!(
                "{server} did not say where it keeps new databases ({}); the files keep the folders they had on {}: give data-folder= and log-folder= if {server} has no such folders",
                e.message, doc.server
            ));
            (data, log)
        }
    }
}

/// Plan a restore of the point in hand.
pub fn plan(req: &RestoreRequest) -> Result<Planned> {
    let o = &req.options;
    let doc = chain_of_point()?;
    // the point's own asset decides what it is of; a chain.json that says otherwise is
    // not trusted to pick a database or an instance to replace
    let (asset_server, asset_db) = crate::tsql::split_asset(&req.restore_point.asset)?;
    if !doc.server.eq_ignore_ascii_case(asset_server) || doc.database != asset_db {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "chain.json of this restore point names {}/{}, but the point is of {}; the point is damaged or was written by something else",
                doc.server, doc.database, req.restore_point.asset
            ),
        ));
    }
    let history = doc.history()?;
    if let Some(text) = setting(o, "moments") {
        return Ok(Planned {
            plan: crate::moments::plan(&history, text)?,
            server: doc.server.clone(),
            database: doc.database.clone(),
            script: vec![],
            staged: vec![],
            files_mode: false,
        });
    }
    let stop_at = match setting(o, "stop-at") {
        Some(t) => Some(parse_time(t).ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("stop-at `{t}` is not a time; write it as 2026-12-01T14:37:15 (the instance's clock)"),
            )
        })?),
        None => None,
    };
    let database = setting_or(o, "database", &doc.database).to_string();
    if database.is_empty()
        || database.len() > 128
        || database.chars().any(char::is_control)
        || database.contains("$(")
        || tsql::is_system_database(&database)
    {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "database: a name of 1 to 128 characters, without control characters or `$(`, and not a system database (master, model, msdb, tempdb)",
        ));
    }
    let files_mode = match setting_or(o, "mode", "database") {
        "database" => false,
        "files" => true,
        m => {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("mode `{m}` is not database or files"),
            ));
        }
    };
    let replace = flag(o, "replace");
    let tail = flag(o, "tail-log");
    let mut p = empty_plan();
    let server = match setting(o, "server").filter(|s| !s.trim().is_empty()) {
        Some(s) => s.to_ascii_lowercase(),
        // files for a DBA need no instance
        None if files_mode => doc.server.to_ascii_lowercase(),
        None => match default_target(&doc, &replicas(o, &doc.server)?) {
            Ok(None) => doc.server.to_ascii_lowercase(),
            Ok(Some(c)) => {
                // an instance Rehydra chose holds the group's live database: never over it
                if database.eq_ignore_ascii_case(&doc.database) || replace || tail {
                    p.blockers.push(format!(
                        "the restore would go to {}, which Rehydra chose because the asset's instance cannot be used, and it holds the availability group's live `{}`: restore under another name (database=…) without replace= or tail-log=, or name the instance with server=",
                        c.server, doc.database
                    ));
                }
                p.steps.push(Step::new("target", "restored on", c.why));
                c.server
            }
            Err(why) => {
                p.blockers.push(why);
                doc.server.to_ascii_lowercase()
            }
        },
    };
    let chosen = match chain::plan(&history, stop_at, true) {
        Ok(c) => c,
        Err(why) => {
            p.blockers.push(why.describe());
            return Ok(Planned {
                plan: p,
                server,
                database,
                script: vec![],
                staged: vec![],
                files_mode,
            });
        }
    };
    let steps = doc.steps(&chosen);
    for (n, k) in steps.iter().enumerate() {
        p.steps.push(Step::new(
            &format!("backup-{n}"),
            &format!("{} backup finished {}", k.kind, k.finish),
            format!(
                "{} (LSN {} to {}, set {})",
                k.item, k.first_lsn, k.last_lsn, k.set
            ),
        ));
    }
    let reach = stop_at.map_or_else(|| show_time(chosen.reaches), show_time);
    p.steps.push(Step::new(
        "moment",
        "restored to",
        format!(
            "{reach} on the instance's clock (the chain reaches {})",
            show_time(chosen.reaches)
        ),
    ));

    // the target
    let staging = setting(o, "staging");
    if !files_mode {
        match tsql::database(&server, &database) {
            Ok(Some(existing)) if !replace && !tail => p.blockers.push(format!(
                "database `{database}` exists on {server} ({}); restore under another name (database=…), or replace it (replace=true, with tail-log=true to back up the end of its log first)",
                existing.state
            )),
            Ok(None) if tail => p.blockers.push(format!(
                "tail-log=true, but there is no database `{database}` on {server} to back up the tail of"
            )),
            Ok(_) => {}
            Err(e) => p.blockers.push(format!("the target instance {server} cannot be read: {}", e.message)),
        }
        if staging.is_none() {
            p.blockers.push(
                "say where SQL Server reads the backups from: staging=<folder as the instance sees it> (and path-map for this machine)".into(),
            );
        }
    }
    if doc.recovery.eq_ignore_ascii_case("SIMPLE") && stop_at.is_some() {
        p.warnings.push(format!(
            "`{}` used the SIMPLE recovery model: there are no log backups, so it comes back as of its last full or differential backup before that moment",
            doc.database
        ));
    }

    // the script
    let folder = if files_mode {
        ".".to_string()
    } else {
        staging.unwrap_or_default().to_string()
    };
    let stage = |k: &Kept| on_instance(&folder, &k.item["backups/".len()..]);
    let (data, log) = folders(o, &doc, &server, files_mode, &mut p);
    let mv = moves(
        &doc.files,
        &doc.database,
        &database,
        data.as_deref(),
        log.as_deref(),
    );
    let mut script = Vec::new();
    if tail {
        let device = on_instance(
            &folder,
            &format!(
                "{}_tail.trn",
                database.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            ),
        );
        script.push(Statement {
            sql: format!(
                "BACKUP LOG {} TO DISK = {} WITH NORECOVERY, NO_TRUNCATE, CHECKSUM, NOINIT",
                quoted(&database),
                lit(&device)
            ),
        });
        p.warnings.push(format!("the tail of the log of `{database}` goes to {device} first; keep it until the restore is checked"));
    }
    let last = steps.len().saturating_sub(1);
    for (n, k) in steps.iter().enumerate() {
        let mut with = vec!["NORECOVERY".to_string(), "CHECKSUM".to_string()];
        if k.kind != "log" {
            with.extend(mv.iter().cloned());
            if replace && n == 0 {
                with.push("REPLACE".into());
            }
        }
        if n == last
            && k.kind == "log"
            && let Some(t) = stop_at
        {
            with.push(format!("STOPAT = {}", lit(&show_time(t))));
        }
        script.push(Statement {
            sql: format!(
                "RESTORE {} {} FROM DISK = {} WITH {}",
                if k.kind == "log" { "LOG" } else { "DATABASE" },
                quoted(&database),
                lit(&stage(k)),
                with.join(", ")
            ),
        });
    }
    script.push(Statement {
        sql: format!("RESTORE DATABASE {} WITH RECOVERY", quoted(&database)),
    });
    if files_mode && script.iter().any(|s| s.sql.contains("$(")) {
        p.warnings.push(
            "a file name in restore.sql holds `$(`, which sqlcmd reads as a variable: run it with sqlcmd -x (or in SSMS without SQLCMD mode)".into(),
        );
    }
    let shown: Vec<&str> = script.iter().map(|s| s.sql.as_str()).collect();
    p.steps.push(Step::new(
        "script",
        if files_mode {
            "restore.sql, for a DBA to run"
        } else {
            "the script that will run"
        },
        shown.join(";\n"),
    ));
    if !files_mode {
        if let Some(map) = setting(o, "path-map")
            && let Err(e) = steps
                .iter()
                .try_for_each(|k| map_path(map, &stage(k)).map(|_| ()))
        {
            p.blockers.push(e.message);
        }
        if server != doc.server
            && chosen
                .steps
                .iter()
                .any(|&i| history.get(i).is_some_and(|b| b.kind == Kind::Full))
        {
            p.warnings.push(format!(
                "restoring to another instance ({server}): logins, jobs and, for an encrypted (TDE) database, its certificate are not part of a database backup"
            ));
        }
    }
    let staged = steps.iter().map(|k| (k.item.clone(), stage(k))).collect();
    Ok(Planned {
        plan: p,
        server,
        database,
        script,
        staged,
        files_mode,
    })
}

/// Restore the point in hand as planned.
pub fn restore(req: &RestoreRequest) -> Result<RestoreReport> {
    rehydra_plugin_sdk::found::refuse_in_restore(&req.options, "moments", "stop-at")?;
    let planned = plan(req)?;
    planned.plan.go_ahead()?;
    // the target is chosen again at run time: say where the restore goes now
    if let Some(t) = planned.plan.steps.iter().find(|s| s.id == "target") {
        host::info(&format!("restoring on {}", t.detail));
    }
    let mut report = RestoreReport::new(0);
    report.warnings.clone_from(&planned.plan.warnings);
    if planned.files_mode {
        if req.target.is_empty() || req.target == "-" {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "mode=files writes the backups and restore.sql into --target <folder>",
            ));
        }
        for (item, _) in &planned.staged {
            report.bytes += engine::restore_item(item, &req.target, false)?;
        }
        let script: Vec<String> = planned
            .script
            .iter()
            .map(|s| format!("{};\nGO\n", s.sql))
            .collect();
        let target = format!("{}/restore.sql", req.target.trim_end_matches('/'));
        rehydra_plugin_sdk::files::write_file(&target, script.concat().as_bytes(), false)?;
        host::info(&format!(
            "{} backup(s) and restore.sql written to {}",
            planned.staged.len(),
            req.target
        ));
        return Ok(report);
    }
    let map = setting_or(&req.options, "path-map", "");
    let total = planned.script.len() as u64 + planned.staged.len() as u64;
    let mut done = 0u64;
    // the backups where the instance reads them
    for (item, device) in &planned.staged {
        host::progress(done, total, &format!("staging {item}"));
        let host_path = map_path(map, device)?;
        report.bytes += engine::restore_item(item, &host_path, false)?;
        done += 1;
    }
    let ran = tsql::run_restore_script(
        &planned.server,
        &planned.database,
        planned.script.iter().map(|s| s.sql.as_str()),
        &mut done,
        total,
    );
    for (_, device) in &planned.staged {
        report.warnings.extend(unstage(&planned.server, device));
    }
    ran?;
    host::progress(total, total, "done");
    host::info(&format!(
        "database `{}` restored on {}",
        planned.database, planned.server
    ));
    Ok(report)
}

/// The point's chain is whole: every backup it names is an item of the point with
/// content, and the chain reaches its last backup. Given `staging` (and `path-map`), the
/// instance (`server`, default the one backed up) also reads every backup a restore of the
/// latest moment uses, with `RESTORE VERIFYONLY … WITH CHECKSUM`.
pub fn verify(req: &RestoreRequest) -> Result<VerifyReport> {
    let doc = chain_of_point()?;
    let asset = format!("{}/{}", doc.server, doc.database);
    let (mut report, chosen) = verify_chain(&doc, &asset, "sql")?;
    let Some(chosen) = chosen else {
        return Ok(report);
    };
    let Some(staging) = setting(&req.options, "staging") else {
        report.findings.push(Finding {
            rule: "sql.verifyonly-skipped".into(),
            severity: Severity::Info,
            asset: Some(asset),
            title: "the backups were not read by an instance".into(),
            detail: "verify checked the chain and the point's items; RESTORE VERIFYONLY needs the backups staged where an instance reads them".into(),
            recommendation: "verify with staging=<folder as the instance sees it> (and path-map=, server=) to have SQL Server read every backup".into(),
        });
        return Ok(report);
    };
    if !report.ok {
        return Ok(report);
    }
    // as a restore's target (only reading: no live database to keep from)
    let server = match setting(&req.options, "server").filter(|s| !s.trim().is_empty()) {
        Some(s) => s.to_ascii_lowercase(),
        None => match default_target(&doc, &replicas(&req.options, &doc.server)?) {
            Ok(Some(c)) => {
                host::info(&format!("the backups are read on {}", c.why));
                c.server
            }
            Ok(None) | Err(_) => doc.server.to_ascii_lowercase(),
        },
    };
    let map = setting_or(&req.options, "path-map", "");
    let steps = doc.steps(&chosen);
    for (n, k) in steps.iter().enumerate() {
        host::progress(n as u64, steps.len() as u64, &format!("reading {}", k.item));
        let device = on_instance(staging, &k.item["backups/".len()..]);
        engine::restore_item(&k.item, &map_path(map, &device)?, false)?;
        let read = tsql::run(
            &server,
            "RESTORE VERIFYONLY FROM DISK = @P1 WITH CHECKSUM",
            &[&device],
            BULK_SECS,
        );
        if let Err(e) = read {
            report.ok = false;
            report.findings.push(chain_finding(
                &asset,
                "sql.verifyonly-failed",
                format!("{server} could not read {} back", k.item),
                format!(
                    "RESTORE VERIFYONLY FROM DISK = {}: {}",
                    lit(&device),
                    e.message
                ),
            ));
        }
        if let Some(w) = unstage(&server, &device) {
            host::log(host::Level::Warn, &w);
        }
    }
    host::progress(steps.len() as u64, steps.len() as u64, "done");
    Ok(report)
}
