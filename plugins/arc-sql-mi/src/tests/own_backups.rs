//! `level=built-in`: the instance's own backups copied off the cluster, and restored from.

use rehydra_plugin_sdk::mock::{MockHost, backup_request};
use rehydra_plugin_sdk::prelude::*;
use sql_common::model::ChainDoc;

use super::support::*;
use crate::ArcSqlMi;

fn built_in(stage: &str) -> Vec<(&str, &str)> {
    vec![
        ("servers", "arc/sqlmi1=sqlmi1.contoso.local:31433"),
        ("staging", stage),
        ("level", "built-in"),
    ]
}

/// A `level=built-in` backup of `arc/sqlmi1/sales`.
fn copy_built_in(mock: &MockHost, stage: &str) -> Result<BackupReport> {
    mock.backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &built_in(stage)))
}

fn chain(mock: &MockHost) -> ChainDoc {
    ChainDoc::parse(&mock.item_bytes("chain.json").unwrap()).unwrap()
}

fn kinds(doc: &ChainDoc) -> Vec<&str> {
    doc.backups.iter().map(|k| k.kind.as_str()).collect()
}

/// What kubectl and rm were asked, one line each.
fn commands(mock: &MockHost) -> Vec<String> {
    mock.commands()
        .iter()
        .map(|c| format!("{} {}", c.program, c.args.join(" ")))
        .collect()
}

#[test]
fn the_instances_own_chain_is_copied_and_goes_on_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    {
        let mut s = sim.borrow_mut();
        s.own_backup("sales", "D"); // an older week, not copied
        s.own_backup("sales", "L");
        s.own_backup("sales", "D"); // 10:15, the newest full
        s.own_backup("sales", "L");
        s.own_backup("sales", "I");
        s.own_backup("sales", "L");
    }
    let mock = host_with(&sim, dir.path());
    let r = copy_built_in(&mock, &stage).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.consistency, "application");
    // no BACKUP of ours: only msdb is read
    assert!(
        mock.sql_batches()
            .iter()
            .all(|b| b.batch.starts_with("SELECT"))
    );
    let cmds = commands(&mock);
    let files = ["D-15", "L-20", "I-25", "L-30"];
    assert_eq!(cmds.len(), 3 * files.len(), "{cmds:#?}");
    for (n, f) in files.iter().enumerate() {
        assert!(
            cmds[3 * n].ends_with(&format!(
                "-- stat -c %F %s -- /var/opt/mssql/backups/current/sales/{f}.bak"
            )),
            "{}",
            cmds[3 * n]
        );
        let cp = &cmds[3 * n + 1];
        assert!(
            cp.starts_with(&format!(
                "kubectl cp arc/sqlmi1-0:/var/opt/mssql/backups/current/sales/{f}.bak {stage}/sales_"
            )) && cp.ends_with(" -c arc-sqlmi"),
            "{cp}"
        );
        let staged = cp.split(' ').nth(3).unwrap();
        assert_eq!(cmds[3 * n + 2], format!("rm -f -- {staged}"));
    }
    // the instance's files stay where they are; staging keeps nothing
    assert_eq!(sim.borrow().pod_files.len(), 6);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let doc = chain(&mock);
    assert_eq!(kinds(&doc), ["full", "log", "diff", "log"]);
    assert!(doc.backups.iter().all(|k| !k.copy_only));
    assert_eq!(
        doc.backups[2].device,
        "/var/opt/mssql/backups/current/sales/I-25.bak"
    );
    assert_eq!(
        mock.item_bytes(&doc.backups[2].item).unwrap(),
        b"own I backup of sales at minute 25"
    );

    // the next run copies only what is new, after the chain it carries forward
    sim.borrow_mut().own_backup("sales", "L");
    sim.borrow_mut().own_backup("sales", "L");
    copy_built_in(&mock, &stage).unwrap();
    // (what this job ran)
    let cp: Vec<String> = commands(&mock)
        .iter()
        .filter(|c| c.starts_with("kubectl cp"))
        .cloned()
        .collect();
    assert_eq!(cp.len(), 2, "{cp:#?}");
    assert!(cp[0].contains("/L-35.bak") && cp[1].contains("/L-40.bak"));
    let next = chain(&mock);
    assert_eq!(kinds(&next), ["full", "log", "diff", "log", "log", "log"]);
    assert_eq!(next.backups[..4], doc.backups[..]);
    assert!(
        mock.item_bytes(&next.backups[0].item).is_some(),
        "the full is carried into the new point"
    );

    // nothing new: a point holding the same chain, nothing copied
    copy_built_in(&mock, &stage).unwrap();
    assert!(mock.commands().is_empty());
    assert_eq!(chain(&mock).backups, next.backups);

    // the weekly full, with a log before it the last run did not see: this point keeps
    // the previous chain whole and everything after it, so no moment is lost
    for kind in ["L", "D", "L"] {
        sim.borrow_mut().own_backup("sales", kind); // 10:45, 10:50, 10:55
    }
    copy_built_in(&mock, &stage).unwrap();
    let third = chain(&mock);
    assert_eq!(
        kinds(&third),
        [
            "full", "log", "diff", "log", "log", "log", "log", "full", "log"
        ]
    );
    assert!(third.backups[7].device.ends_with("/D-50.bak"));
    // and the next one starts at that full
    sim.borrow_mut().own_backup("sales", "L");
    copy_built_in(&mock, &stage).unwrap();
    let fourth = chain(&mock);
    assert_eq!(kinds(&fourth), ["full", "log", "log"]);
    assert_eq!(fourth.backups[..2], third.backups[7..]);
    assert_eq!(mock.points().len(), 5);
}

#[test]
fn what_msdb_names_is_checked_before_it_is_copied_or_continued() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    {
        let mut s = sim.borrow_mut();
        s.own_backup("sales", "L"); // 10:05, finishing in the full's second (below)
        s.own_backup("sales", "D"); // 10:10
        s.msdb[0].minute = 10;
        s.own_backup("sales", "L"); // 10:15: the second set of its file
        s.msdb[2].position = 2;
        s.own_backup("sales", "L"); // 10:20: gone from the pod since
        let gone = s.msdb[3].device.clone();
        s.pod_files.remove(&gone);
        s.own_backup("sales", "L"); // 10:25
    }
    let mock = host_with(&sim, dir.path());
    let r = copy_built_in(&mock, &stage).unwrap();
    let all = r.warnings.join(" | ");
    assert!(
        all.contains("L-15.bak: not copied, it is not the first backup set of its file")
            && all.contains("L-20.bak: not copied, its file is gone from the pod"),
        "{all}"
    );
    // the log of the full's second is kept with it; the chain rules name the gap
    assert_eq!(kinds(&chain(&mock)), ["log", "full", "log"]);
    assert!(all.contains("LSN"), "{all}");

    // a previous point whose backups msdb lists otherwise (written elsewhere, or msdb
    // changed): set aside, a new chain from the newest full
    sim.borrow_mut().msdb[4].last += 1;
    sim.borrow_mut().own_backup("sales", "L");
    let r = copy_built_in(&mock, &stage).unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("otherwise than msdb lists it") && w.contains("a new chain starts")),
        "{:?}",
        r.warnings
    );
    let set_aside = chain(&mock);
    assert_eq!(kinds(&set_aside), ["log", "full", "log", "log"]);
    assert_eq!(
        set_aside.backups[2].last_lsn,
        sim.borrow().msdb[4].last.to_string(),
        "kept as msdb lists it now"
    );

    // a folder named as a backup file is never copied (kubectl cp would take the tree)
    sim.borrow_mut()
        .backup_to("sales", "L", "/var/opt/mssql/backups/current/sales/x.bak");
    let folder = "/var/opt/mssql/backups/current";
    sim.borrow_mut().msdb.last_mut().unwrap().device = folder.into();
    let e = copy_built_in(&mock, &stage).unwrap_err();
    assert!(e.message.contains("is not a regular file"), "{}", e.message);
    assert!(mock.commands().iter().all(|c| {
        !c.args
            .iter()
            .any(|a| a.ends_with(":/var/opt/mssql/backups/current"))
    }));
}

#[test]
fn a_restore_from_the_copies_uses_the_differential_and_stops_at_the_moment() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    for kind in ["D", "L", "I", "L", "L"] {
        sim.borrow_mut().own_backup("sales", kind); // 10:05 … 10:25
    }
    let mock = host_with(&sim, dir.path()).grant_files_write(dir.path());
    copy_built_in(&mock, &stage).unwrap();
    let o = [
        ("servers", "arc/sqlmi1=sqlmi1.contoso.local:31433"),
        ("staging", stage.as_str()),
        ("database", "sales_copy"),
        ("stop-at", "2026-12-01T10:22:00"),
    ];
    let plan = mock
        .plan_restore::<ArcSqlMi>(mock.restore_request("-", &o))
        .unwrap();
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    let script = &plan.steps.iter().find(|s| s.id == "script").unwrap().detail;
    let lines: Vec<&str> = script.split(";\n").collect();
    // the full, the differential at 10:15, the log to 10:20 whole, the next one to 10:22
    assert_eq!(lines.len(), 5, "{script}");
    assert!(lines[0].contains("sales_full_") && lines[1].contains("sales_diff_"));
    assert!(lines[1].starts_with("RESTORE DATABASE [sales_copy]"));
    assert!(lines[2].starts_with("RESTORE LOG") && !lines[2].contains("STOPAT"));
    assert!(lines[3].ends_with("STOPAT = N'2026-12-01T10:22:00.000'"));
    mock.restore::<ArcSqlMi>(mock.restore_request("-", &o))
        .unwrap();
    let read: Vec<Vec<u8>> = sim
        .borrow()
        .restores
        .iter()
        .filter_map(|(_, b)| b.clone())
        .collect();
    let want: Vec<&[u8]> = vec![
        b"own D backup of sales at minute 5",
        b"own I backup of sales at minute 15",
        b"own L backup of sales at minute 20",
        b"own L backup of sales at minute 25",
    ];
    assert_eq!(read, want, "the instance read its own backups back");
    // the copies put into the pod for the restore are gone; the instance's own stay
    assert_eq!(sim.borrow().ours_in_pod(), 0);
    assert_eq!(sim.borrow().pod_files.len(), 5);
}

#[test]
fn backups_that_cannot_be_copied_are_left_out_and_the_gap_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    {
        let mut s = sim.borrow_mut();
        s.own_backup("sales", "D");
        s.own_backup("sales", "L");
        // someone backs the log up by hand elsewhere: it truncates the log
        s.backup_to("sales", "L", "/tmp/by-hand.trn");
        s.own_backup("sales", "L");
    }
    let mock = host_with(&sim, dir.path());
    let r = copy_built_in(&mock, &stage).unwrap();
    let all = r.warnings.join(" | ");
    assert!(
        all.contains("/tmp/by-hand.trn: not copied, it is not on the instance's backup volume"),
        "{all}"
    );
    assert!(all.contains("LSN"), "the chain rules name the gap: {all}");
    assert_eq!(kinds(&chain(&mock)), ["full", "log", "log"]);
    assert!(
        commands(&mock).iter().all(|c| !c.contains("/tmp/by-hand")),
        "nothing outside the backup volume is asked for"
    );
}

#[test]
fn without_built_in_backups_or_when_a_copy_fails_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = host_with(&sim, dir.path());
    // retention 0: msdb shows only Rehydra's copy-only backups
    mock.backup::<ArcSqlMi>(backup_request(
        "arc/sqlmi1/sales",
        &[
            ("servers", "arc/sqlmi1=sqlmi1.contoso.local:31433"),
            ("staging", stage.as_str()),
        ],
    ))
    .unwrap();
    let e = copy_built_in(&mock, &stage).unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    assert!(
        e.message.contains("no full backup") && e.message.contains("level=full"),
        "{}",
        e.message
    );

    sim.borrow_mut().own_backup("sales", "D");
    sim.borrow_mut().own_backup("sales", "L");
    sim.borrow_mut().cp_fails = true;
    let fresh = host_with(&sim, dir.path());
    let e = copy_built_in(&fresh, &stage).unwrap_err();
    assert_eq!(e.code, ErrorCode::Failed);
    assert!(
        e.message
            .contains("copying the instance's backup out of the pod"),
        "{}",
        e.message
    );
    assert!(fresh.items().is_empty(), "nothing stored");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(sim.borrow().pod_files.len(), 2, "the instance's files stay");

    // a copy cut short is not kept, for the instance's backups and for Rehydra's own
    sim.borrow_mut().cp_fails = false;
    sim.borrow_mut().cp_short = true;
    for level in ["built-in", "full"] {
        let fresh = host_with(&sim, dir.path());
        let mut o = built_in(&stage);
        o[2].1 = level;
        let e = fresh
            .backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &o))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Failed, "{level}");
        assert!(
            e.message.contains("kubectl cp was cut short") && e.message.contains("bytes"),
            "{level}: {}",
            e.message
        );
        assert!(fresh.item_bytes("chain.json").is_none(), "{level}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{level}");
    }
    assert_eq!(sim.borrow().ours_in_pod(), 0);
}

#[test]
fn after_rehydras_own_copies_or_without_kubectl_nothing_is_passed_over_silently() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = host_with(&sim, dir.path());
    let mut o = built_in(&stage);
    o[2].1 = "full";
    mock.backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &o))
        .unwrap();
    sim.borrow_mut().own_backup("sales", "D");
    sim.borrow_mut().own_backup("sales", "L");
    // the previous point holds Rehydra's own copy-only full: said, not passed over
    let r = copy_built_in(&mock, &stage).unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("holds Rehydra's own copy-only backups")),
        "{:?}",
        r.warnings
    );
    assert_eq!(kinds(&chain(&mock)), ["full", "log"]);
    // kubectl gone from the target is a failure, not backups gone from the pod
    sim.borrow_mut().own_backup("sales", "L");
    sim.borrow_mut().kubectl_gone = true;
    let e = copy_built_in(&mock, &stage).unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable, "{}", e.message);
    assert_eq!(mock.points().len(), 2, "no point written");
    // an empty file is no backup
    sim.borrow_mut().kubectl_gone = false;
    let last = sim.borrow().msdb.last().unwrap().device.clone();
    sim.borrow_mut().pod_files.insert(last, Vec::new());
    let e = copy_built_in(&mock, &stage).unwrap_err();
    assert!(e.message.contains("is empty"), "{}", e.message);
}

#[test]
fn a_chain_at_the_limit_is_copied_one_more_is_refused_and_the_next_full_starts_over() {
    use sql_common::model::BACKUPS_MAX;
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    let own = |kind: &'static str, n: usize| {
        let mut s = sim.borrow_mut();
        for _ in 0..n {
            s.own_backup("sales", kind);
        }
    };
    // a full and its logs: as many as a point keeps, copied in two runs
    own("D", 1);
    own("L", BACKUPS_MAX / 2 - 1);
    let mock = host_with(&sim, dir.path());
    copy_built_in(&mock, &stage).unwrap();
    own("L", BACKUPS_MAX / 2);
    copy_built_in(&mock, &stage).unwrap();
    let full = chain(&mock);
    assert_eq!(full.backups.len(), BACKUPS_MAX);
    assert_eq!(kinds(&full)[..2], ["full", "log"]);

    // one log more than a point keeps: refused, saying what to do, nothing copied
    own("L", 1);
    let e = copy_built_in(&mock, &stage).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message.contains("more than 10000 backups")
            && e.message.contains("no full backup in that many"),
        "{}",
        e.message
    );
    assert!(!commands(&mock).iter().any(|c| c.starts_with("kubectl cp")));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // the next full: the previous chain cannot be kept whole with it, so a new chain
    // starts at it, with a warning; the jobs do not fail from then on
    own("D", 1);
    own("L", 1);
    let r = copy_built_in(&mock, &stage).unwrap();
    assert!(
        r.warnings.iter().any(|w| w.contains("more than 10000")),
        "{:?}",
        r.warnings
    );
    assert_eq!(kinds(&chain(&mock)), ["full", "log"]);
    own("L", 1);
    copy_built_in(&mock, &stage).unwrap();
    assert_eq!(kinds(&chain(&mock)), ["full", "log", "log"]);
}
