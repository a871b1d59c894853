//! `backup` with `level=built-in`: the instance's own backups copied off the cluster.
//!
//! While an Arc SQL MI's built-in backups run, its log backups (every few minutes)
//! truncate the log, so no copy-only log of ours can continue a chain: the log chain that
//! reaches every moment is the instance's own. This level copies it. msdb names every
//! backup the instance took that is not copy-only; from the newest full whose file lies on
//! the instance's backup volume (`/var/opt/mssql/backups/`) on, each one the previous
//! restore point does not keep yet is:
//!
//! 1. `kubectl cp <ns>/<pod>:<its file> <staging>/<name> -c arc-sqlmi` on the command
//!    target (the file in the pod is the instance's and is left alone);
//! 2. stored by the engine (read through `path-map`), as long as the file in the pod (a
//!    `kubectl cp` cut short is refused), and the staged copy removed;
//! 3. kept in `chain.json` with the LSNs msdb recorded, after the backups of the previous
//!    point's chain (carried forward) when that chain starts at the same full.
//!
//! A newer full starts a new chain. Backups msdb names that cannot be copied (written
//! elsewhere than the backup volume, striped over several files, a differential on another
//! full) are left out with a warning, and the chain rules then report the gap they leave.
//! A restore from such a point is the same as from Rehydra's own copies
//! ([`crate::restore`]): full, differential, logs, to a moment.

use std::collections::HashSet;

use rehydra_plugin_sdk::kube::kubectl::abs_path;
use rehydra_plugin_sdk::windows::map_path;
use rehydra_plugin_sdk::{engine, host, kube::kubectl, prelude::*};
use sql_common::chain::{self, Kind};
use sql_common::model::{
    BACKUPS_MAX, CHAIN_ITEM, ChainDoc, Kept, backup_file_name, kind_name, previous_chain,
};
use sql_common::tsql::{self, HistoryRow, show_time};

use crate::backup::{POD_FOLDER, Place, copy_out};
use crate::instance::BUILT_IN_FOLDER;
use crate::names::shown;

/// Whether `device` is a file of the instance's own backups: on its backup volume, not in
/// the folder Rehydra's backups pass through, and a path kubectl may be given.
fn on_volume(device: &str) -> bool {
    device
        .strip_prefix(BUILT_IN_FOLDER)
        .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
        && !device.starts_with(&format!("{POD_FOLDER}/"))
        && abs_path("the file in the pod", device).is_ok()
}

/// The item a copied backup is kept as: the database's safe letters, the level, when it
/// finished and the start of its backup set's id (two backups may finish in the same
/// millisecond), never one the chain already names.
fn item_name(db: &str, b: &chain::Backup, taken: &HashSet<String>) -> String {
    let file = backup_file_name(db, b.kind, b.finish);
    let (stem, ext) = file.rsplit_once('.').unwrap_or((&file, "bak"));
    let tag: String =
        b.id.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
    let mut name = format!("backups/{stem}_{tag}.{ext}");
    let mut n = 1;
    while taken.contains(&name) {
        n += 1;
        name = format!("backups/{stem}_{tag}_{n}.{ext}");
    }
    name
}

/// What msdb shows that is not copied, for the job's warnings.
fn left_out(db: &str, h: &HistoryRow, why: &str) -> String {
    format!(
        "msdb shows a {} backup of `{}` that finished {} by {} to {}: not copied, {why}",
        kind_name(h.backup.kind),
        shown(db, 128),
        show_time(h.backup.finish),
        shown(&h.user, 80),
        shown(&h.device, 200)
    )
}

/// The backups to copy, given msdb's rows from the instance's newest own full on (oldest
/// first) and the backup sets the chain continued already keeps; warnings for what is
/// left out.
fn to_copy<'a>(
    db: &str,
    rows: &'a [HistoryRow],
    kept: &HashSet<String>,
) -> (Vec<&'a HistoryRow>, Vec<String>) {
    let mut sets: HashSet<&str> = HashSet::new();
    let striped: HashSet<&str> = rows
        .iter()
        .filter(|h| !sets.insert(h.backup.id.as_str()))
        .map(|h| h.backup.id.as_str())
        .collect();
    let base = rows.first().map(|f| f.backup.checkpoint_lsn);
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut said = HashSet::new();
    for h in rows {
        if kept.contains(&h.backup.id) {
            continue;
        }
        let why = if striped.contains(h.backup.id.as_str()) {
            Some("it is striped over several files")
        } else if !on_volume(&h.device) {
            Some("it is not on the instance's backup volume")
        } else if h.backup.kind == Kind::Diff && Some(h.backup.database_backup_lsn) != base {
            Some("it is based on another full backup than the copies' (one taken elsewhere)")
        } else {
            None
        };
        match why {
            // a striped set is said once
            Some(w) => {
                if said.insert(h.backup.id.as_str()) {
                    warnings.push(left_out(db, h, w));
                }
            }
            None => out.push(h),
        }
    }
    (out, warnings)
}

/// Copy the instance's own backups of the database `p` names that the repository does not
/// hold yet.
///
/// # Errors
/// The database or its own full backup is not found, more backups than a chain keeps,
/// and any copy's failure (the staged copy is removed first; nothing is kept).
pub fn copy(p: &Place) -> Result<BackupReport> {
    let name = p.db.database.as_str();
    let db = tsql::database(&p.server, name)?.ok_or_else(|| {
        Error::new(
            ErrorCode::NotFound,
            format!(
                "database `{}` is not on {} (discover lists the databases)",
                shown(name, 128),
                p.server
            ),
        )
    })?;
    let rows = tsql::since_own_full(&p.server, name, &format!("{BUILT_IN_FOLDER}/"), BACKUPS_MAX)?;
    let Some(full) = rows
        .first()
        .filter(|f| f.backup.kind == Kind::Full && on_volume(&f.device))
    else {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!(
                "msdb shows no full backup of `{}` that the instance took itself in {BUILT_IN_FOLDER}: its built-in backups are off (retention 0) or have not run yet. Take Rehydra's own backups instead (level=full)",
                shown(name, 128)
            ),
        ));
    };
    if rows.len() > BACKUPS_MAX {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "msdb shows more than {BACKUPS_MAX} backups of `{}` since its last full backup, more than a restore point keeps; copy them more often than the instance takes a full backup",
                shown(name, 128)
            ),
        ));
    }
    // a chain of the same full goes on; anything else (none, Rehydra's own copy-only
    // backups, an older full) is left to the earlier points
    let prev = previous_chain(Kind::Full, |doc| {
        doc.server == p.db.instance_key() && doc.database == p.db.database
    })?
    .filter(|c| c.backups.first().is_some_and(|k| k.set == full.backup.id));
    let kept: HashSet<String> = prev
        .iter()
        .flat_map(|c| c.backups.iter().map(|k| k.set.clone()))
        .collect();
    let (todo, mut warnings) = to_copy(name, &rows, &kept);
    if !kept.contains(&full.backup.id) && todo.first().is_none_or(|h| h.backup.id != full.backup.id)
    {
        return Err(Error::new(
            ErrorCode::Unsupported,
            format!(
                "the instance's newest full backup of `{}` cannot be copied: {}",
                shown(name, 128),
                warnings.first().map_or("", String::as_str)
            ),
        ));
    }
    let total = todo.len() as u64 + 2;
    host::progress(
        0,
        total,
        &format!(
            "copying {} of the instance's own backups of {} on {}",
            todo.len(),
            shown(name, 128),
            p.server
        ),
    );
    let mut doc = ChainDoc::continued(
        if prev.is_some() {
            Kind::Log
        } else {
            Kind::Full
        },
        prev,
        p.db.instance_key(),
        name,
        &db.recovery,
        || tsql::files(&p.server, name),
        (0, total),
    )?;
    let mut taken: HashSet<String> = doc.backups.iter().map(|k| k.item.clone()).collect();
    for (n, h) in todo.iter().enumerate() {
        let item = item_name(name, &h.backup, &taken);
        let file = &item["backups/".len()..];
        host::progress(
            n as u64 + 1,
            total,
            &format!(
                "{} backup finished {}: copying it out of pod {}/{}",
                kind_name(h.backup.kind),
                show_time(h.backup.finish),
                p.pod.namespace,
                p.pod.pod
            ),
        );
        let staged = format!("{}/{file}", p.staging);
        let host_path = map_path(&p.map, &staged)?;
        let stored = copy_out(
            &p.pod,
            &h.device,
            (&staged, &host_path),
            &item,
            "copying the instance's backup out of the pod",
        );
        warnings.extend(kubectl::unstage(&p.pod.target, &staged));
        if let Err(e) = stored {
            // what was left behind is said even when the backup failed
            for w in &warnings {
                host::log(host::Level::Warn, w);
            }
            return Err(e);
        }
        doc.backups.push(Kept::new(&item, &h.backup, &h.device));
        taken.insert(item);
    }
    for problem in chain::problems(&doc.history()?) {
        warnings.push(problem.describe());
    }
    doc.check_texts()?;
    let body = serde_json::to_vec_pretty(&doc)
        .map_err(|e| Error::new(ErrorCode::Failed, e.to_string()))?;
    engine::put_document(CHAIN_ITEM, &body)?;
    for w in &warnings {
        host::log(host::Level::Warn, w);
    }
    host::progress(total, total, "done");
    host::info(&format!(
        "copied {} of the instance's own backups of {}; the chain now holds {} backup(s) from its full of {}",
        todo.len(),
        shown(name, 128),
        doc.backups.len(),
        show_time(full.backup.finish)
    ));
    Ok(BackupReport {
        consistency: "application".into(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_on_the_backup_volume_are_copied() {
        for ok in [
            "/var/opt/mssql/backups/current/4faf3dab/log-20220410223622-b8a3.bak",
            "/var/opt/mssql/backups/archived/x/full.bak",
        ] {
            assert!(on_volume(ok), "{ok}");
        }
        for bad in [
            "/var/opt/mssql/backups",
            "/var/opt/mssql/backups/",
            "/var/opt/mssql/backupsx/a.bak",
            "/var/opt/mssql/backups/rehydra/sales_full.bak",
            "/var/opt/mssql/backups/../../etc/shadow",
            "/var/opt/mssql/backups/a\n.bak",
            "/var/opt/mssql/backups/c:a.bak",
            "https://acct.blob.core.windows.net/c/full.bak",
            "/tmp/full.bak",
        ] {
            assert!(!on_volume(bad), "{bad:?}");
        }
    }

    #[test]
    fn item_names_are_safe_and_never_repeat() {
        let b = chain::Backup {
            id: "A258A0E2-0f34;rm -rf /".into(),
            kind: Kind::Log,
            first_lsn: 1,
            last_lsn: 2,
            checkpoint_lsn: 1,
            database_backup_lsn: 0,
            differential_base_lsn: None,
            fork: None,
            first_fork: None,
            start: 0,
            finish: 1_000,
            copy_only: false,
            ours: false,
        };
        let mut taken = HashSet::new();
        let first = item_name("sa/les", &b, &taken);
        assert_eq!(first, "backups/sa_les_log_19700101000001000_A258A0E2.trn");
        taken.insert(first);
        assert_eq!(
            item_name("sa/les", &b, &taken),
            "backups/sa_les_log_19700101000001000_A258A0E2_2.trn"
        );
    }
}
