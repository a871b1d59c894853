//! `discover` and `assess`: the databases of the instances named in `servers`, with
//! what a DBA asks first (recovery model, state, size, AG membership, TDE, the last
//! full/differential/log backup and who took it), and the findings msdb's history gives
//! before anyone needs a restore: a broken log chain, a fork, a full someone else took
//! that our differentials now depend on, SIMPLE recovery's RPO, no backup at all.

use rehydra_plugin_sdk::prelude::*;

use crate::chain::{self, Kind};
use crate::model::kind_name;
use crate::tsql::{self, Db, HistoryRow, show_time};

fn servers(s: &[Property]) -> Result<Vec<String>> {
    let list: Vec<String> = require(
        s,
        "servers",
        "the instances to list, as configured with rehydra plugins sql-server add",
    )?
    .split(',')
    .map(|v| v.trim().to_ascii_lowercase())
    .filter(|v| !v.is_empty())
    .collect();
    if list.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "servers names no instance",
        ));
    }
    Ok(list)
}

fn last_of(h: &[HistoryRow], k: Kind) -> Option<&HistoryRow> {
    h.iter().rev().find(|r| r.backup.kind == k)
}

/// This replica's role for each database of a group it holds, as properties: asked
/// only where some database is in a group; what stops the question is said instead.
fn replica_roles(server: &str, dbs: &[Db]) -> Vec<(String, Vec<Property>)> {
    if !dbs.iter().any(|d| d.in_ag) {
        return Vec::new();
    }
    match tsql::replicas(server, None) {
        Ok(found) => found
            .into_iter()
            .map(|(name, r)| {
                let props = vec![
                    property("replica", r.role.to_ascii_lowercase()),
                    property("preferred-backup-replica", r.preferred_backup.to_string()),
                ];
                (name, props)
            })
            .collect(),
        Err(e) => dbs
            .iter()
            .filter(|d| d.in_ag)
            .map(|d| {
                (
                    d.name.clone(),
                    vec![property("replica", format!("unknown: {}", e.message))],
                )
            })
            .collect(),
    }
}

fn database_asset(server: &str, db: &Db, history: &[HistoryRow]) -> Asset {
    let mut a = asset(
        "database",
        &format!("{server}/{}", db.name),
        &db.name,
        Some(server),
    );
    a.properties = vec![
        property("recovery-model", db.recovery.clone()),
        property("state", db.state.clone()),
        property("size-mib", (db.pages * 8 / 1024).to_string()),
        property("compatibility-level", db.compat.clone()),
        property("tde", db.encrypted.to_string()),
        property("availability-group", db.in_ag.to_string()),
    ];
    for k in [Kind::Full, Kind::Diff, Kind::Log] {
        if let Some(r) = last_of(history, k) {
            let by = if r.backup.ours { "rehydra" } else { "other" };
            a.properties.push(property(
                &format!("last-{}", kind_name(k)),
                format!("{} ({by})", show_time(r.backup.finish)),
            ));
        }
    }
    let problems = chain::problems(&history.iter().map(|r| r.backup.clone()).collect::<Vec<_>>());
    a.properties.push(property(
        "chain",
        if problems.is_empty() {
            "whole".to_string()
        } else {
            format!("{} problem(s)", problems.len())
        },
    ));
    a
}

/// The instances and their user databases.
pub fn discover(s: &[Property]) -> Result<Vec<Asset>> {
    let mut out = Vec::new();
    for server in servers(s)? {
        let dbs = match tsql::databases(&server) {
            Ok(d) => d,
            Err(e) => {
                let mut a = asset("instance", &server, &server, None);
                a.properties.push(property("unreachable", e.message));
                out.push(a);
                continue;
            }
        };
        out.push(asset("instance", &server, &server, None));
        let mut roles = replica_roles(&server, &dbs);
        for db in dbs {
            let history = tsql::history(&server, &db.name)?;
            let mut a = database_asset(&server, &db, &history);
            if let Some(i) = roles.iter().position(|(n, _)| *n == db.name) {
                a.properties.extend(roles.swap_remove(i).1);
            }
            out.push(a);
        }
    }
    Ok(out)
}

/// Findings for the databases of `servers` (or of the assets given).
pub fn assess(assets: &[Asset], s: &[Property]) -> Result<Vec<Finding>> {
    let list = match servers(s) {
        Ok(l) => l,
        Err(_) => assets
            .iter()
            .filter(|a| a.kind == "instance")
            .map(|a| a.id.clone())
            .collect(),
    };
    let mut out = Vec::new();
    for server in list {
        let dbs = match tsql::databases(&server) {
            Ok(d) => d,
            Err(e) => {
                out.push(Finding::about(
                    &server,
                    "sql.unreachable",
                    Severity::High,
                    format!("{server} cannot be read"),
                    e.message,
                    "check the instance's configuration: rehydra plugins sql-server check",
                ));
                continue;
            }
        };
        for db in dbs {
            let id = format!("{server}/{}", db.name);
            let history = tsql::history(&server, &db.name)?;
            let backups: Vec<chain::Backup> = history.iter().map(|r| r.backup.clone()).collect();
            // msdb's whole record, not only the newest backups the history reads
            if tsql::newest_full(&server, &db.name)?.is_none() {
                out.push(Finding::about(&id, "sql.no-full-backup", Severity::Critical, format!("{} has no full backup", db.name), "msdb records no full backup of this database: nothing can restore it".into(), "protect it with a policy: full weekly, differential daily, log every 15 minutes"));
            }
            for p in chain::problems(&backups) {
                out.push(Finding::about(&id, p.rule(), Severity::High, format!("the backup chain of {} is broken", db.name), p.describe(), "take a full backup now so a whole chain starts; find out who else backs this database up (msdb's user_name and device)"));
            }
            if db.simple() {
                let last = history
                    .iter()
                    .rev()
                    .find(|r| r.backup.kind != Kind::Log)
                    .map_or_else(|| "never".to_string(), |r| show_time(r.backup.finish));
                out.push(Finding::about(&id, "sql.simple-recovery", Severity::Medium, format!("{} cannot be restored to a point in time", db.name), format!("it uses the SIMPLE recovery model: no log backups, so a restore loses everything since the last full or differential backup (the last was {last}); the RPO is the time between them"), "if losing that much is not acceptable, ALTER DATABASE … SET RECOVERY FULL and back up the log every 15 minutes"));
            }
            if db.encrypted {
                out.push(Finding::about(&id, "sql.tde", Severity::Medium, format!("{} is encrypted (TDE)", db.name), "its backups restore only on an instance that has the certificate protecting its database encryption key".into(), "back up that certificate and its private key (BACKUP CERTIFICATE … WITH PRIVATE KEY) and keep them apart from the database backups"));
            }
        }
    }
    Ok(out)
}
