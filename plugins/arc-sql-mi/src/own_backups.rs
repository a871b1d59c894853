//! `backup` with `level=built-in`: the instance's own backups copied off the cluster.
//!
//! While an Arc SQL MI's built-in backups run, its log backups (every few minutes)
//! truncate the log, so no copy-only log of ours can continue a chain: the log chain that
//! reaches every moment is the instance's own. This level copies it. msdb lists every
//! backup the instance took that is not copy-only (the newest [`BACKUPS_MAX`]); the
//! newest full whose file lies on the instance's backup volume (`/var/opt/mssql/backups/`)
//! starts the chain. Each backup the previous restore point does not keep yet is:
//!
//! 1. `kubectl cp <ns>/<pod>:<its file> <staging>/<name> -c arc-sqlmi` on the command
//!    target (the file in the pod is the instance's and is left alone);
//! 2. stored by the engine (read through `path-map`), as long as the file in the pod (a
//!    regular file; a `kubectl cp` cut short is refused), and the staged copy removed;
//! 3. kept in `chain.json` with the LSNs msdb recorded, after the previous point's
//!    backups (carried forward).
//!
//! The previous point's chain goes on when msdb still shows its backups as it keeps them:
//! from the newest full on when it holds that full, or whole when a newer full came since,
//! so that the logs up to that full are kept too (the next point then starts at it).
//! Otherwise a new chain starts. Backups that cannot be copied (written elsewhere than the
//! backup volume, striped over several files, not the first set of their file, gone from
//! the pod, a differential on another full, names a chain cannot hold) are left out with a
//! warning, and the chain rules then report the gap they leave. A restore from such a point
//! is the same as from Rehydra's own copies ([`crate::restore`]).

use std::collections::{HashMap, HashSet};

use rehydra_plugin_sdk::kube::kubectl::abs_path;
use rehydra_plugin_sdk::windows::map_path;
use rehydra_plugin_sdk::{engine, host, kube::kubectl, prelude::*};
use sql_common::chain::{self, Kind};
use sql_common::model::{
    BACKUPS_MAX, CHAIN_ITEM, ChainDoc, Kept, backup_file_name, kind_name, previous_chain,
};
use sql_common::tsql::{self, Listed, show_time};

use crate::backup::{POD_FOLDER, Place, copy_out, database_of, log_warnings};
use crate::instance::BUILT_IN_FOLDER;
use crate::names::shown;

/// Whether `device` is a file of the instance's own backups: on its backup volume, not in
/// the folder Rehydra's backups pass through, and a plain path kubectl may be given (no
/// `.` or empty component that could hide which folder it is in).
fn on_volume(device: &str) -> bool {
    let Some(rest) = device.strip_prefix(BUILT_IN_FOLDER) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').skip(1).collect();
    rest.starts_with('/')
        && !parts.is_empty()
        && parts.iter().all(|p| !p.is_empty() && *p != ".")
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
fn left_out(db: &str, l: &Listed, why: &str) -> String {
    let h = &l.row;
    format!(
        "msdb shows a {} backup of `{}` that finished {} by {} to {}: not copied, {why}",
        kind_name(h.backup.kind),
        shown(db, 128),
        show_time(h.backup.finish),
        shown(&h.user, 80),
        shown(&h.device, 200)
    )
}

/// Why a backup msdb lists cannot be copied, if it cannot (`striped`: the backup sets
/// listed more than once, one row per file).
fn unusable(l: &Listed, striped: &HashSet<&str>) -> Option<&'static str> {
    let h = &l.row;
    if striped.contains(h.backup.id.as_str()) {
        Some("it is striped over several files")
    } else if !on_volume(&h.device) {
        Some("it is not on the instance's backup volume")
    } else if l.position != Some(1) {
        Some("it is not the first backup set of its file")
    } else if !Kept::new("backups/x", &h.backup, &h.device).texts_ok() {
        Some("msdb names it with control characters or over 1 KiB")
    } else {
        None
    }
}

/// Where the new chain starts in msdb's `rows` (oldest first), and the previous chain's
/// backups it keeps, given the newest usable full at `full`.
struct Start {
    /// Index into the rows of the first backup to look at.
    from: usize,
    /// The previous point's backups kept, in order.
    kept: Vec<Kept>,
}

/// Whether msdb's `row` is the backup `k` the previous point keeps, field for field (what a
/// repository written elsewhere says is checked against the instance).
fn same(k: &Kept, l: &Listed) -> bool {
    *k == Kept::new(&k.item, &l.row.backup, &l.row.device)
}

/// Where to start: after the previous chain when msdb shows each of its backups as it
/// keeps them (from the newest full on when it holds that full; whole when a newer full
/// came since, so the logs up to it are kept too), else at the newest full. A warning says
/// why a previous chain was set aside.
fn start(
    rows: &[Listed],
    full: usize,
    prev: Option<ChainDoc>,
    warnings: &mut Vec<String>,
) -> Start {
    let at = rows[full].row.backup.finish;
    // the backups finishing with the full or after it (a log may finish in its second)
    let from_full = rows
        .iter()
        .position(|l| l.row.backup.finish >= at)
        .unwrap_or(full);
    let Some(prev) = prev.filter(|p| !p.backups.is_empty()) else {
        return fresh_start(from_full);
    };
    let mut set_aside = |why: String| {
        warnings.push(format!(
            "{why}: a new chain starts at the instance's full of {}, and what it took before that since its last copy is not copied",
            show_time(at)
        ));
        fresh_start(from_full)
    };
    // a chain of Rehydra's own copy-only backups (level=full or log)
    if prev.backups.iter().any(|k| k.copy_only) {
        return set_aside(
            "the previous restore point holds Rehydra's own copy-only backups, not the instance's"
                .into(),
        );
    }
    let index: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, l)| (l.row.backup.id.as_str(), i))
        .collect();
    let full_id = rows[full].row.backup.id.as_str();
    let holds_full = prev.backups.iter().any(|k| k.set == full_id);
    // what msdb lists must be as kept, and, from the oldest backup msdb lists on (from the
    // newest full on when the chain holds it), every backup kept must be listed
    let oldest = rows.first().map_or(i64::MAX, |l| l.row.backup.finish);
    let must_list = |k: &Kept| {
        let finish = k.backup().map_or(i64::MAX, |b| b.finish);
        if holds_full {
            finish >= at
        } else {
            finish > oldest
        }
    };
    if let Some(k) = prev
        .backups
        .iter()
        .find(|k| match index.get(k.set.as_str()) {
            Some(&i) => !same(k, &rows[i]),
            None => must_list(k),
        })
    {
        return set_aside(format!(
            "the previous restore point keeps {} otherwise than msdb lists it (written elsewhere, or msdb changed)",
            shown(&k.item, 120)
        ));
    }
    if holds_full {
        // from the full on, with what finished in its second (as `from_full`)
        let i = prev
            .backups
            .iter()
            .position(|k| k.backup().is_ok_and(|b| b.finish >= at))
            .unwrap_or(0);
        return Start {
            from: from_full,
            kept: prev.backups[i..].to_vec(),
        };
    }
    // a newer full since: the previous chain whole, and everything after its last backup
    match prev
        .backups
        .last()
        .and_then(|k| index.get(k.set.as_str()).copied())
    {
        Some(last) if last < full => {
            if prev.backups.len() + rows.len() - (last + 1) > BACKUPS_MAX {
                return set_aside(format!(
                    "the previous restore point's chain and what came since would hold more than {BACKUPS_MAX} backups"
                ));
            }
            Start {
                from: last + 1,
                kept: prev.backups,
            }
        }
        _ => set_aside("msdb no longer lists the previous restore point's last backup".into()),
    }
}

fn fresh_start(from: usize) -> Start {
    Start {
        from,
        kept: Vec::new(),
    }
}

/// Copy the instance's own backups of the database `p` names that the repository does not
/// hold yet.
///
/// # Errors
/// The database or its own full backup is not found, more backups than a chain keeps,
/// and any copy's failure but a file gone from the pod (the staged copy is removed first;
/// nothing is kept).
pub fn copy(p: &Place) -> Result<BackupReport> {
    let name = p.db.database.as_str();
    let db = database_of(p)?;
    let rows = tsql::not_copy_only(&p.server, name, BACKUPS_MAX)?;
    let mut sets: HashSet<&str> = HashSet::new();
    let striped: HashSet<&str> = rows
        .iter()
        .filter(|l| !sets.insert(l.row.backup.id.as_str()))
        .map(|l| l.row.backup.id.as_str())
        .collect();
    let Some(full) = rows
        .iter()
        .rposition(|l| l.row.backup.kind == Kind::Full && unusable(l, &striped).is_none())
    else {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!(
                "msdb shows no full backup of `{}` that the instance took itself in {BUILT_IN_FOLDER} among the newest {} it lists: its built-in backups are off (retention 0) or have not run yet. Take Rehydra's own backups instead (level=full)",
                shown(name, 128),
                BACKUPS_MAX + 1
            ),
        ));
    };
    let mut warnings = Vec::new();
    // a chain of the instance's own backups goes on; anything else (none, Rehydra's own
    // copy-only backups) is left to the earlier points
    let prev = previous_chain(Kind::Full, |doc| {
        doc.server == p.db.instance_key() && doc.database == p.db.database
    })?;
    let Start { from, kept } = start(&rows, full, prev, &mut warnings);
    // the fulls a differential may be based on: the chain's (their checkpoint LSNs)
    let mut bases: HashSet<chain::Lsn> = kept
        .iter()
        .filter_map(|k| k.backup().ok())
        .filter(|b| b.kind == Kind::Full)
        .map(|b| b.checkpoint_lsn)
        .collect();
    let mut said: HashSet<&str> = HashSet::new();
    let mut todo = Vec::new();
    let kept_sets: HashSet<&str> = kept.iter().map(|k| k.set.as_str()).collect();
    for l in &rows[from..] {
        let (b, id) = (&l.row.backup, l.row.backup.id.as_str());
        if kept_sets.contains(id) {
            continue;
        }
        let why = unusable(l, &striped).or_else(|| {
            (b.kind == Kind::Diff && !bases.contains(&b.database_backup_lsn)).then_some(
                "it is based on a full backup the copies do not hold (one taken elsewhere)",
            )
        });
        match why {
            // a striped set is said once
            Some(w) => {
                if said.insert(id) {
                    warnings.push(left_out(name, l, w));
                }
            }
            None => {
                if b.kind == Kind::Full {
                    bases.insert(b.checkpoint_lsn);
                }
                todo.push(l);
            }
        }
    }
    if kept.len() + todo.len() > BACKUPS_MAX {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "the chain of `{}` would hold more than {BACKUPS_MAX} backups, more than a restore point keeps: the instance has taken no full backup in that many; check its backup schedule, or take Rehydra's own backups instead (level=full)",
                shown(name, 128)
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
    // the backups kept go on (none for a new chain), with the database's files as they
    // are now
    let mut doc = ChainDoc {
        format: 1,
        server: p.db.instance_key(),
        database: name.to_string(),
        recovery: db.recovery.clone(),
        files: tsql::files(&p.server, name)?,
        backups: kept,
        group: None,
    };
    doc.carry_forward((0, total))?;
    let full_id = rows[full].row.backup.id.as_str();
    let mut copied = 0;
    let mut taken: HashSet<String> = doc.backups.iter().map(|k| k.item.clone()).collect();
    for (n, l) in todo.iter().enumerate() {
        let h = &l.row;
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
        match stored {
            Ok(()) => {}
            // gone since msdb listed it (retention, a DBA): a gap the chain rules name;
            // the chain's own full cannot be missed
            Err(e) if e.code == ErrorCode::NotFound && h.backup.id != full_id => {
                warnings.push(left_out(name, l, "its file is gone from the pod"));
                continue;
            }
            Err(e) => {
                // what was left behind is said even when the backup failed
                log_warnings(&warnings);
                return Err(e);
            }
        }
        doc.backups.push(Kept::new(&item, &h.backup, &h.device));
        taken.insert(item);
        copied += 1;
    }
    for problem in chain::problems(&doc.history()?) {
        warnings.push(problem.describe());
    }
    log_warnings(&warnings);
    doc.check_texts()?;
    let body = serde_json::to_vec_pretty(&doc)
        .map_err(|e| Error::new(ErrorCode::Failed, e.to_string()))?;
    engine::put_document(CHAIN_ITEM, &body)?;
    host::progress(total, total, "done");
    host::info(&format!(
        "copied {} of the instance's own backups of {}; the chain now holds {} backup(s)",
        copied,
        shown(name, 128),
        doc.backups.len(),
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
            "/var/opt/mssql/backups//rehydra/sales_full.bak",
            "/var/opt/mssql/backups/./rehydra/sales_full.bak",
            "/var/opt/mssql/backups/current/",
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
