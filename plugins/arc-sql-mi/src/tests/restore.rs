use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use rehydra_plugin_sdk::http::Request;
use rehydra_plugin_sdk::mock::{MockHost, MockPoint, backup_request, response};
use rehydra_plugin_sdk::prelude::*;
use serde_json::{Value, json};

use super::support::*;
use crate::ArcSqlMi;

const TASKS: &str = "https://10.0.0.5:6443/apis/tasks.sql.arcdata.microsoft.com/v1/namespaces/arc/sqlmanagedinstancerestoretasks";

/// The Arc data controller as the API server shows it: a created task's status moves
/// through `dry` (dry runs) or `real` one step per read, the last one staying.
#[derive(Default)]
struct Controller {
    dry: Vec<Value>,
    real: Vec<Value>,
    tasks: HashMap<String, (Value, VecDeque<Value>)>,
    created: Vec<Value>,
    deleted: Vec<String>,
}

impl Controller {
    fn answer(&mut self, r: &Request) -> Result<rehydra_plugin_sdk::http::Response> {
        let json_body = |v: &Value| serde_json::to_vec(v).unwrap();
        match (r.method.as_str(), r.url.as_str()) {
            ("POST", TASKS) => {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                let name = body["metadata"]["name"].as_str().unwrap().to_string();
                if self.tasks.contains_key(&name) {
                    return Ok(response(
                        409,
                        json_body(
                            &json!({"kind": "Status", "reason": "AlreadyExists", "message": "already exists", "code": 409}),
                        ),
                    ));
                }
                let script = if body["spec"]["dryRun"] == json!(true) {
                    &self.dry
                } else {
                    &self.real
                };
                self.tasks
                    .insert(name, (body.clone(), script.iter().cloned().collect()));
                self.created.push(body.clone());
                Ok(response(201, json_body(&body)))
            }
            (method, url) => {
                let name = url
                    .strip_prefix(&format!("{TASKS}/"))
                    .expect("a task URL")
                    .to_string();
                match method {
                    "GET" => {
                        let Some((body, states)) = self.tasks.get_mut(&name) else {
                            return Ok(response(404, ""));
                        };
                        let status = if states.len() > 1 {
                            states.pop_front().unwrap()
                        } else {
                            states[0].clone()
                        };
                        let mut v = body.clone();
                        v["status"] = status;
                        Ok(response(200, json_body(&v)))
                    }
                    "DELETE" => {
                        self.tasks.remove(&name);
                        self.deleted.push(name);
                        Ok(response(200, "{}"))
                    }
                    _ => panic!("{method} {url}"),
                }
            }
        }
    }
}

fn st(state: &str) -> Value {
    json!({"state": state, "lastUpdateTime": "2026-12-03T04:00:00Z"})
}

fn failed(msg: &str) -> Value {
    json!({"state": "Failed", "message": msg})
}

fn dry_ok() -> Vec<Value> {
    vec![
        st("Waiting"),
        json!({"state": "Completed", "message": "Dry run succeeded",
            "earliestRestoreTime": "2026-11-26T04:00:00Z", "latestRestoreTime": "2026-12-03T03:55:00Z"}),
    ]
}

fn host(ctl: &Rc<RefCell<Controller>>, sim: &Rc<RefCell<Sim>>) -> MockHost {
    let (c, s) = (ctl.clone(), sim.clone());
    MockHost::new()
        .grant("http:10.0.0.5:6443")
        .grant(&format!("sql:{SERVER}"))
        .with_point(MockPoint::new("arc/sqlmi1/sales").plugin("arc-sql-mi", "0.1.0"))
        .on_http(move |r| c.borrow_mut().answer(r))
        .on_sql(move |q| s.borrow_mut().answer(q))
}

fn built_in<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut o = vec![
        ("mode", "built-in"),
        ("kube", KUBE),
        ("stop-at", "2026-12-01T14:37:15Z"),
        ("database", "sales_pitr"),
        ("servers", "arc/sqlmi1=sqlmi1.contoso.local:31433"),
        ("poll-secs", "0"),
    ];
    o.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    o.extend_from_slice(extra);
    o
}

#[test]
fn the_plan_dry_runs_the_task_and_shows_the_real_one() {
    let ctl = Rc::new(RefCell::new(Controller {
        dry: dry_ok(),
        ..Controller::default()
    }));
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = host(&ctl, &sim);
    let plan = mock
        .plan_restore::<ArcSqlMi>(mock.restore_request("-", &built_in(&[])))
        .unwrap();
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    let c = ctl.borrow();
    assert_eq!(c.created.len(), 1);
    let dry = &c.created[0];
    let name = dry["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("rehydra-sales-pitr-") && name.ends_with("-dry"),
        "{name}"
    );
    assert_eq!(
        dry,
        &json!({"apiVersion": "tasks.sql.arcdata.microsoft.com/v1", "kind": "SqlManagedInstanceRestoreTask",
            "metadata": {"name": name, "namespace": "arc"},
            "spec": {"source": {"name": "sqlmi1", "database": "sales"}, "restorePoint": "2026-12-01T14:37:15Z",
                "destination": {"name": "sqlmi1", "database": "sales_pitr"}, "dryRun": true}})
    );
    assert_eq!(c.deleted, [name], "the dry-run task is removed");
    let methods: Vec<String> = mock
        .http_requests()
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["POST", "GET", "GET", "DELETE"]);
    let step = |id: &str| {
        plan.steps
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .detail
            .clone()
    };
    assert_eq!(
        step("dry-run"),
        "Completed: Dry run succeeded; the built-in backups reach from 2026-11-26T04:00:00Z to 2026-12-03T03:55:00Z"
    );
    let real: Value = serde_json::from_str(&step("task")).unwrap();
    assert_eq!(real["spec"]["dryRun"], json!(false));
    assert_eq!(
        real["metadata"]["name"].as_str().unwrap(),
        name.trim_end_matches("-dry")
    );
}

#[test]
fn an_existing_target_and_a_refused_dry_run_are_blockers() {
    let ctl = Rc::new(RefCell::new(Controller {
        dry: vec![
            st("Waiting"),
            failed(
                "The restore point 2026-12-01T14:37:15Z is earlier than the earliest restore time 2026-11-26T04:00:00Z",
            ),
        ],
        ..Controller::default()
    }));
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = host(&ctl, &sim);
    let plan = mock
        .plan_restore::<ArcSqlMi>(mock.restore_request("-", &built_in(&[("database", "sales")])))
        .unwrap();
    assert_eq!(plan.blockers.len(), 3, "{:?}", plan.blockers);
    assert!(plan.blockers[0].contains("only to a new database: name one other than `sales`"));
    assert!(plan.blockers[1].contains("database `sales` exists on arc/sqlmi1"));
    assert!(plan.blockers[2].contains(
        "dry run refuses the restore: Failed: The restore point 2026-12-01T14:37:15Z is earlier"
    ));
    // a system database, in any case, is never a target
    let plan = mock
        .plan_restore::<ArcSqlMi>(mock.restore_request("-", &built_in(&[("database", "MSDB")])))
        .unwrap();
    assert!(
        plan.blockers[0].contains("only to a new database"),
        "{:?}",
        plan.blockers
    );
    // and the restore does not create a real task
    let e = mock
        .restore::<ArcSqlMi>(mock.restore_request("-", &built_in(&[("database", "sales")])))
        .unwrap_err();
    assert!(e.message.contains("plan is blocked, nothing was written"));
    assert!(
        ctl.borrow()
            .created
            .iter()
            .all(|t| t["spec"]["dryRun"] == json!(true))
    );
}

#[test]
fn a_moment_outside_the_window_the_dry_run_reports_is_a_blocker() {
    let ctl = Rc::new(RefCell::new(Controller {
        dry: dry_ok(),
        ..Controller::default()
    }));
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = host(&ctl, &sim);
    let plan = mock
        .plan_restore::<ArcSqlMi>(
            mock.restore_request("-", &built_in(&[("stop-at", "2026-11-20T00:00:00Z")])),
        )
        .unwrap();
    assert_eq!(plan.blockers.len(), 1, "{:?}", plan.blockers);
    assert!(plan.blockers[0].starts_with("2026-11-20T00:00:00Z is outside the built-in backups' window; the built-in backups reach from 2026-11-26T04:00:00Z"), "{}", plan.blockers[0]);
}

#[test]
fn the_restore_follows_the_task_until_it_completes() {
    let ctl = Rc::new(RefCell::new(Controller {
        dry: dry_ok(),
        real: vec![
            st("Waiting"),
            st("Waiting"),
            st("Restoring"),
            st("Restoring"),
            st("Completed"),
        ],
        ..Controller::default()
    }));
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = host(&ctl, &sim);
    mock.restore::<ArcSqlMi>(mock.restore_request("-", &built_in(&[])))
        .unwrap();
    let c = ctl.borrow();
    let real = c.created.last().unwrap();
    assert_eq!(real["spec"]["dryRun"], json!(false));
    assert!(
        c.tasks
            .contains_key(real["metadata"]["name"].as_str().unwrap()),
        "the real task is kept as a record"
    );
    let states: Vec<String> = mock
        .progress()
        .into_iter()
        .map(|(_, _, m)| m.rsplit(": ").next().unwrap().to_string())
        .collect();
    // the dry run's progression, then the task's, each state once
    assert_eq!(
        states,
        [
            "Waiting",
            "Dry run succeeded",
            "Waiting",
            "Restoring",
            "Completed"
        ]
    );
}

#[test]
fn a_failed_task_is_an_error_with_its_message() {
    let ctl = Rc::new(RefCell::new(Controller {
        dry: dry_ok(),
        real: vec![
            st("Waiting"),
            st("Restoring"),
            failed("RESTORE LOG terminated abnormally. Msg 3013"),
        ],
        ..Controller::default()
    }));
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = host(&ctl, &sim);
    let e = mock
        .restore::<ArcSqlMi>(mock.restore_request("-", &built_in(&[])))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Failed);
    assert!(
        e.message
            .contains("failed: Failed: RESTORE LOG terminated abnormally. Msg 3013"),
        "{}",
        e.message
    );
}

#[test]
fn a_task_that_never_finishes_ends_the_wait_with_its_name() {
    let ctl = Rc::new(RefCell::new(Controller {
        dry: dry_ok(),
        real: vec![st("Restoring")],
        ..Controller::default()
    }));
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = host(&ctl, &sim);
    let e = mock
        .restore::<ArcSqlMi>(mock.restore_request("-", &built_in(&[("wait-minutes", "1")])))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    assert!(
        e.message.contains("still Restoring")
            && e.message
                .contains("kubectl get sqlmirestoretask -n arc rehydra-sales-pitr-"),
        "{}",
        e.message
    );
    let gets = mock
        .http_requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(
        gets,
        2 + 60,
        "the dry run's two reads, then 60 polls for one minute"
    );
}

#[test]
fn hostile_restore_settings_are_refused() {
    let ctl = Rc::new(RefCell::new(Controller {
        dry: dry_ok(),
        ..Controller::default()
    }));
    let sim = Sim::new(&[("sales", "FULL")]);
    for (k, v) in [
        ("stop-at", "2026-12-01T14:37:15+02:00"),
        ("stop-at", "now\"; rm -rf /"),
        ("database", "x\u{0}y"),
        ("kube", "https://10.0.0.5:6443/apis?x"),
        ("poll-secs", "-1"),
        ("mode", "magic"),
    ] {
        let mock = host(&ctl, &sim);
        let e = mock
            .plan_restore::<ArcSqlMi>(mock.restore_request("-", &built_in(&[(k, v)])))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{k}={v}");
        assert!(mock.http_requests().is_empty(), "{k}={v}");
    }
}

/// A full and a log backup of `sales` into a point, and the mock host holding it.
fn two_backups(stage: &str, sim: &Rc<RefCell<Sim>>, dir: &std::path::Path) -> MockHost {
    let mock = host_with(sim, dir).grant_files_write(dir);
    let o = |level: &'static str| {
        vec![
            ("servers", "arc/sqlmi1=sqlmi1.contoso.local:31433"),
            ("staging", stage),
            ("level", level),
        ]
    };
    mock.backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &o("full")))
        .unwrap();
    mock.backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &o("log")))
        .unwrap();
    mock
}

fn copies<'a>(stage: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut o = vec![
        ("servers", "arc/sqlmi1=sqlmi1.contoso.local:31433"),
        ("staging", stage),
    ];
    o.extend_from_slice(extra);
    o
}

#[test]
fn the_plan_from_copies_picks_the_chain_and_writes_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = two_backups(&stage, &sim, dir.path());
    let plan = mock
        .plan_restore::<ArcSqlMi>(mock.restore_request(
            "-",
            &copies(
                &stage,
                &[
                    ("database", "sales_copy"),
                    ("stop-at", "2026-12-01T10:07:00"),
                ],
            ),
        ))
        .unwrap();
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["backup-0", "backup-1", "script", "moment"]);
    assert!(
        plan.steps[0]
            .detail
            .contains(&format!("written to {stage}/sales_full_"))
            && plan.steps[0].detail.contains(
                "kubectl cp into arc/sqlmi1-0:/var/opt/mssql/backups/rehydra/sales_full_"
            ),
        "{}",
        plan.steps[0].detail
    );
    let script = &plan.steps[2].detail;
    let lines: Vec<&str> = script.split(";\n").collect();
    assert_eq!(lines.len(), 3, "{script}");
    assert!(lines[0].starts_with(
        "RESTORE DATABASE [sales_copy] FROM DISK = N'/var/opt/mssql/backups/rehydra/sales_full_"
    ));
    assert!(lines[0].ends_with("WITH NORECOVERY, CHECKSUM, MOVE N'sales' TO N'/var/opt/mssql/data/sales_copy.mdf', MOVE N'sales_log' TO N'/var/opt/mssql/data-log/sales_copy_log.ldf'"), "{}", lines[0]);
    assert!(lines[1].starts_with(
        "RESTORE LOG [sales_copy] FROM DISK = N'/var/opt/mssql/backups/rehydra/sales_log_"
    ));
    assert!(
        lines[1].ends_with("WITH NORECOVERY, CHECKSUM, STOPAT = N'2026-12-01T10:07:00.000'"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "RESTORE DATABASE [sales_copy] WITH RECOVERY");
    // without an endpoint or a staging folder it cannot run, and says what to give
    let plan = mock
        .plan_restore::<ArcSqlMi>(mock.restore_request("-", &[("database", "sales_copy")]))
        .unwrap();
    let b = plan.blockers.join(" | ");
    assert!(
        b.contains("add servers=arc/sqlmi1=<endpoint>")
            && b.contains("staging: give an absolute folder"),
        "{b}"
    );
    // the original name exists: a blocker, unless replace=true (then WITH REPLACE)
    let plan = mock
        .plan_restore::<ArcSqlMi>(mock.restore_request("-", &copies(&stage, &[])))
        .unwrap();
    assert!(
        plan.blockers
            .iter()
            .any(|b| b.contains("database `sales` exists on instance arc/sqlmi1")),
        "{:?}",
        plan.blockers
    );
    let plan = mock
        .plan_restore::<ArcSqlMi>(
            mock.restore_request("-", &copies(&stage, &[("replace", "true")])),
        )
        .unwrap();
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    assert!(
        plan.steps[2]
            .detail
            .contains("WITH NORECOVERY, CHECKSUM, REPLACE;"),
        "{}",
        plan.steps[2].detail
    );
    let e = mock
        .restore::<ArcSqlMi>(mock.restore_request("-", &copies(&stage, &[])))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        sim.borrow().restores.is_empty(),
        "a blocked restore runs nothing"
    );
    // verify: the chain is whole and every backup it names is in the point
    let v = mock
        .verify::<ArcSqlMi>(mock.restore_request("-", &[]))
        .unwrap();
    assert!(v.ok, "{:?}", v.findings);
}

#[test]
fn a_restore_from_copies_puts_the_backups_in_the_pod_runs_the_script_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = two_backups(&stage, &sim, dir.path());
    let report = mock
        .restore::<ArcSqlMi>(mock.restore_request(
            "-",
            &copies(
                &stage,
                &[
                    ("database", "sales_copy"),
                    ("stop-at", "2026-12-01T10:07:00"),
                ],
            ),
        ))
        .unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(report.bytes > 0);
    // the instance read the very bytes the backups wrote, in the chain's order
    let restores = sim.borrow().restores.clone();
    let statements: Vec<&str> = restores.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statements.len(), 3, "{statements:?}");
    assert!(statements[0].starts_with("RESTORE DATABASE [sales_copy] FROM DISK"));
    assert!(
        statements[1].starts_with("RESTORE LOG [sales_copy] FROM DISK")
            && statements[1].contains("STOPAT")
    );
    assert_eq!(statements[2], "RESTORE DATABASE [sales_copy] WITH RECOVERY");
    assert_eq!(
        restores[0].1.as_deref(),
        Some(&b"native D backup of sales"[..])
    );
    assert_eq!(
        restores[1].1.as_deref(),
        Some(&b"native L backup of sales"[..])
    );
    // (the restore's own commands) mkdir, then per backup: cp in and the staged copy
    // removed; then the pod's copies removed
    let cmds: Vec<String> = mock
        .commands()
        .iter()
        .map(|c| format!("{} {}", c.program, c.args.join(" ")))
        .collect();
    assert_eq!(cmds.len(), 7, "{cmds:#?}");
    assert!(
        cmds[0].ends_with("-- mkdir -p /var/opt/mssql/backups/rehydra"),
        "{}",
        cmds[0]
    );
    for (n, kind) in [(1, "full"), (3, "log")] {
        assert!(
            cmds[n].starts_with(&format!("kubectl cp {stage}/sales_{kind}_")),
            "{}",
            cmds[n]
        );
        assert!(
            cmds[n].contains(" arc/sqlmi1-0:/var/opt/mssql/backups/rehydra/sales_")
                && cmds[n].ends_with(" -c arc-sqlmi"),
            "{}",
            cmds[n]
        );
        assert!(
            cmds[n + 1].starts_with(&format!("rm -f -- {stage}/sales_{kind}_")),
            "{}",
            cmds[n + 1]
        );
    }
    assert!(
        cmds[5..]
            .iter()
            .all(|c| c.contains("-- rm -f /var/opt/mssql/backups/rehydra/sales_")),
        "{cmds:#?}"
    );
    assert!(sim.borrow().pod_files.is_empty(), "the pod keeps no copy");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "staging keeps no copy"
    );
}

#[test]
fn a_failed_restore_statement_says_where_the_database_stands_and_still_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = two_backups(&stage, &sim, dir.path());
    sim.borrow_mut().log_restore_fails = true;
    let e = mock
        .restore::<ArcSqlMi>(
            mock.restore_request("-", &copies(&stage, &[("database", "sales_copy")])),
        )
        .unwrap_err();
    assert!(
        e.message.contains("Msg 4305")
            && e.message
                .contains("while running: RESTORE LOG [sales_copy]")
            && e.message.contains("may be left RESTORING"),
        "{}",
        e.message
    );
    assert_eq!(
        sim.borrow().restores.len(),
        1,
        "the full ran, the log failed, nothing after"
    );
    assert!(
        sim.borrow().pod_files.is_empty(),
        "the pod's copies are removed after a failure too"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_chain_that_names_another_asset_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().to_str().unwrap().to_string();
    let sim = Sim::new(&[("sales", "FULL")]);
    let mock = host_with(&sim, dir.path());
    let o = [
        ("servers", "arc/sqlmi1=sqlmi1.contoso.local:31433"),
        ("staging", stage.as_str()),
    ];
    mock.backup::<ArcSqlMi>(backup_request("arc/sqlmi1/sales", &o))
        .unwrap();
    let chain = mock.item_bytes("chain.json").unwrap();
    let other = MockHost::new().grant("engine").with_point(
        MockPoint::new("arc/sqlmi1/payroll")
            .plugin("arc-sql-mi", "0.1.0")
            .document("chain.json", chain),
    );
    let e = other
        .plan_restore::<ArcSqlMi>(other.restore_request("-", &[]))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message
            .contains("names arc/sqlmi1/sales, but the point is of arc/sqlmi1/payroll"),
        "{}",
        e.message
    );
}
