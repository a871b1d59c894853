use rehydra_plugin_sdk::mock::{MockHost, backup_request};
use rehydra_plugin_sdk::prelude::*;
use sql_common::model::ChainDoc;

use super::support::*;
use crate::ArcSqlMi;

fn opts<'a>(stage: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut o = vec![
        ("servers", "arc/sqlmi1=sqlmi1.contoso.local:31433"),
        ("staging", stage),
    ];
    o.extend_from_slice(extra);
    o
}

#[test]
fn a_full_backup_runs_copy_only_copies_out_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    sim.borrow_mut().own_backup("sales", "D");
    let mock = host_with(&sim, dir.path());
    let report = mock
        .backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &opts(&stage, &[])))
        .unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.consistency, "application");

    let batches = mock.sql_batches();
    let backup = batches
        .iter()
        .find(|b| b.batch.starts_with("BACKUP"))
        .unwrap();
    assert_eq!(
        backup.batch,
        "BACKUP DATABASE @P1 TO DISK = @P2 WITH COPY_ONLY, CHECKSUM, INIT, FORMAT, NAME = @P3"
    );
    let device = backup.params[1].clone();
    let file = device
        .strip_prefix("/var/opt/mssql/backups/rehydra/")
        .unwrap();
    assert!(
        file.starts_with("sales_full_") && file.ends_with(".bak"),
        "{file}"
    );
    assert_eq!(backup.params[0], "sales");
    assert_eq!(backup.params[2], "Rehydra arc/sqlmi1/sales");

    let staged = format!("{stage}/{file}");
    let cmds: Vec<(String, Vec<String>)> = mock
        .commands()
        .into_iter()
        .map(|c| (c.program, c.args))
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
    assert_eq!(
        cmds,
        [
            (
                "kubectl".into(),
                s(&[
                    "exec",
                    "sqlmi1-0",
                    "-n",
                    "arc",
                    "-c",
                    "arc-sqlmi",
                    "--",
                    "mkdir",
                    "-p",
                    "/var/opt/mssql/backups/rehydra"
                ])
            ),
            (
                "kubectl".into(),
                s(&[
                    "exec",
                    "sqlmi1-0",
                    "-n",
                    "arc",
                    "-c",
                    "arc-sqlmi",
                    "--",
                    "stat",
                    "-c",
                    "%F %s",
                    "--",
                    &device
                ])
            ),
            (
                "kubectl".into(),
                s(&[
                    "cp",
                    &format!("arc/sqlmi1-0:{device}"),
                    &staged,
                    "-c",
                    "arc-sqlmi"
                ])
            ),
            (
                "kubectl".into(),
                s(&[
                    "exec",
                    "sqlmi1-0",
                    "-n",
                    "arc",
                    "-c",
                    "arc-sqlmi",
                    "--",
                    "rm",
                    "-f",
                    &device
                ])
            ),
            ("rm".into(), s(&["-f", "--", &staged])),
        ]
    );
    assert!(mock.commands().iter().all(|c| c.target == "local"));
    // the repository holds the bytes the pod wrote; neither the pod nor staging keeps them
    let item = format!("backups/{file}");
    assert_eq!(mock.item_bytes(&item).unwrap(), b"native D backup of sales");
    assert_eq!(sim.borrow().ours_in_pod(), 0);
    assert!(!std::path::Path::new(&staged).exists());
    // the instance's own chain is untouched: its msdb row is copy-only
    assert!(sim.borrow().msdb.last().unwrap().copy_only);

    let doc = ChainDoc::parse(&mock.item_bytes("chain.json").unwrap()).unwrap();
    assert_eq!(
        (
            doc.server.as_str(),
            doc.database.as_str(),
            doc.recovery.as_str()
        ),
        ("arc/sqlmi1", "sales", "FULL")
    );
    assert_eq!(doc.backups.len(), 1);
    assert_eq!(
        (doc.backups[0].item.as_str(), doc.backups[0].kind.as_str()),
        (item.as_str(), "full")
    );
    assert!(doc.backups[0].copy_only);
    assert_eq!(doc.files.len(), 2);
}

#[test]
fn a_log_backup_continues_the_chain_and_carries_the_full_forward() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = host_with(&sim, dir.path());
    let ctx = [("kube-context", "arc-admin@cluster1"), ("pod", "sqlmi1-0")];
    mock.backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &opts(&stage, &ctx)))
        .unwrap();
    let full = ChainDoc::parse(&mock.item_bytes("chain.json").unwrap())
        .unwrap()
        .backups[0]
        .item
        .clone();
    let log_opts = opts(
        &stage,
        &[("level", "log"), ("kube-context", "arc-admin@cluster1")],
    );
    let r = mock
        .backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &log_opts))
        .unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let backup = mock
        .sql_batches()
        .into_iter()
        .rev()
        .find(|b| b.batch.starts_with("BACKUP"))
        .unwrap();
    assert_eq!(
        backup.batch,
        "BACKUP LOG @P1 TO DISK = @P2 WITH COPY_ONLY, CHECKSUM, INIT, FORMAT, NAME = @P3"
    );
    let cp = mock
        .commands()
        .into_iter()
        .find(|c| c.args[0] == "cp")
        .unwrap();
    assert_eq!(
        cp.args[3..],
        ["-c", "arc-sqlmi", "--context", "arc-admin@cluster1"]
    );
    let doc = ChainDoc::parse(&mock.item_bytes("chain.json").unwrap()).unwrap();
    let kinds: Vec<&str> = doc.backups.iter().map(|k| k.kind.as_str()).collect();
    assert_eq!(kinds, ["full", "log"]);
    assert_eq!(doc.backups[0].item, full);
    assert!(
        mock.item_bytes(&full).is_some(),
        "the full is carried into the new point"
    );
    assert_eq!(mock.points().len(), 2);
}

#[test]
fn a_log_after_the_instances_own_log_backup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL"), ("simple", "SIMPLE")]);
    let mock = host_with(&sim, dir.path());
    mock.backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &opts(&stage, &[])))
        .unwrap();
    sim.borrow_mut().own_backup("sales", "L"); // the built-in schedule truncates the log
    let e = mock
        .backup::<ArcSqlMi>(backup_request(
            "arc/sqlmi1/sales",
            &opts(&stage, &[("level", "log")]),
        ))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message.contains("backed up the log")
            && e.message
                .contains("/var/opt/mssql/backups/current/sales/L-10.bak")
            && e.message.contains("level=full"),
        "{}",
        e.message
    );
    assert!(
        mock.sql_batches()
            .iter()
            .all(|b| !b.batch.starts_with("BACKUP"))
    );
    assert!(mock.commands().is_empty());

    // no full of ours yet, and SIMPLE: refused before BACKUP runs
    let fresh = host_with(&sim, dir.path());
    let e = fresh
        .backup::<ArcSqlMi>(backup_request(
            "arc/sqlmi1/sales",
            &opts(&stage, &[("level", "log")]),
        ))
        .unwrap_err();
    assert!(e.message.contains("no full backup"), "{}", e.message);
    let e = fresh
        .backup::<ArcSqlMi>(backup_request(
            "arc/sqlmi1/simple",
            &opts(&stage, &[("level", "log")]),
        ))
        .unwrap_err();
    assert!(e.message.contains("SIMPLE"), "{}", e.message);
    assert!(
        fresh
            .sql_batches()
            .iter()
            .all(|b| !b.batch.starts_with("BACKUP"))
    );
    assert!(fresh.commands().is_empty());
}

#[test]
fn hostile_names_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("arc/sqlmi1", opts(&stage, &[])),
        ("arc/../sales", opts(&stage, &[])),
        ("arc/sqlmi1;rm -rf ~/sales", opts(&stage, &[])),
        ("arc/sqlmi1/sa\nles", opts(&stage, &[])),
        ("arc/sqlmi1/$(reboot)", opts(&stage, &[])),
        (
            "arc/sqlmi1/sales",
            opts(&stage, &[("pod", "--kubeconfig=/etc/x")]),
        ),
        (
            "arc/sqlmi1/sales",
            opts(&stage, &[("pod", "sqlmi1-0; reboot")]),
        ),
        (
            "arc/sqlmi1/sales",
            opts(&stage, &[("container", "arc-sqlmi -it")]),
        ),
        (
            "arc/sqlmi1/sales",
            opts(&stage, &[("command-target", "local && reboot")]),
        ),
        ("arc/sqlmi1/sales", opts("relative/stage", &[])),
        ("arc/sqlmi1/sales", opts("/stage/../../etc", &[])),
        ("arc/sqlmi1/sales", opts(&stage, &[("level", "diff")])),
        ("arc/sqlmi2/sales", opts(&stage, &[])),
    ];
    for (asset, o) in cases {
        let mock = host_with(&sim, dir.path());
        let e = mock
            .backup::<ArcSqlMi>(backup_request(asset, &o))
            .unwrap_err();
        assert_eq!(
            e.code,
            ErrorCode::InvalidInput,
            "{asset:?} {o:?}: {}",
            e.message
        );
        assert!(
            mock.commands().is_empty() && mock.sql_batches().is_empty(),
            "{asset:?} {o:?}"
        );
        assert!(!e.message.contains('\n'), "escaped: {}", e.message);
    }
}

#[test]
fn a_failed_copy_still_removes_the_file_in_the_pod() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    sim.borrow_mut().cp_fails = true;
    let mock = host_with(&sim, dir.path());
    let e = mock
        .backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &opts(&stage, &[])))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Failed);
    assert!(
        e.message.contains("copying the backup out of the pod")
            && e.message.contains("container not found"),
        "{}",
        e.message
    );
    let last = mock
        .commands()
        .into_iter()
        .rfind(|c| c.program == "kubectl")
        .unwrap();
    assert_eq!(last.args[7..9], ["rm", "-f"]);
    assert!(sim.borrow().pod_files.is_empty());
    assert!(mock.items().is_empty(), "nothing stored");
}

#[test]
fn without_the_kubectl_grant_the_backup_stops_and_says_which_grant() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    let s = sim.clone();
    let mock = MockHost::new()
        .grant("engine")
        .grant(&format!("sql:{SERVER}"))
        .on_sql(move |q| s.borrow_mut().answer(q));
    let e = mock
        .backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &opts(&stage, &[])))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Denied);
    assert!(e.message.contains("command:kubectl@local"), "{}", e.message);
    assert!(
        mock.sql_batches()
            .iter()
            .all(|b| !b.batch.starts_with("BACKUP"))
    );
}
