//! `discover` and `assess`: the instances (see [`crate::instance`]) and, for each one whose
//! SQL endpoint the admin configured (`servers=`), its user databases through
//! `sql_common::tsql`; then the findings: built-in backups that never leave the cluster,
//! point-in-time restore off, one replica, an instance not Ready, SIMPLE recovery, and
//! the chain problems msdb's history shows (`sql_common::chain`).

use rehydra_plugin_sdk::host::{self, Level};
use rehydra_plugin_sdk::prelude::*;
use sql_common::chain::{self, Kind};
use sql_common::model::kind_name;
use sql_common::tsql::{self, Db, HistoryRow, show_time};

use crate::instance::{self, BUILT_IN_FOLDER, Instance};
use crate::names::{self, server_of, shown};

fn built_in(i: &Instance) -> String {
    if i.retention() == 0 {
        "off (retentionPeriodInDays 0)".into()
    } else {
        format!(
            "{BUILT_IN_FOLDER} in pod {}-0, on the cluster's own storage, kept {} day(s)",
            i.name,
            i.retention()
        )
    }
}

fn instance_asset(i: &Instance) -> Asset {
    let mut a = asset("instance", &i.key(), &i.name, None);
    let unknown = || "unknown".to_string();
    a.properties = vec![
        property("tier", i.tier.clone().unwrap_or_else(unknown)),
        property("replicas", i.replica_count().to_string()),
        property(
            "retention-days",
            match i.retention_days {
                Some(d) => d.to_string(),
                None => format!("{} (default)", instance::DEFAULT_RETENTION_DAYS),
            },
        ),
        property("state", i.state.clone().unwrap_or_else(unknown)),
        property("endpoint", i.endpoint.clone().unwrap_or_else(unknown)),
        property("built-in-backups", built_in(i)),
    ];
    if let Some(id) = &i.arm_id {
        a.properties.push(property("arm-id", id.clone()));
    }
    if i.namespace.is_none() {
        a.properties.push(property(
            "namespace",
            "unknown: ARM does not say; list the instance through the Kubernetes API (kube=, namespaces=) to back it up",
        ));
    }
    a
}

fn last_of(h: &[HistoryRow], k: Kind) -> Option<&HistoryRow> {
    h.iter().rev().find(|r| r.backup.kind == k)
}

/// The moments the instance's own point-in-time restore reaches, from `span` (when its
/// oldest full and its newest backup in its backup folder finished, as msdb lists them):
/// back to that full, but not beyond its retention before its newest backup.
fn built_in_window(i: &Instance, span: Option<(i64, i64)>) -> String {
    if i.retention() == 0 {
        return "none: the built-in backups are off".into();
    }
    let Some((first, last)) = span else {
        return format!(
            "none: msdb lists no full backup the instance took itself in {BUILT_IN_FOLDER}"
        );
    };
    let days = i64::try_from(i.retention()).unwrap_or(i64::MAX);
    let from = first.max(last.saturating_sub(days.saturating_mul(86_400_000)));
    format!(
        "from {} to {} (the instance's clock: its own backups as msdb lists them, within its {} day(s) of retention)",
        show_time(from),
        show_time(last),
        i.retention()
    )
}

fn database_asset(
    i: &Instance,
    db: &Db,
    history: &[HistoryRow],
    span: Option<(i64, i64)>,
) -> Asset {
    let id = format!("{}/{}", i.key(), db.name);
    let mut a = asset("database", &id, &db.name, Some(&i.key()));
    a.properties = vec![
        property("recovery-model", shown(&db.recovery, 60)),
        property("state", shown(&db.state, 60)),
        property("size-mib", (db.pages * 8 / 1024).to_string()),
        property("built-in-backups", built_in(i)),
        property("built-in-window", built_in_window(i, span)),
    ];
    for k in [Kind::Full, Kind::Diff, Kind::Log] {
        if let Some(r) = last_of(history, k) {
            let by = if r.backup.ours { "rehydra" } else { "instance" };
            a.properties.push(property(
                &format!("last-{}", kind_name(k)),
                format!("{} ({by})", show_time(r.backup.finish)),
            ));
        }
    }
    a
}

/// The user databases of the instance, or why they cannot be read; names SQL Server
/// sends that this plugin would not accept are skipped with a warning.
fn databases(server: &str) -> Result<Vec<Db>> {
    let mut out = tsql::databases(server)?;
    out.retain(|d| match names::database("database", &d.name) {
        Ok(_) => true,
        Err(e) => {
            host::log(Level::Warn, &format!("{server}: {}; skipped", e.message));
            false
        }
    });
    Ok(out)
}

fn servers(s: &[Property]) -> Result<Vec<(String, String)>> {
    names::servers(setting_or(s, "servers", ""))
}

/// The instances and the databases of those with a configured endpoint.
///
/// # Errors
/// As [`instance::collect`]; a malformed `servers`.
pub fn discover(s: &[Property]) -> Result<Vec<Asset>> {
    let servers = servers(s)?;
    let mut out = Vec::new();
    for i in instance::collect(s)? {
        let mut a = instance_asset(&i);
        let Some(server) = server_of(&servers, &i.key()) else {
            out.push(a);
            continue;
        };
        a.properties.push(property("sql-endpoint", server));
        match databases(server) {
            Ok(dbs) => {
                out.push(a);
                for db in dbs {
                    let history = tsql::history(server, &db.name)?;
                    let span = if i.retention() == 0 {
                        None
                    } else {
                        tsql::own_backups_span(server, &db.name, BUILT_IN_FOLDER)?
                    };
                    out.push(database_asset(&i, &db, &history, span));
                }
            }
            Err(e) => {
                a.properties.push(property("sql-unreachable", e.message));
                out.push(a);
            }
        }
    }
    Ok(out)
}

fn instance_findings(i: &Instance, out: &mut Vec<Finding>) {
    let id = i.key();
    if i.ready() == Some(false) {
        out.push(Finding::about(&id, "arcsqlmi.not-ready", Severity::High, format!("{} is not Ready", i.name), format!("its status.state is `{}`: it may not serve its databases nor take its built-in backups", shown(i.state.as_deref().unwrap_or_default(), 64)), "kubectl describe sqlmi -n <namespace> <name> and the pod's events tell why"));
    }
    if i.retention() == 0 {
        out.push(Finding::about(&id, "arcsqlmi.pitr-off", Severity::High, format!("{} takes no built-in backups", i.name), "spec.backup.retentionPeriodInDays is 0: the instance keeps no backups and offers no point-in-time restore".into(), "set a retention (az sql mi-arc update --retention-days 7) and back the databases up with Rehydra to a repository off the cluster"));
    } else {
        out.push(Finding::about(&id, "arcsqlmi.backups-on-cluster", Severity::High, format!("the built-in backups of {} never leave the cluster", i.name), format!("they are kept {} day(s) in {BUILT_IN_FOLDER} of pod {}-0, on the cluster's own storage, and restore only to this same instance: losing the cluster or that volume loses them with the databases", i.retention(), i.name), "copy the instance's own backups off the cluster with Rehydra (level=built-in: its full, differential and log backups, so a restore reaches any moment), or take Rehydra's own (level=full, COPY_ONLY: the instance's chain stays whole), to a repository on another site or in Azure Blob"));
    }
    if i.replica_count() < 2 {
        out.push(Finding::about(&id, "arcsqlmi.single-replica", Severity::Medium, format!("{} runs one replica", i.name), format!("tier {}, 1 replica: a failed pod or node stops the instance until Kubernetes reschedules it, and its storage is the only copy of the data", i.tier.as_deref().unwrap_or("unknown")), "for availability use the Business Critical tier with 3 replicas; keep backups off the cluster either way"));
    }
}

fn database_findings(
    i: &Instance,
    db: &Db,
    history: &[HistoryRow],
    no_full: bool,
    out: &mut Vec<Finding>,
) {
    let id = format!("{}/{}", i.key(), db.name);
    if db.simple() {
        out.push(Finding::about(&id, "arcsqlmi.simple-recovery", Severity::High, format!("{} uses the SIMPLE recovery model", db.name), "no log backups: no point-in-time restore of it, and the instance's built-in backups do not cover it; a restore loses everything since its last full backup".into(), "ALTER DATABASE … SET RECOVERY FULL, or take full backups with Rehydra as often as losing the time between them is acceptable"));
    }
    if no_full {
        out.push(Finding::about(
            &id,
            "arcsqlmi.no-full-backup",
            Severity::Critical,
            format!("{} has no full backup", db.name),
            "msdb records no full backup of it: neither the instance nor Rehydra can restore it"
                .into(),
            "back it up now (rehydra plugins run arc-sql-mi backup --asset …)",
        ));
    }
    let backups: Vec<chain::Backup> = history.iter().map(|r| r.backup.clone()).collect();
    for p in chain::problems(&backups) {
        let rule = format!("arcsqlmi.{}", p.rule().trim_start_matches("sql."));
        out.push(Finding::about(&id, &rule, Severity::High, format!("the backup chain of {} is broken", db.name), p.describe(), "take a full backup now so a whole chain starts; find out who else backs this database up (msdb's user_name and device)"));
    }
}

/// Findings for the instances the settings name and their databases.
///
/// # Errors
/// As [`discover`].
pub fn assess(_assets: &[Asset], s: &[Property]) -> Result<Vec<Finding>> {
    let servers = servers(s)?;
    let mut out = Vec::new();
    for i in instance::collect(s)? {
        instance_findings(&i, &mut out);
        let Some(server) = server_of(&servers, &i.key()) else {
            out.push(Finding::about(&i.key(), "arcsqlmi.no-sql-endpoint", Severity::Info, format!("the databases of {} were not assessed", i.name), "no SQL endpoint is configured for this instance".into(), "configure its endpoint (rehydra plugins sql-server add <the endpoint discover shows>) and name it in servers=<namespace>/<instance>=<endpoint>"));
            continue;
        };
        let dbs = match databases(server) {
            Ok(d) => d,
            Err(e) => {
                out.push(Finding::about(
                    &i.key(),
                    "arcsqlmi.sql-unreachable",
                    Severity::High,
                    format!("{server} cannot be read"),
                    e.message,
                    "check the endpoint's configuration: rehydra plugins sql-server check",
                ));
                continue;
            }
        };
        for db in dbs {
            let history = tsql::history(server, &db.name)?;
            // msdb's whole record, not only the newest backups the history reads
            let no_full = tsql::newest_full(server, &db.name)?.is_none();
            database_findings(&i, &db, &history, no_full, &mut out);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_window_reaches_back_to_the_oldest_full_within_the_retention() {
        let day = 86_400_000;
        let at = |t: &str| tsql::parse_time(t).unwrap();
        let mut i = Instance {
            name: "sqlmi1".into(),
            retention_days: Some(7),
            ..Instance::default()
        };
        let last = at("2026-12-20T10:00:00");
        // a full three days before the newest backup: the window starts at it
        let w = built_in_window(&i, Some((last - 3 * day, last)));
        assert!(
            w.starts_with("from 2026-12-17T10:00:00.000 to 2026-12-20T10:00:00.000 "),
            "{w}"
        );
        // msdb remembers a full older than the retention: the window starts 7 days back
        let w = built_in_window(&i, Some((last - 30 * day, last)));
        assert!(w.starts_with("from 2026-12-13T10:00:00.000 to "), "{w}");
        assert!(built_in_window(&i, None).starts_with("none: msdb lists no full"));
        i.retention_days = Some(0);
        assert_eq!(
            built_in_window(&i, Some((last - day, last))),
            "none: the built-in backups are off"
        );
    }
}
