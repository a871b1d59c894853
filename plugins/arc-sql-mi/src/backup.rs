//! `backup` of one database (`<namespace>/<instance>/<database>`):
//!
//! 1. `kubectl exec … -- mkdir -p /var/opt/mssql/backups/rehydra` in the instance's pod;
//! 2. `BACKUP DATABASE|LOG @P1 TO DISK = @P2 WITH COPY_ONLY, CHECKSUM, INIT, FORMAT,
//!    NAME = @P3` over TDS (values as parameters); COPY_ONLY always, so the chain of the
//!    instance's own backups is untouched;
//! 3. the backup as msdb recorded it (LSNs, kind, copy-only);
//! 4. `kubectl cp <ns>/<pod>:<file> <staging>/<file> -c arc-sqlmi` on the command target;
//! 5. the engine stores the staged file (read through `path-map`), which must be as long
//!    as the file in the pod (`kubectl exec … -- stat`), and `chain.json` records it
//!    (sql-common's model) after the previous point's backups, carried forward;
//! 6. the file in the pod (`kubectl exec … -- rm -f`) and the staged copy (`rm -f`) are
//!    removed, also when a step after 2 failed.
//!
//! `level=built-in` copies the instance's own backups instead ([`crate::own_backups`]).
//!
//! A log backup needs a full of ours before it, a database not in SIMPLE recovery, and no
//! log backup of the instance's own since our last backup: the instance's log backups
//! (every few minutes while its built-in backups are on) truncate the log, so a copy-only
//! log taken after one would not continue our chain. That is refused before anything runs.

use rehydra_plugin_sdk::windows::map_path;
use rehydra_plugin_sdk::{engine, host, prelude::*};
use sql_common::chain::{self, Kind, Lsn};
use sql_common::model::{
    BACKUPS_MAX, CHAIN_ITEM, ChainDoc, Kept, backup_file_name as file_name, kind_name, now_ms,
    previous_chain,
};
use sql_common::stored;
use sql_common::tsql::{self, BULK_SECS, show_time};

use crate::names::{self, DbRef, server_of, shown};
use crate::own_backups;
use rehydra_plugin_sdk::kube::kubectl::{self, Pod, abs_path};

/// The folder in the pod the plugin's backups go to (on the instance's backups volume).
pub const POD_FOLDER: &str = "/var/opt/mssql/backups/rehydra";
/// The SQL Server container of an Arc SQL MI pod.
pub const CONTAINER: &str = "arc-sqlmi";

fn refuse(m: String) -> Error {
    Error::new(ErrorCode::InvalidInput, m)
}

fn level(s: &str) -> Result<Kind> {
    match s {
        "full" => Ok(Kind::Full),
        "log" => Ok(Kind::Log),
        other => Err(refuse(format!(
            "level `{}` is not full, log or built-in (a differential of Rehydra's would build on the instance's own full backups: level=built-in copies those, with their differentials and logs)",
            shown(other, 40)
        ))),
    }
}

/// What stands in the way of a log backup after `prev`, given msdb's history.
fn check_log(
    kind: Kind,
    db: &tsql::Db,
    prev: Option<&ChainDoc>,
    history: &[tsql::HistoryRow],
) -> Result<()> {
    if kind == Kind::Full {
        return Ok(());
    }
    if db.simple() {
        return Err(refuse(format!(
            "database `{}` uses the SIMPLE recovery model, which keeps no log to back up; take full backups (level=full)",
            shown(&db.name, 128)
        )));
    }
    let Some(last) = prev.and_then(|p| p.backups.last()) else {
        return Err(refuse(format!(
            "there is no full backup of `{}` in this repository for a log backup to continue; take a full backup first (level=full)",
            shown(&db.name, 128)
        )));
    };
    let ours: Lsn = last
        .last_lsn
        .parse()
        .map_err(|_| refuse("chain.json: a malformed last LSN".into()))?;
    if let Some(h) = history
        .iter()
        .find(|h| h.backup.kind == Kind::Log && !h.backup.copy_only && h.backup.last_lsn > ours)
    {
        return Err(refuse(format!(
            "the instance backed up the log of `{}` itself at {} (to {}) after Rehydra's last backup, which truncated it: a log backup now would leave a gap in the repository's chain. Take a full backup (level=full); log backups continue a chain only while the instance's built-in backups are off (retention 0). While they are on, level=built-in copies the instance's own log backups off the cluster",
            shown(&db.name, 128),
            show_time(h.backup.finish),
            shown(&h.device, 200)
        )));
    }
    Ok(())
}

/// The last LSN of the chain a point keeps.
fn doc_last_lsn(prev: Option<&ChainDoc>) -> Result<Option<Lsn>> {
    prev.and_then(|p| p.backups.last())
        .map(|k| {
            k.last_lsn
                .parse()
                .map_err(|_| refuse("chain.json: a malformed last LSN".into()))
        })
        .transpose()
}

/// Where a backup's files go: the database, its endpoint, its pod and the staging folder,
/// checked.
pub(crate) struct Place {
    pub db: DbRef,
    pub server: String,
    pub pod: Pod,
    pub staging: String,
    pub map: String,
}

/// The settings of a backup, checked.
struct Plan {
    place: Place,
    kind: Kind,
}

/// The checked settings every level of backup uses.
///
/// # Errors
/// `invalid-input` naming the setting to fix.
pub(crate) fn place(req: &BackupRequest) -> Result<Place> {
    let o = &req.options;
    let db = names::parse_db(&req.asset.id)?;
    let servers = names::servers(setting_or(o, "servers", ""))?;
    let server = server_of(&servers, &db.instance_key())
        .ok_or_else(|| {
            refuse(format!(
                "no SQL endpoint is configured for instance {}: add servers={}=<endpoint> (configured with rehydra plugins sql-server add <the endpoint discover shows>)",
                db.instance_key(),
                db.instance_key()
            ))
        })?
        .to_string();
    let staging = abs_path(
        "staging",
        require(o, "staging", "an absolute folder on the command target where kubectl cp puts the backup, e.g. /var/lib/rehydra/stage")?,
    )?
    .trim_end_matches('/')
    .to_string();
    let default_pod = format!("{}-0", db.instance);
    let pod = Pod::new(
        setting_or(o, "command-target", "local"),
        setting(o, "kube-context").filter(|c| !c.is_empty()),
        &db.namespace,
        setting_or(o, "pod", &default_pod),
        setting_or(o, "container", CONTAINER),
    )?;
    Ok(Place {
        db,
        server,
        pod,
        staging,
        map: setting_or(o, "path-map", "").to_string(),
    })
}

/// Back up the database of `req.asset`.
///
/// # Errors
/// Refused settings or chain, and any step's failure (the files are removed first).
pub fn backup(req: &BackupRequest) -> Result<BackupReport> {
    // (the level is checked before the other settings, as it always was)
    let kind = match setting_or(&req.options, "level", "full") {
        "built-in" => None,
        other => Some(level(other)?),
    };
    let place = place(req)?;
    let Some(kind) = kind else {
        return own_backups::copy(&place);
    };
    let plan = Plan { place, kind };
    let p = &plan.place;
    let name = p.db.database.as_str();
    let db = database_of(p)?;
    if !db.state.eq_ignore_ascii_case("ONLINE") {
        return Err(Error::new(
            ErrorCode::Unavailable,
            format!(
                "database `{}` is {}, not ONLINE; it cannot be backed up now",
                shown(name, 128),
                shown(&db.state, 40)
            ),
        ));
    }
    let prev = previous_chain(kind, |doc| {
        doc.server == p.db.instance_key() && doc.database == p.db.database
    })?;
    if kind == Kind::Log
        && prev
            .as_ref()
            .is_some_and(|c| c.backups.len() >= BACKUPS_MAX)
    {
        return Err(refuse(format!(
            "the chain of `{}` holds {BACKUPS_MAX} backups, as many as a restore point keeps; take a full backup (level=full)",
            shown(name, 128)
        )));
    }
    let history = tsql::history(&p.server, name)?;
    check_log(kind, &db, prev.as_ref(), &history)?;

    let file = file_name(name, kind, now_ms());
    let device = format!("{POD_FOLDER}/{file}");
    let staged = format!("{}/{file}", p.staging);
    let host_path = map_path(&p.map, &staged)?;
    let total = 5;
    host::progress(
        0,
        total,
        &format!(
            "{} backup of {} on {}",
            kind_name(kind),
            shown(name, 128),
            p.server
        ),
    );
    p.pod.run(
        &p.pod.exec_args(&["mkdir", "-p", POD_FOLDER]),
        "making the backup folder in the pod",
    )?;
    let stmt = format!(
        "BACKUP {} @P1 TO DISK = @P2 WITH COPY_ONLY, CHECKSUM, INIT, FORMAT, NAME = @P3",
        if kind == Kind::Log { "LOG" } else { "DATABASE" }
    );
    let set_name = tsql::set_name(&p.db.id());
    let mut warnings = Vec::new();
    let ran = tsql::run(&p.server, &stmt, &[name, &device, &set_name], BULK_SECS).and_then(|_| {
        let paths = Paths {
            file: &file,
            device: &device,
            staged: &staged,
            host_path: &host_path,
        };
        keep(&plan, &db, prev, &paths, &mut warnings)
    });

    // the pod's copy and the staged one go, whatever happened after BACKUP
    warnings.extend(remove_in_pod(&p.pod, &device));
    warnings.extend(kubectl::unstage(&p.pod.target, &staged));
    // what was left behind is said even when the backup failed
    log_warnings(&warnings);
    let chain_len = ran?;
    host::progress(total, total, "done");
    host::info(&format!(
        "{} backup of {}: the chain now holds {chain_len} backup(s)",
        kind_name(kind),
        shown(name, 128)
    ));
    Ok(BackupReport {
        consistency: "application".into(),
        warnings,
    })
}

/// Each of a job's warnings in its log.
pub(crate) fn log_warnings(warnings: &[String]) {
    for w in warnings {
        host::log(host::Level::Warn, w);
    }
}

/// The database `p` names, as its instance lists it.
///
/// # Errors
/// `not-found` when the instance does not list it; the query's failure.
pub(crate) fn database_of(p: &Place) -> Result<tsql::Db> {
    let name = p.db.database.as_str();
    tsql::database(&p.server, name)?.ok_or_else(|| {
        Error::new(
            ErrorCode::NotFound,
            format!(
                "database `{}` is not on {} (discover lists the databases)",
                shown(name, 128),
                p.server
            ),
        )
    })
}

/// Remove `device` in the pod; a warning naming it when that fails.
pub(crate) fn remove_in_pod(pod: &Pod, device: &str) -> Option<String> {
    pod.run(
        &pod.exec_args(&["rm", "-f", device]),
        "removing the backup file in the pod",
    )
    .err()
    .map(|e| {
        format!(
            "{device} in pod {}/{} could not be removed ({}); remove it by hand",
            pod.namespace, pod.pod, e.message
        )
    })
}

/// `kubectl cp` `device` out of the pod to `staged` (on the command target; `host_path` on
/// this machine), and store it as `item`, as long as the pod's file (a regular file, not
/// empty): a copy that holds
/// fewer or more bytes than the file in the pod (a `kubectl cp` cut short) is refused
/// before the chain names it. The staged copy is for the caller to remove.
///
/// # Errors
/// kubectl's failure (`not-found`: no such file in the pod), the engine's, or sizes that
/// differ.
pub(crate) fn copy_out(
    pod: &Pod,
    device: &str,
    (staged, host_path): (&str, &str),
    item: &str,
    what: &str,
) -> Result<()> {
    let size = pod.file_size(device)?;
    if size == 0 {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "{what}: {device} in pod {}/{} is empty, not a backup",
                pod.namespace, pod.pod
            ),
        ));
    }
    pod.run(&pod.cp_args(device, staged)?, what)?;
    let stored = engine::ingest_file(item, host_path)?;
    if stored.size != size {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "{what}: the copy of {device} holds {} bytes but the file in pod {}/{} holds {size}: kubectl cp was cut short; nothing of this backup is kept, run it again",
                stored.size, pod.namespace, pod.pod
            ),
        ));
    }
    host::info(&format!("{item}: {}", stored::summary(&stored)));
    Ok(())
}

/// Where one backup file is: its name, in the pod, on the command target, on this machine.
#[derive(Clone, Copy)]
struct Paths<'a> {
    file: &'a str,
    device: &'a str,
    staged: &'a str,
    host_path: &'a str,
}

/// Steps 3 to 5: read the backup back from msdb, copy it out, store it and the chain.
fn keep(
    p: &Plan,
    db: &tsql::Db,
    prev: Option<ChainDoc>,
    paths: &Paths<'_>,
    warnings: &mut Vec<String>,
) -> Result<usize> {
    let Paths {
        file,
        device,
        staged,
        host_path,
    } = *paths;
    let (kind, p) = (p.kind, &p.place);
    let name = p.db.database.as_str();
    let written = tsql::written_to(&p.server, name, device)?.ok_or_else(|| {
        Error::new(
            ErrorCode::Failed,
            format!(
                "the instance reported the backup done but msdb has no backup of `{}` to {device}",
                shown(name, 128)
            ),
        )
    })?;
    if written.backup.kind != kind || !written.backup.copy_only {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "msdb records the backup to {device} as a {} backup{}, not a copy-only {} backup",
                kind_name(written.backup.kind),
                if written.backup.copy_only {
                    " (copy-only)"
                } else {
                    ""
                },
                kind_name(kind)
            ),
        ));
    }
    // the instance's own log backup may have run between the check and ours: a log that
    // does not start where our chain ends is a gap, refused before anything is stored
    if kind == Kind::Log
        && let Some(last) = doc_last_lsn(prev.as_ref())?
        && written.backup.first_lsn > last
    {
        return Err(refuse(format!(
            "the log backup of `{}` starts at LSN {} but the repository's chain ends at {last}: the instance backed up its log meanwhile; take a full backup (level=full)",
            shown(name, 128),
            written.backup.first_lsn
        )));
    }
    host::progress(
        2,
        5,
        &format!(
            "copying {file} out of pod {}/{}",
            p.pod.namespace, p.pod.pod
        ),
    );
    let item = format!("backups/{file}");
    copy_out(
        &p.pod,
        device,
        (staged, host_path),
        &item,
        "copying the backup out of the pod",
    )?;

    let mut doc = ChainDoc::continued(
        kind,
        prev,
        p.db.instance_key(),
        name,
        &db.recovery,
        || tsql::files(&p.server, name),
        (4, 5),
    )?;
    doc.backups.push(Kept::new(&item, &written.backup, device));
    let ours = doc.history()?;
    for problem in chain::problems(&ours) {
        warnings.push(problem.describe());
    }
    doc.check_texts()?;
    let body = serde_json::to_vec_pretty(&doc)
        .map_err(|e| Error::new(ErrorCode::Failed, e.to_string()))?;
    engine::put_document(CHAIN_ITEM, &body)?;
    Ok(doc.backups.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_safe_letters() {
        assert_eq!(
            file_name("we]ird; rm -rf /", Kind::Log, 0),
            "we_ird__rm_-rf___log_19700101000000000.trn"
        );
        assert_eq!(
            file_name("sales", Kind::Full, 1_000),
            "sales_full_19700101000001000.bak"
        );
        assert!(level("diff").is_err() && level("").is_err() && level("built-in").is_err());
    }
}
