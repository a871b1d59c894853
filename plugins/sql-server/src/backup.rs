//! `backup` of one database: SQL Server writes a native backup (`WITH CHECKSUM`) to the
//! staging folder, the engine stores the file (read through `path-map`), and the chain
//! document records it with the LSNs msdb gives for it.
//!
//! A restore point keeps the whole chain it can restore: a full starts a new chain; a
//! differential or a log keeps the previous point's backups (carried forward, not read
//! again) and adds itself. Before anything is taken, what would make the backup useless
//! is refused: a log of a SIMPLE database, a differential or log with no full of ours
//! before it, a differential whose base is a full someone else took.

use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::windows::map_path;
use rehydra_plugin_sdk::{engine, host};

use crate::chain::{self, Kind};
use crate::model::{
    CHAIN_ITEM, ChainDoc, Kept, backup_file_name as file_name, kind_name, now_ms, previous_chain,
};
use crate::stored;
use crate::tsql::{self, BULK_SECS, show_time, split_asset};

fn level(s: &str) -> Result<Kind> {
    match s {
        "full" => Ok(Kind::Full),
        "diff" | "differential" => Ok(Kind::Diff),
        "log" => Ok(Kind::Log),
        other => Err(Error::new(
            ErrorCode::InvalidInput,
            format!("level `{other}` is not full, diff or log"),
        )),
    }
}

/// `folder` joined with `name` in the instance's own separator.
pub fn on_instance(folder: &str, name: &str) -> String {
    let sep = if folder.contains('\\') { '\\' } else { '/' };
    format!("{}{sep}{name}", folder.trim_end_matches(['\\', '/']))
}

/// Have `server` remove a backup file in the staging folder (it is in the repository);
/// the warning to show when it cannot.
pub fn unstage(server: &str, device: &str) -> Option<String> {
    tsql::run(
        server,
        "EXECUTE master.dbo.xp_delete_file 0, @P1",
        &[device],
        tsql::QUERY_SECS,
    )
    .err()
    .map(|e| {
        format!(
            "the staged file {device} could not be removed ({}); remove it by hand",
            e.message
        )
    })
}

fn refuse(m: String) -> Error {
    Error::new(ErrorCode::InvalidInput, m)
}

/// Which replica of an availability group may take a backup (setting `replica`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// Only the one the group's backup preference names.
    Preferred,
    /// Whichever replica the asset is.
    Any,
}

fn which(s: &str) -> Result<Which> {
    match s {
        "preferred" => Ok(Which::Preferred),
        "any" => Ok(Which::Any),
        other => Err(refuse(format!("replica `{other}` is not preferred or any"))),
    }
}

/// The backup an availability group allows on this replica (`role`, `None` outside a
/// group): refused where the role is neither primary nor secondary, and on a replica the
/// backup preference does not name (unless `any`); on a secondary, a differential or a
/// copy-only log refused, and a full made COPY_ONLY (the only full SQL Server takes
/// there), with the line for the job log that says so. Returns whether to send
/// COPY_ONLY.
fn on_replica(
    kind: Kind,
    copy_only: bool,
    (name, role): (&str, Option<&tsql::Replica>),
    server: &str,
    which: Which,
) -> Result<(bool, Option<String>)> {
    let Some(role) = role else {
        return Ok((copy_only, None));
    };
    if !role.primary() && !role.secondary() {
        return Err(Error::new(
            ErrorCode::Unavailable,
            format!(
                "{server} is neither primary nor secondary of `{name}`'s availability group now ({}); back it up when the group has settled",
                if role.role.is_empty() {
                    "it does not say"
                } else {
                    &role.role
                }
            ),
        ));
    }
    if which == Which::Preferred && !role.preferred_backup {
        return Err(refuse(format!(
            "database `{name}` is in an availability group whose backup preference names another replica than {server}; name the group's other replicas in replicas= to follow the preference, back it up there (its asset on that instance), or set replica=any to back it up here"
        )));
    }
    if !role.secondary() {
        return Ok((copy_only, None));
    }
    match kind {
        Kind::Diff => Err(refuse(format!(
            "{server} is a secondary replica of `{name}`, where SQL Server takes no differential backups; take full (COPY_ONLY) and log backups here, or differentials on the primary"
        ))),
        Kind::Log if copy_only => Err(refuse(format!(
            "{server} is a secondary replica of `{name}`, where SQL Server takes only plain log backups, never COPY_ONLY; leave copy-only off"
        ))),
        Kind::Log => Ok((false, None)),
        Kind::Full => Ok((
            true,
            (!copy_only).then(|| format!(
                "{server} is a secondary replica of `{name}`: the full backup is taken COPY_ONLY, the only full SQL Server takes there (a differential on the primary is not based on it)"
            )),
        )),
    }
}

/// This instance's replica state of database `name` (`None` outside a group), asked only
/// of a database in a group.
pub(crate) fn state_on(on: &str, name: &str) -> Result<(tsql::Db, Option<tsql::Replica>)> {
    let db = tsql::database(on, name)?.ok_or_else(|| {
        Error::new(
            ErrorCode::NotFound,
            format!("database `{name}` is not on {on} (rehydra plugins run sql-server discover --set servers={on})"),
        )
    })?;
    let role = if db.in_ag {
        let mut r = tsql::replicas(on, Some(name))?;
        Some(r.pop().map(|(_, r)| r).unwrap_or(tsql::Replica {
            role: String::new(),
            preferred_backup: false,
        }))
    } else {
        None
    };
    Ok((db, role))
}

/// Where the backup of `name` runs: on `server`, this asset's instance; for a database of
/// an availability group with `replica=preferred` and other replicas named (`others`), on
/// whichever of them the group's backup preference names now, asked in turn (this
/// instance first; when it cannot be reached it is passed over, as after a failover),
/// and only one whose database is in the same group. When none is, the error says what
/// each answered.
fn pick(
    server: &str,
    name: &str,
    which: Which,
    others: &[String],
    chain_group: Option<&str>,
) -> Result<(String, tsql::Db, Option<tsql::Replica>)> {
    if others.is_empty() || which == Which::Any {
        let (db, role) = state_on(server, name)?;
        return Ok((server.to_string(), db, role));
    }
    let mut said = Vec::new();
    // what this asset's instance answered: its database's group
    let mut home: Option<Option<String>> = None;
    for on in std::iter::once(server).chain(others.iter().map(String::as_str)) {
        match state_on(on, name) {
            Ok((db, role)) if on == server && role.is_none() => {
                return Ok((on.to_string(), db, role));
            }
            // another database of the same name (another group, or none): not a replica
            // of this one, whatever it says of itself. The group is this instance's, or
            // the one the chain recorded; with neither known no other replica is taken.
            Ok((db, _))
                if on != server
                    && (db.group.is_none()
                        || db.group.as_deref()
                            != home.as_ref().map_or(chain_group, Option::as_deref)) =>
            {
                said.push(format!(
                    "{on}: its `{name}` is not known to be in the same availability group as {server}'s"
                ));
            }
            Ok((db, Some(role)))
                if role.preferred_backup && (role.primary() || role.secondary()) =>
            {
                if on != server {
                    host::info(&format!(
                        "{on} is the replica `{name}`'s availability group prefers for backups now: the backup runs there and stays in the chain of {server}/{name}"
                    ));
                }
                return Ok((on.to_string(), db, Some(role)));
            }
            Ok((db, role)) => {
                said.push(match &role {
                    Some(r) if r.primary() || r.secondary() => {
                        format!(
                            "{on}: {}, not the preferred backup replica",
                            r.role.to_lowercase()
                        )
                    }
                    _ => format!("{on}: neither primary nor secondary now"),
                });
                if on == server {
                    home = Some(db.group);
                }
            }
            // this asset's own instance is passed over only when it cannot be reached
            // (a failover); a database gone, a grant missing or a login refused stop here
            Err(e) if on == server && e.code != ErrorCode::Unavailable => return Err(e),
            Err(e) => said.push(format!("{on}: {}", e.message)),
        }
    }
    // none is: what each one answered, and how to back up anyway
    Err(Error::new(
        ErrorCode::Unavailable,
        format!(
            "no replica of `{name}`'s availability group that this backup may use is its preferred backup replica now ({}){}",
            said.join("; "),
            if home.is_some() {
                format!("; set replica=any to back up on {server} anyway")
            } else {
                String::new()
            }
        ),
    ))
}

/// Refuses to carry `prev` on when msdb shows backups of the same database that another
/// asset of ours took since the chain began (the same database on another replica, or the
/// instance under another name): each would cut the other's log chain. A full starts a
/// chain of its own, and is let through. `mine` is this asset's set name.
fn one_asset(
    kind: Kind,
    mine: &str,
    name: &str,
    prev: Option<&ChainDoc>,
    history: &[tsql::HistoryRow],
) -> Result<()> {
    if kind == Kind::Full {
        return Ok(());
    }
    let Some(since) = prev
        .map(ChainDoc::history)
        .transpose()?
        .and_then(|h| h.first().map(|b| b.start))
    else {
        return Ok(());
    };
    let other = history.iter().find_map(|h| {
        let asset = tsql::asset_of(&h.set_name)?;
        (h.backup.finish >= since
            && h.set_name != mine
            && asset
                .rsplit_once('/')
                .is_some_and(|(_, db)| db.eq_ignore_ascii_case(name)))
        .then_some((asset, h))
    });
    match other {
        None => Ok(()),
        Some((asset, h)) => Err(refuse(format!(
            "`{name}` is also backed up as another asset ({}, at {}): two assets of one database cut each other's log chains. Keep one of them in your policies (with replicas= one asset follows its availability group's preferred replica), then take a full backup here (level=full) to start a chain of this asset alone",
            asset,
            show_time(h.backup.finish)
        ))),
    }
}

/// What stands in the way of a backup of `kind` after `prev`, given msdb's history.
fn check_base(
    kind: Kind,
    copy_only: bool,
    db: &tsql::Db,
    prev: Option<&ChainDoc>,
    history: &[tsql::HistoryRow],
) -> Result<()> {
    if kind == Kind::Log && db.simple() {
        return Err(refuse(format!(
            "database `{}` uses the SIMPLE recovery model, which keeps no log to back up; take full and differential backups (ALTER DATABASE … SET RECOVERY FULL for point-in-time restores)",
            db.name
        )));
    }
    if kind == Kind::Full {
        return Ok(());
    }
    let Some(full) = prev.and_then(|p| p.backups.first()) else {
        return Err(refuse(format!(
            "there is no full backup of `{}` in this repository to build a {} backup on; take a full backup first (level=full)",
            db.name,
            kind_name(kind)
        )));
    };
    if kind == Kind::Diff {
        if copy_only {
            return Err(refuse(
                "a differential is always based on the last full backup that was not COPY_ONLY; with copy-only take full and log backups".into(),
            ));
        }
        // SQL Server bases the differential on the newest full that was not copy-only
        let base = history
            .iter()
            .rev()
            .find(|h| h.backup.kind == Kind::Full && !h.backup.copy_only);
        // (unless it is older than the chain's: on another replica of a group msdb may
        // keep a full that the chain's, taken elsewhere, replaced; LSNs are the group's)
        if let Some(b) = base
            && b.backup.checkpoint_lsn.to_string() != full.checkpoint_lsn
            && !full
                .checkpoint_lsn
                .parse::<chain::Lsn>()
                .is_ok_and(|ours| b.backup.checkpoint_lsn < ours)
        {
            return Err(refuse(format!(
                "the last full backup of `{}` was taken by someone else ({} at {}, to {}); a differential now would be based on it and useless without it. Take a full backup here (level=full), or make the other product's fulls COPY_ONLY",
                db.name,
                if b.user.is_empty() {
                    "another login"
                } else {
                    &b.user
                },
                show_time(b.backup.finish),
                b.device
            )));
        }
    }
    Ok(())
}

/// The other replicas `replicas=` names (not `server`, lower case, each once).
///
/// # Errors
/// More than an availability group has.
pub(crate) fn replicas(o: &[Property], server: &str) -> Result<Vec<String>> {
    let others: Vec<String> = setting_or(o, "replicas", "")
        .split(',')
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case(server))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if others.len() > 8 {
        return Err(refuse(format!(
            "replicas names {} instances; an availability group has at most 9 replicas",
            others.len()
        )));
    }
    Ok(others)
}

/// Back up the database of `req.asset`.
pub fn backup(req: &BackupRequest) -> Result<BackupReport> {
    let o = &req.options;
    let (server, name) = split_asset(&req.asset.id)?;
    let kind = level(setting_or(o, "level", "full"))?;
    let which = which(setting_or(o, "replica", "preferred"))?;
    let staging = require(
        o,
        "staging",
        "the folder SQL Server writes backups to, as it sees it, e.g. \\\\fs01\\sqlstage or /var/opt/mssql/backup",
    )?;
    let map = setting_or(o, "path-map", "");
    let others = replicas(o, server)?;
    let prev = previous_chain(kind, |doc| {
        doc.server.eq_ignore_ascii_case(server) && doc.database == name
    })?;
    // the instance the backup runs on: this asset's, or the replica the group prefers now
    let group = prev.as_ref().and_then(|p| p.group.clone());
    let (on, db, role) = pick(server, name, which, &others, group.as_deref())?;
    let on = on.as_str();
    if !db.state.eq_ignore_ascii_case("ONLINE") {
        return Err(Error::new(
            ErrorCode::Unavailable,
            format!(
                "database `{name}` is {}, not ONLINE; it cannot be backed up now",
                db.state
            ),
        ));
    }
    if kind != Kind::Full
        && prev
            .as_ref()
            .is_some_and(|p| p.backups.len() >= crate::model::BACKUPS_MAX)
    {
        return Err(refuse(format!(
            "the chain of `{name}` holds {} backups, as many as a restore point keeps; take a full backup (level=full) to start a new one",
            crate::model::BACKUPS_MAX
        )));
    }
    let (copy_only, note) =
        on_replica(kind, flag(o, "copy-only"), (name, role.as_ref()), on, which)?;
    if let Some(note) = note {
        host::info(&note);
    }
    let history = tsql::history(on, name)?;
    let set_name = tsql::set_name(&req.asset.id);
    one_asset(kind, &set_name, name, prev.as_ref(), &history)?;
    check_base(kind, copy_only, &db, prev.as_ref(), &history)?;

    let file = file_name(name, kind, now_ms());
    let device = on_instance(staging, &file);
    let host_path = map_path(map, &device)?;
    let stmt = format!(
        "BACKUP {} @P1 TO DISK = @P2 WITH CHECKSUM, INIT, FORMAT, NAME = @P3{}{}",
        if kind == Kind::Log { "LOG" } else { "DATABASE" },
        if kind == Kind::Diff {
            ", DIFFERENTIAL"
        } else {
            ""
        },
        if copy_only { ", COPY_ONLY" } else { "" },
    );
    host::progress(
        0,
        3,
        &format!("{} backup of {name} on {on}", kind_name(kind)),
    );
    tsql::run(on, &stmt, &[name, &device, &set_name], BULK_SECS)?;
    let written = tsql::written_to(on, name, &device)?.ok_or_else(|| {
        Error::new(
            ErrorCode::Failed,
            format!(
                "SQL Server reported the backup done but msdb has no backup of `{name}` to {device}"
            ),
        )
    })?;
    if written.backup.kind != kind {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "msdb records the backup to {device} as {}, not {}",
                kind_name(written.backup.kind),
                kind_name(kind)
            ),
        ));
    }
    // a differential is based on the newest full that was not COPY_ONLY, wherever it was
    // taken (in a group, perhaps on another replica, whose msdb this one does not show):
    // one based on another full than this chain's is of no use, and is not kept
    if let (Kind::Diff, Some(full)) = (kind, prev.as_ref().and_then(|p| p.backups.first())) {
        let base = written
            .backup
            .differential_base_lsn
            .unwrap_or(written.backup.database_backup_lsn);
        if base.to_string() != full.checkpoint_lsn {
            let left = unstage(on, &device)
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            return Err(refuse(format!(
                "the differential backup of `{name}` SQL Server just took is based on another full backup (checkpoint LSN {base}, not this chain's {}): one taken elsewhere, perhaps on another replica of its availability group. It is not kept{left}; take a full backup here (level=full)",
                full.checkpoint_lsn
            )));
        }
    }
    host::progress(1, 3, &format!("storing {file}"));
    let item = format!("backups/{file}");
    let stored = engine::ingest_file(&item, &host_path)?;

    let mut warnings = Vec::new();
    let mut doc = ChainDoc::continued(
        kind,
        prev,
        server.to_ascii_lowercase(),
        name,
        &db.recovery,
        || tsql::files(server, name).or_else(|_| tsql::files(on, name)),
        (2, 3),
    )?;
    doc.backups.push(Kept::new(&item, &written.backup, &device));
    // the group's database id, which tells another replica's database from another of the
    // same name when this instance does not answer
    if db.group.is_some() {
        doc.group.clone_from(&db.group);
    }

    // what the chain and msdb together say: a gap another product's log made, a fork
    let mut ours = doc.history()?;
    let sets: Vec<&str> = doc.backups.iter().map(|k| k.set.as_str()).collect();
    let since = ours.first().map_or(0, |b| b.start);
    ours.extend(
        history
            .iter()
            .filter(|h| h.backup.finish >= since && !sets.contains(&h.backup.id.as_str()))
            .map(|h| {
                let mut b = h.backup.clone();
                b.ours = false;
                b
            }),
    );
    ours.sort_by_key(|b| (b.finish, b.first_lsn));
    for p in chain::problems(&ours) {
        warnings.push(p.describe());
    }
    doc.check_texts()?;
    engine::put_document(
        CHAIN_ITEM,
        &serde_json::to_vec_pretty(&doc)
            .map_err(|e| Error::new(ErrorCode::Failed, e.to_string()))?,
    )?;

    // the staged copy is in the repository now; SQL Server removes its own backup file
    warnings.extend(unstage(on, &device));
    host::progress(3, 3, "done");
    host::info(&format!(
        "{} backup of {name}: LSN {} to {}, the chain now holds {} backup(s); {}",
        kind_name(kind),
        written.backup.first_lsn,
        written.backup.last_lsn,
        doc.backups.len(),
        stored::summary(&stored)
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
    fn an_availability_group_allows_what_sql_server_takes_on_each_replica() {
        let role = |role: &str, preferred_backup| tsql::Replica {
            role: role.into(),
            preferred_backup,
        };
        let on = |kind, copy, r: Option<&tsql::Replica>, which| {
            on_replica(kind, copy, ("sales", r), "sql02", which)
        };
        // outside a group, and on a preferred primary, the request is sent as it is
        let primary = role("PRIMARY", true);
        for r in [None, Some(&primary)] {
            for kind in [Kind::Full, Kind::Diff, Kind::Log] {
                assert_eq!(on(kind, false, r, Which::Preferred).unwrap(), (false, None));
                assert_eq!(on(kind, true, r, Which::Preferred).unwrap(), (true, None));
            }
        }
        // a replica the preference does not name: refused, unless any replica will do
        let other = role("PRIMARY", false);
        let e = on(Kind::Full, false, Some(&other), Which::Preferred).unwrap_err();
        assert!(
            e.message.contains("names another replica than sql02"),
            "{}",
            e.message
        );
        assert_eq!(
            on(Kind::Full, false, Some(&other), Which::Any).unwrap(),
            (false, None)
        );
        // a role that is not settled (or not said) is refused, whatever the preference
        for r in [role("RESOLVING", true), role("", true)] {
            assert!(on(Kind::Log, false, Some(&r), Which::Any).is_err());
        }
        // a secondary: fulls COPY_ONLY (said), no differential, logs never COPY_ONLY
        let sec = role("SECONDARY", true);
        let (copy, note) = on(Kind::Full, false, Some(&sec), Which::Preferred).unwrap();
        assert!(copy && note.unwrap().contains("COPY_ONLY"));
        assert_eq!(
            on(Kind::Full, true, Some(&sec), Which::Preferred).unwrap(),
            (true, None)
        );
        assert!(on(Kind::Diff, false, Some(&sec), Which::Preferred).is_err());
        assert!(on(Kind::Log, true, Some(&sec), Which::Preferred).is_err());
        assert_eq!(
            on(Kind::Log, false, Some(&sec), Which::Preferred).unwrap(),
            (false, None)
        );
        assert!(which("sometimes").is_err());
    }

    #[test]
    fn file_names_keep_only_safe_letters() {
        let n = file_name("we]ird; DROP", Kind::Log, 0);
        assert_eq!(n, "we_ird__DROP_log_19700101000000000.trn");
        assert_eq!(
            on_instance("\\\\fs01\\stage\\", "a.bak"),
            "\\\\fs01\\stage\\a.bak"
        );
        assert_eq!(
            on_instance("/var/opt/mssql/backup", "a.bak"),
            "/var/opt/mssql/backup/a.bak"
        );
    }
}
