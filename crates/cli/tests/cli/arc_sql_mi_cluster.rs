//! The arc-sql-mi plugin against the cluster and Azure, end to end through the CLI and the
//! host: instances found through the Kubernetes API (the API server stand-in serving the
//! Arc data services' CRDs, `support/kube_arcdata.py`, signed in to with the admin's
//! Azure sign-in) and through ARM (the replay server with Microsoft's examples, paged),
//! their databases read over TDS (the SQL Server stand-in), assessed; then a database
//! restored to a moment by the instance's own point-in-time restore: the
//! `SqlManagedInstanceRestoreTask`s the plugin creates, carried out by the stand-in's data
//! controller against the instance's msdb.

use serde_json::{Value, json};

use crate::arc_sql_mi::{Mi, point_of};
use crate::kubernetes::{AKS_AUDIENCE, Cluster};
use crate::sql_server::text;
use crate::support::{self, Arm, json_out};

const SUB: &str = "00000000-1111-2222-3333-444444444444";

fn prop(a: &Value, n: &str) -> Option<String> {
    a["properties"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == n)
        .map(|p| p["value"].as_str().unwrap_or_default().to_string())
}

fn asset<'a>(assets: &'a Value, id: &str) -> &'a Value {
    assets
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no asset {id}: {assets:#}"))
}

/// The instances as the cluster holds them (stored in the CRD's storage version, v2):
/// `sqlmi1` serving, its endpoint where later data services versions put it; `sqlmi2`
/// with its built-in backups off and not Ready.
fn cluster_state(sql_state: &std::path::Path, endpoint: &str) -> Value {
    let mi = |name: &str, spec: Value, status: Value| {
        json!({"apiVersion": "sql.arcdata.microsoft.com/v2", "kind": "SqlManagedInstance",
            "metadata": {"name": name, "namespace": "arc"}, "spec": spec, "status": status})
    };
    json!({"arcdata_api": true, "page": 1, "arcdata_sql": {"arc/sqlmi1": sql_state}, "objects": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "arc"}},
        mi("sqlmi1", json!({"tier": "GeneralPurpose", "replicas": 1, "dev": true, "backup": {"retentionPeriodInDays": 7}}),
            json!({"state": "Ready", "readyReplicas": "1/1", "endpoints": {"primary": endpoint, "mirroring": "10.0.0.9:5022"}})),
        mi("sqlmi2", json!({"tier": "BusinessCritical", "replicas": 3, "backup": {"retentionPeriodInDays": 0}}),
            json!({"state": "Error", "readyReplicas": "2/3", "primaryEndpoint": "10.0.0.12,31433"})),
    ]})
}

/// ARM: Microsoft's two examples, and `sqlmi1` as ARM shows it (its k8sRaw names the namespace).
fn arm() -> Arm {
    let arm = Arm::start();
    let list = support::fixture("arc-sql-mi/azurearcdata-ListSubscriptionSqlManagedInstance.json");
    for v in list["responses"]["200"]["body"]["value"]
        .as_array()
        .unwrap()
    {
        arm.put_resource(v["id"].as_str().unwrap(), v.clone());
    }
    let id = format!(
        "/subscriptions/{SUB}/resourceGroups/hci-rg/providers/Microsoft.AzureArcData/sqlManagedInstances/sqlmi1"
    );
    arm.put_resource(
        &id,
        json!({"id": id, "name": "sqlmi1", "type": "Microsoft.AzureArcData/sqlManagedInstances",
            "sku": {"name": "vCore", "tier": "GeneralPurpose"},
            "properties": {"k8sRaw": {"metadata": {"name": "sqlmi1", "namespace": "arc"}}}}),
    );
    arm
}

#[test]
#[allow(clippy::too_many_lines)]
fn instances_found_on_the_cluster_and_in_azure_and_a_database_restored_by_the_instance() {
    let mi = Mi::start();
    let (cli, sql, server) = (&mi.cli, &mi.sql, &mi.server);
    let endpoint = server.replace(':', ",");
    let k8s = Cluster::start(
        &mi.dir.join("k8s"),
        "127.0.0.7",
        &cluster_state(&mi.dir.join("sql/state"), &endpoint),
    );
    let arm = arm();
    mi.grant(&[
        &k8s.grant(),
        &format!("http:{}", arm.base.trim_start_matches("http://")),
    ]);
    let kube = k8s.kube();
    let (servers, _) = mi.settings();
    let arm_at = format!("arm={}", arm.base);
    let subs = format!("subscriptions={SUB}");
    let run = |args: &[&str]| mi.run(args);
    let found = |verb: &str| {
        run(&[
            verb,
            "--set",
            &kube,
            "--set",
            "namespaces=arc",
            "--set",
            &servers,
            "--set",
            &subs,
            "--set",
            &arm_at,
        ])
    };

    // ---- the API server wants a token for its own audience: 401 until the admin adds it
    let o = found("discover");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("401"), "{}", text(&o));
    cli.ok(
        None,
        &["azure", "audience", "add", "127.0.0.7", AKS_AUDIENCE],
    );

    // ---- the instance's own schedule: a full and two logs
    let own = |level: &str, n: u32| mi.own(level, n);
    own("full", 1);
    // a whole second on: the restore point, in whole seconds, falls after the full
    std::thread::sleep(std::time::Duration::from_millis(1100));
    own("log", 2);
    own("log", 3);

    // ---- discover: the cluster's instances (read through v1, one a page), ARM's merged
    // in, the databases of the one whose endpoint is configured
    let assets = json_out(&found("discover"));
    let mi1 = asset(&assets, "arc/sqlmi1");
    assert_eq!(prop(mi1, "tier").as_deref(), Some("GeneralPurpose"));
    assert_eq!(prop(mi1, "retention-days").as_deref(), Some("7"));
    assert_eq!(prop(mi1, "state").as_deref(), Some("Ready"));
    assert_eq!(prop(mi1, "endpoint"), Some(endpoint.clone()));
    assert!(
        prop(mi1, "arm-id")
            .unwrap()
            .ends_with("/hci-rg/providers/Microsoft.AzureArcData/sqlManagedInstances/sqlmi1"),
        "{mi1}"
    );
    let mi2 = asset(&assets, "arc/sqlmi2");
    assert!(
        prop(mi2, "built-in-backups").unwrap().starts_with("off"),
        "{mi2}"
    );
    assert_eq!(prop(mi2, "sql-endpoint"), None);
    for only_arm in ["sqlManagedInstance1", "sqlManagedInstance2"] {
        let a = asset(&assets, only_arm);
        assert!(prop(a, "namespace").unwrap().starts_with("unknown"), "{a}");
    }
    let sales = asset(&assets, "arc/sqlmi1/sales");
    let second = |i: usize| mi.finished(i).format("%Y-%m-%dT%H:%M:%S").to_string();
    // (to the second: msdb's datetime keeps 1/300 s)
    let window = prop(sales, "built-in-window").unwrap();
    assert!(
        window.starts_with(&format!("from {}", second(0)))
            && window.contains(&format!(" to {}", second(2)))
            && window.ends_with("(the instance's clock: its own backups as msdb lists them, within its 7 day(s) of retention)"),
        "{window}"
    );
    assert!(
        prop(sales, "last-full").unwrap().ends_with("(instance)"),
        "{sales}"
    );
    assert!(
        prop(sales, "last-log").unwrap().ends_with("(instance)"),
        "{sales}"
    );
    assert_eq!(
        prop(asset(&assets, "arc/sqlmi1/hr"), "recovery-model").as_deref(),
        Some("SIMPLE")
    );
    let calls = k8s.calls();
    let lists: Vec<&String> = calls
        .iter()
        .filter(|c| {
            c.starts_with(
                "GET /apis/sql.arcdata.microsoft.com/v1/namespaces/arc/sqlmanagedinstances?",
            )
        })
        .collect();
    assert!(
        lists
            .iter()
            .any(|c| c.contains("&continue=") && c.ends_with(" 200")),
        "paged with continue tokens: {calls:#?}"
    );
    let pages: Vec<_> = arm
        .calls()
        .into_iter()
        .filter(|c| {
            c.path
                .ends_with("/providers/Microsoft.AzureArcData/sqlManagedInstances")
        })
        .collect();
    assert_eq!(
        pages.len(),
        3,
        "one instance a page, through nextLink: {pages:#?}"
    );
    assert!(
        pages
            .iter()
            .all(|c| c.api == "2026-01-01" && c.auth == "Bearer test-token" && c.status == 200),
        "{pages:#?}"
    );

    // ---- assess
    let findings = json_out(&found("assess"));
    let about = |asset: &str, rule: &str| {
        findings
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["asset"] == asset && f["rule"] == rule)
    };
    for (a, rule) in [
        ("arc/sqlmi1", "arcsqlmi.backups-on-cluster"),
        ("arc/sqlmi1", "arcsqlmi.single-replica"),
        ("arc/sqlmi2", "arcsqlmi.pitr-off"),
        ("arc/sqlmi2", "arcsqlmi.not-ready"),
        ("arc/sqlmi2", "arcsqlmi.no-sql-endpoint"),
        ("arc/sqlmi1/hr", "arcsqlmi.simple-recovery"),
    ] {
        assert!(about(a, rule), "{a} {rule}: {findings:#}");
    }
    assert!(
        !about("arc/sqlmi1/sales", "arcsqlmi.no-full-backup"),
        "{findings:#}"
    );

    // ---- a point of the instance's own backups, copied off the cluster
    let point = point_of(&mi.backup("built-in"));

    // ---- the built-in restore: the window is what msdb lists, from the full to the last log
    let at = |i: usize| mi.finished(i);
    let utc = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let built_in = |stop: &str, database: &str, plan_only: bool| {
        let stop = format!("stop-at={stop}");
        let db = format!("database={database}");
        let mut a = vec![
            "restore",
            &point,
            "--target",
            "-",
            "--set",
            "mode=built-in",
            "--set",
            &kube,
            "--set",
            &servers,
            "--set",
            &stop,
            "--set",
            &db,
            "--set",
            "poll-secs=2",
        ];
        if plan_only {
            a.push("--plan-only");
        }
        run(&a)
    };
    let before = at(0) - chrono::Duration::seconds(60);
    let o = built_in(&utc(before), "sales_pitr", true);
    let t = text(&o);
    assert!(
        t.contains("refuses the restore: Failed: '")
            && t.contains("' is outside the range of available backups from '"),
        "the instance's dry run refuses a moment before its full: {t}"
    );
    // in whole seconds, as the task takes it: after the full, not after the last log
    let inside = at(2).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let o = built_in(&inside, "sales_pitr", true);
    let plan = json_out(&o);
    let shown = plan.to_string();
    assert!(shown.contains("Dry run succeeded"), "{plan:#}");
    let window = format!(
        "the built-in backups reach from {} to {}",
        at(0).format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        at(2).format("%Y-%m-%dT%H:%M:%S%.6fZ")
    );
    assert!(shown.contains(&window), "{window}: {plan:#}");
    let tasks = || {
        k8s.state()["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "SqlManagedInstanceRestoreTask")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        tasks().is_empty(),
        "the dry-run tasks are deleted: {:#?}",
        tasks()
    );
    assert!(
        !sql.table("databases.json")
            .iter()
            .any(|d| d["name"] == "sales_pitr"),
        "a plan restores nothing"
    );

    // ---- the restore: the task runs to Completed, the database is on the instance
    let o = built_in(&inside, "sales_pitr", false);
    assert!(o.status.success(), "{}", text(&o));
    let task = tasks();
    assert_eq!(task.len(), 1, "{task:#?}");
    assert_eq!(task[0]["status"]["state"], "Completed");
    assert_eq!(task[0]["spec"]["restorePoint"], inside.as_str());
    assert_eq!(
        task[0]["spec"]["destination"],
        json!({"name": "sqlmi1", "database": "sales_pitr"})
    );
    let dbs = sql.table("databases.json");
    let restored = dbs
        .iter()
        .find(|d| d["name"] == "sales_pitr")
        .expect("sales_pitr");
    assert_eq!(restored["state_desc"], "ONLINE");
    let assets = json_out(&found("discover"));
    asset(&assets, "arc/sqlmi1/sales_pitr");

    // ---- again to the same name: the plugin finds it on the instance first
    let o = built_in(&inside, "sales_pitr", false);
    assert!(!o.status.success());
    assert!(text(&o).contains("exists on arc/sqlmi1"), "{}", text(&o));

    // ---- off the cluster on a schedule: a policy copies what the instance took since
    let (servers, staging) = mi.settings();
    let policy = |args: &[&str]| {
        mi.cli
            .cmd(Some(&mi.bin))
            .env("SQL_PW", crate::sql_server::PASSWORD)
            .args(args)
            .output()
            .unwrap()
    };
    let o = policy(&[
        "policy",
        "add",
        "mi-copies",
        "--plugin",
        "arc-sql-mi",
        "--asset",
        "arc/sqlmi1/sales",
        "--set",
        "level=built-in",
        "--set",
        &servers,
        "--set",
        &staging,
        "--every-hours",
        "1",
        "--keep-last",
        "48",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let copies = || {
        std::fs::read_to_string(mi.dir.join("kube/exec.log"))
            .unwrap()
            .matches("\"stat\", \"-c\", \"%F %s\", \"--\"")
            .count()
    };
    let before = copies();
    own("log", 4);
    let runs = json_out(&policy(&["--json", "policy", "run", "mi-copies"]));
    assert_eq!(
        runs[0]["restore_points"][0]["asset"], "arc/sqlmi1/sales",
        "{runs}"
    );
    assert_eq!(copies(), before + 1, "only the new log is copied");
}
