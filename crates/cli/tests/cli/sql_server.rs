//! The sql-server plugin end to end through the CLI, against a TDS server with TLS:
//! pysqlbridge answering the catalog views and msdb from JSON, with our stand-in
//! (`support/sql_standin.py`) doing what SQL Server does on BACKUP and RESTORE (files,
//! msdb rows, LSNs, its errors). The tests also check the exact statements sent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{self, Cli, json_out};

pub(crate) const PASSWORD: &str = "Str0ng!pass'word";

pub(crate) struct StandIn {
    state: PathBuf,
    child: Child,
    port: u16,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

impl StandIn {
    pub(crate) fn start(dir: &Path, tls: &Path) -> Self {
        Self::start_with(dir, tls, |_| {})
    }

    /// [`Self::start`], `more` adding to its command (a Kerberos keytab).
    pub(crate) fn start_with(dir: &Path, tls: &Path, more: impl FnOnce(&mut Command)) -> Self {
        let state = dir.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let d = data.display();
        write(
            &state.join("databases.json"),
            &json!([
                {"name": "sales", "database_id": 5, "recovery_model_desc": "FULL", "state_desc": "ONLINE", "compatibility_level": 160, "is_encrypted": false, "group_database_id": null, "create_date": "2026-01-05T09:00:00"},
                {"name": "hr", "database_id": 6, "recovery_model_desc": "SIMPLE", "state_desc": "ONLINE", "compatibility_level": 150, "is_encrypted": true, "group_database_id": null, "create_date": "2026-01-05T09:00:00"},
                {"name": "legacy", "database_id": 7, "recovery_model_desc": "FULL", "state_desc": "ONLINE", "compatibility_level": 130, "is_encrypted": false, "group_database_id": null, "create_date": "2020-01-05T09:00:00"}
            ]),
        );
        write(
            &state.join("master_files.json"),
            &json!([
                {"database_id": 5, "file_id": 1, "type": 0, "type_desc": "ROWS", "name": "sales", "physical_name": format!("{d}/sales.mdf"), "size": 2048},
                {"database_id": 5, "file_id": 2, "type": 1, "type_desc": "LOG", "name": "sales_log", "physical_name": format!("{d}/sales_log.ldf"), "size": 512},
                {"database_id": 6, "file_id": 1, "type": 0, "type_desc": "ROWS", "name": "hr", "physical_name": format!("{d}/hr.mdf"), "size": 256}
            ]),
        );
        // legacy: another product's full, then its logs with one missing between them
        let fork = "3b085538-ee7b-46ac-9b63-1916d40a59cf";
        let set = |id: u32,
                   kind: &str,
                   first: &str,
                   last: &str,
                   ckpt: &str,
                   base: &str,
                   at: &str| {
            json!({"backup_set_id": id, "backup_set_uuid": format!("00000000-0000-4000-8000-00000000000{id}"), "media_set_id": id,
                "database_name": "legacy", "type": kind, "is_copy_only": false, "first_lsn": first, "last_lsn": last,
                "checkpoint_lsn": ckpt, "database_backup_lsn": base, "differential_base_lsn": null,
                "first_recovery_fork_guid": fork, "last_recovery_fork_guid": fork,
                "backup_start_date": at, "backup_finish_date": at, "backup_size": 1000, "has_backup_checksums": true,
                "server_name": "SQL01", "user_name": "CONTOSO\\dba", "name": "nightly", "description": null})
        };
        write(
            &state.join("backupset.json"),
            &json!([
                set(
                    1,
                    "D",
                    "34000000006900179",
                    "34000000014400001",
                    "34000000006900179",
                    "0",
                    "2026-11-01T01:00:00"
                ),
                set(
                    2,
                    "L",
                    "34000000006900179",
                    "34000000016800001",
                    "34000000006900179",
                    "34000000006900179",
                    "2026-11-01T02:00:00"
                ),
                set(
                    3,
                    "L",
                    "34000000019700001",
                    "34000000021300001",
                    "34000000006900179",
                    "34000000006900179",
                    "2026-11-01T04:00:00"
                )
            ]),
        );
        write(
            &state.join("backupmediafamily.json"),
            &json!((1..=3).map(|i| json!({"media_set_id": i, "family_sequence_number": 1, "physical_device_name": format!("X:\\backup\\legacy_{i}.bak"), "device_type": 2})).collect::<Vec<_>>()),
        );
        let port_file = dir.join("port");
        let mut standin = Command::new(cache().join("venv/bin/python"));
        standin
            .arg(support::root().join("crates/cli/tests/cli/support/sql_standin.py"))
            .args(["--state", state.to_str().unwrap()])
            .args(["--cert", tls.join("srv.pem").to_str().unwrap()])
            .args(["--key", tls.join("srv.key").to_str().unwrap()])
            .args(["--user", "rehydra", "--password-env", "STANDIN_PW"])
            .args(["--port-file", port_file.to_str().unwrap()])
            .env("STANDIN_PW", PASSWORD);
        more(&mut standin);
        let child = standin
            .spawn()
            .expect("the SQL Server stand-in (pysqlbridge in the venv scripts/setup.sh makes)");
        let t = Instant::now();
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse::<u16>().unwrap();
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the stand-in did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        Self { state, child, port }
    }

    pub(crate) fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn table(&self, name: &str) -> Vec<Value> {
        serde_json::from_slice::<Value>(&std::fs::read(self.state.join(name)).unwrap())
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    pub(crate) fn edit(&self, name: &str, f: impl FnOnce(&mut Vec<Value>)) {
        let mut rows = self.table(name);
        f(&mut rows);
        let tmp = self.state.join(format!("{name}.tmp"));
        write(&tmp, &json!(rows));
        std::fs::rename(tmp, self.state.join(name)).unwrap();
    }

    /// Every statement sent, in order (batches and RPCs), with its parameters.
    pub(crate) fn statements(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state.join("statements.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A CLI with a repository and the stand-in for `host`, its files under `<cli>/sql`
/// (certificates in `tls/`, the staging folder in `stage/`): the CLI, the stand-in, that
/// folder and the `staging=` setting.
pub(crate) fn with_standin(host: &str) -> (Cli, StandIn, PathBuf, String) {
    let cli = Cli::new(&["sql-server"]);
    cli.init_repo();
    let dir = cli.dir.path().join("sql");
    let tls = dir.join("tls");
    support::certificates(&tls, host);
    let sql = StandIn::start(&dir, &tls);
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let staging = format!("staging={}", stage.display());
    (cli, sql, dir, staging)
}

/// `plugins sql-server add NAME` with the test login and the stand-in's CA (`dir/tls`),
/// and `more`.
pub(crate) fn add_with(cli: &Cli, name: &str, dir: &Path, more: &[&str]) -> Output {
    let ca = dir.join("tls/ca.pem");
    let mut a = vec!["plugins", "sql-server", "add", name, "--login", "rehydra"];
    a.extend([
        "--password-env",
        "SQL_PW",
        "--ca-file",
        ca.to_str().unwrap(),
    ]);
    a.extend(more);
    run(cli, &a)
}

/// [`add_with`], kept without connecting first.
pub(crate) fn add_instance(cli: &Cli, name: &str, dir: &Path) {
    let o = add_with(cli, name, dir, &["--no-check"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Grant the sql-server plugin the engine, `servers`, and `dir` to stage backups in.
pub(crate) fn grant(cli: &Cli, servers: &[&str], dir: &Path) {
    let mut grants = vec!["engine".to_string()];
    grants.extend(servers.iter().map(|s| format!("sql:{s}")));
    grants.push(format!("files:{}", dir.display()));
    grants.push(format!("files-write:{}", dir.display()));
    let mut a = vec!["plugins", "grant", "sql-server"];
    a.extend(grants.iter().map(String::as_str));
    cli.ok(None, &a);
}

fn cache() -> PathBuf {
    PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/rehydra")
}

pub(crate) fn run(cli: &Cli, args: &[&str]) -> Output {
    cli.cmd(None)
        .env("SQL_PW", PASSWORD)
        .args(args)
        .output()
        .unwrap()
}

/// `rehydra --json plugins run sql-server <args>`.
pub(crate) fn plugin(cli: &Cli, args: &[&str]) -> Output {
    run(
        cli,
        &[&["--json", "plugins", "run", "sql-server"][..], args].concat(),
    )
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn point_id(v: &Value) -> String {
    v.get("restore_point").unwrap_or(v)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The database asset `name` of a discovery's answer.
pub(crate) fn database(assets: &Value, name: &str) -> Value {
    assets
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "database" && a["name"] == name)
        .unwrap_or_else(|| panic!("{name}: {assets}"))
        .clone()
}

pub(crate) fn prop(a: &Value, n: &str) -> Option<String> {
    a["properties"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == n)
        .map(|p| p["value"].as_str().unwrap().to_string())
}

#[test]
fn sql_server_databases_backed_up_as_chains_and_restored_to_a_moment() {
    let (cli, sql, dir, staging) = with_standin("sql01.test.lan");
    let server = sql.server();
    let stage = dir.join("stage");

    // ---- configuring the instance: the certificate is verified, the login checked
    let add = |extra: &[&str]| {
        let mut a = vec![
            "plugins",
            "sql-server",
            "add",
            &server,
            "--login",
            "rehydra",
            "--password-env",
            "SQL_PW",
        ];
        a.extend(extra);
        run(&cli, &a)
    };
    let untrusted = add(&[]);
    assert!(
        !untrusted.status.success(),
        "a certificate the system does not trust is refused"
    );
    assert!(
        text(&untrusted).contains("nothing was kept"),
        "{}",
        text(&untrusted)
    );
    let ca = dir.join("tls/ca.pem");
    let add_as = |name: &str| add_with(&cli, name, &dir, &[]);
    let o = add(&["--ca-file", ca.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("signed in to"), "{}", text(&o));

    // ---- not granted yet: discovery names the grant to give
    let go = |args: &[&str]| plugin(&cli, args);
    let servers = format!("servers={server}");
    let denied = json_out(&go(&["discover", "--set", &servers]));
    let inst = &denied.as_array().unwrap()[0];
    assert!(
        prop(inst, "unreachable")
            .unwrap()
            .contains(&format!("sql:{server}")),
        "{denied}"
    );
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "sql-server",
            "engine",
            &format!("sql:{server}"),
            &format!("files:{}", dir.display()),
            &format!("files-write:{}", dir.display()),
        ],
    );

    // ---- discover and assess
    let assets = json_out(&go(&["discover", "--set", &servers]));
    // the host's T-SQL statements are debug lines: on standard error with --verbose only
    let loud = text(&go(&["discover", "--set", &servers, "--verbose"]));
    assert!(loud.contains("] Debug: host: sql"), "{loud}");
    let quiet = text(&go(&["discover", "--set", &servers]));
    assert!(!quiet.contains("] Debug: "), "{quiet}");
    let db = |name: &str| database(&assets, name);
    assert_eq!(prop(&db("hr"), "recovery-model").as_deref(), Some("SIMPLE"));
    assert_eq!(prop(&db("hr"), "tde").as_deref(), Some("true"));
    assert_eq!(prop(&db("sales"), "size-mib").as_deref(), Some("20"));
    assert!(
        prop(&db("legacy"), "last-full").unwrap().contains("other"),
        "{assets}"
    );
    assert!(
        prop(&db("legacy"), "chain").unwrap().contains("problem"),
        "{assets}"
    );
    let findings = json_out(&go(&["assess", "--set", &servers]));
    let about = |asset: &str, rule: &str| {
        findings.as_array().unwrap().iter().any(|f| {
            f["asset"] == format!("{server}/{asset}")
                && f["rule"].as_str().unwrap().starts_with(rule)
        })
    };
    assert!(
        about("sales", "sql.no-full-backup")
            && about("hr", "sql.simple-recovery")
            && about("hr", "sql.tde"),
        "{findings}"
    );
    let gap = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["asset"] == format!("{server}/legacy")
                && f["title"].as_str().unwrap().contains("broken")
        })
        .unwrap_or_else(|| panic!("the log gap: {findings}"));
    assert!(
        gap["detail"].as_str().unwrap().contains("2026-11-01"),
        "{gap}"
    );

    // ---- backups: full, logs, a differential, more logs; each point keeps the chain
    let asset = format!("{server}/sales");
    let backup = |level: &str| {
        let l = format!("level={level}");
        go(&["backup", "--asset", &asset, "--set", &l, "--set", &staging])
    };
    let o = backup("log");
    assert!(
        !o.status.success() && text(&o).contains("no full backup"),
        "{}",
        text(&o)
    );
    let mut points = Vec::new();
    for level in ["full", "log", "log", "diff", "log", "log"] {
        let o = backup(level);
        points.push(point_id(&json_out(&o)));
    }
    let sets: Vec<Value> = sql
        .table("backupset.json")
        .into_iter()
        .filter(|s| s["database_name"] == "sales")
        .collect();
    assert_eq!(
        sets.iter()
            .map(|s| s["type"].as_str().unwrap())
            .collect::<String>(),
        "DLLILL"
    );
    assert!(
        sets.iter().all(|s| s["has_backup_checksums"] == true
            && s["name"].as_str().unwrap().starts_with("Rehydra"))
    );
    let sent = sql.statements();
    let backups: Vec<&Value> = sent
        .iter()
        .filter(|s| s["sql"].as_str().unwrap().starts_with("BACKUP"))
        .collect();
    assert_eq!(
        backups[0]["sql"],
        "BACKUP DATABASE @P1 TO DISK = @P2 WITH CHECKSUM, INIT, FORMAT, NAME = @P3",
        "{:?}",
        backups[0]
    );
    assert!(
        backups
            .iter()
            .any(|b| b["sql"].as_str().unwrap().ends_with(", DIFFERENTIAL"))
    );
    assert!(
        backups.iter().all(|b| b["kind"] == "rpc"),
        "values go as parameters"
    );
    assert_eq!(
        std::fs::read_dir(&stage).unwrap().count(),
        0,
        "staged files are removed once stored"
    );
    let last = points.last().unwrap().clone();
    let shown: Value = serde_json::from_str(&cli.ok(None, &["--json", "snapshots"])).unwrap();
    let point = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["id"]
                .as_str()
                .is_some_and(|i| last.starts_with(i) || i.starts_with(&last))
        })
        .unwrap_or_else(|| panic!("{shown}"))
        .to_string();
    assert_eq!(
        point.matches("backups/sales_").count(),
        6,
        "the last point keeps the whole chain: {point}"
    );

    // ---- a SIMPLE database has no log to back up: refused before anything runs
    let o = go(&[
        "backup",
        "--asset",
        &format!("{server}/hr"),
        "--set",
        "level=log",
        "--set",
        &staging,
    ]);
    assert!(
        !o.status.success() && text(&o).contains("SIMPLE"),
        "{}",
        text(&o)
    );

    // ---- a full someone else took: a differential now would be useless, so refused
    sql.edit("backupset.json", |rows| {
        let mut foreign = rows
            .iter()
            .rev()
            .find(|r| r["database_name"] == "sales" && r["type"] == "D")
            .unwrap()
            .clone();
        foreign["backup_set_id"] = json!(100);
        foreign["media_set_id"] = json!(100);
        foreign["backup_set_uuid"] = json!("00000000-0000-4000-8000-000000000100");
        foreign["checkpoint_lsn"] = json!("99000000000000000000001");
        foreign["first_lsn"] = json!("99000000000000000000001");
        foreign["last_lsn"] = json!("99000000000000000000009");
        foreign["name"] = json!("OtherProduct");
        foreign["user_name"] = json!("CONTOSO\\backupsvc");
        foreign["backup_finish_date"] = json!("2099-01-01T00:00:00.000");
        rows.push(foreign);
    });
    sql.edit("backupmediafamily.json", |rows| rows.push(json!({"media_set_id": 100, "family_sequence_number": 1, "physical_device_name": "\\\\nas\\other\\sales.bak", "device_type": 2})));
    let o = backup("diff");
    assert!(
        !o.status.success()
            && text(&o)
                .replace("\\\\", "\\")
                .contains("CONTOSO\\backupsvc"),
        "{}",
        text(&o)
    );
    sql.edit("backupset.json", |rows| {
        rows.retain(|r| r["backup_set_id"] != 100)
    });

    // ---- restore to a moment between the second and third log, under another name
    let times: Vec<String> = sets
        .iter()
        .map(|s| s["backup_finish_date"].as_str().unwrap().to_string())
        .collect();
    // inside the log after the differential: halfway between the differential's end and
    // that log's (msdb keeps datetime to 1/300 s; the two may be less than 300 ms apart)
    let at = |t: &str| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").unwrap();
    let (diff_end, log_end) = (at(&times[3]), at(&times[4]));
    assert!(
        log_end - diff_end >= chrono::Duration::milliseconds(20),
        "the log ends after the differential: {times:?}"
    );
    let moment = (diff_end + (log_end - diff_end) / 2)
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string();
    // ---- the moments the point reaches, as the wizard's search beside stop-at lists them:
    // the newest first, each one a restore plans to
    let listed = |extra: &[&str]| {
        let mut a = vec!["restore", last.as_str(), "--target", "-", "--set", &staging];
        a.extend(extra);
        go(&a)
    };
    let day = format!("moments={}", &times[0][..10]);
    let found = json_out(&listed(&["--set", &day, "--plan-only"]));
    let picks: Vec<String> = found["plan"]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{found}"))
        .iter()
        .filter_map(|s| s["id"].as_str()?.strip_prefix("pick:").map(str::to_string))
        .collect();
    let newest = times.iter().max().unwrap();
    assert!(
        picks.len() >= 3 && picks[0][..19] == newest[..19],
        "{picks:?} {times:?}"
    );
    let at_pick = format!("stop-at={}", picks[1]);
    let o = listed(&[
        "--set",
        &at_pick,
        "--set",
        "database=sales_copy",
        "--plan-only",
    ]);
    assert!(o.status.success(), "a listed moment plans: {}", text(&o));
    assert!(
        !listed(&["--set", &day]).status.success(),
        "a listing restores nothing"
    );
    let stop = format!("stop-at={moment}");
    let restore = |extra: &[&str]| {
        let mut a = vec![
            "restore",
            last.as_str(),
            "--target",
            "-",
            "--set",
            &staging,
            "--set",
            &stop,
        ];
        a.extend(extra);
        go(&a)
    };
    let plan = json_out(&restore(&["--set", "database=sales_copy", "--plan-only"]));
    let p = plan.to_string();
    assert!(
        p.contains("full backup finished") && p.contains("diff backup finished"),
        "{p}"
    );
    assert!(
        p.contains("RESTORE DATABASE [sales_copy]")
            && p.contains("MOVE N'sales' TO N'")
            && p.contains("sales_copy.mdf"),
        "{p}"
    );
    assert!(p.contains(&format!("STOPAT = N'{}", &moment[..19])), "{p}");
    assert_eq!(
        p.matches("RESTORE LOG").count(),
        1,
        "only the log after the differential is needed: {p}"
    );
    assert!(
        !sql.table("databases.json")
            .iter()
            .any(|d| d["name"] == "sales_copy"),
        "a plan writes nothing"
    );
    let o = restore(&["--set", "database=sales_copy"]);
    assert!(o.status.success(), "{}", text(&o));
    let copy = sql
        .table("databases.json")
        .into_iter()
        .find(|d| d["name"] == "sales_copy")
        .expect("restored");
    assert_eq!(copy["state_desc"], "ONLINE");
    let restores: Vec<String> = sql
        .statements()
        .iter()
        .map(|s| s["sql"].as_str().unwrap().to_string())
        .filter(|s| s.starts_with("RESTORE"))
        .collect();
    assert_eq!(
        restores.len(),
        4,
        "full, differential, one log, recovery: {restores:?}"
    );
    assert!(
        restores[3] == "RESTORE DATABASE [sales_copy] WITH RECOVERY",
        "{restores:?}"
    );
    assert_eq!(
        std::fs::read_dir(&stage).unwrap().count(),
        0,
        "staged files are removed after the restore"
    );

    // ---- to another instance (the same stand-in, configured a second time as localhost):
    // the files go where that instance puts new databases
    let far = format!("localhost:{}", sql.port);
    let o = add_as(&far);
    assert!(o.status.success(), "{}", text(&o));
    cli.ok(
        None,
        &["plugins", "grant", "sql-server", &format!("sql:{far}")],
    );
    let (data, log) = (dir.join("far/data"), dir.join("far/log"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&log).unwrap();
    write(
        &sql.state.join("server_properties.json"),
        &json!({"InstanceDefaultDataPath": format!("{}/", data.display()), "InstanceDefaultLogPath": format!("{}/", log.display())}),
    );
    let to_far = format!("server={far}");
    let plan = json_out(&restore(&[
        "--set",
        &to_far,
        "--set",
        "database=sales_far",
        "--plan-only",
    ]));
    assert!(
        plan.to_string().contains("default folders"),
        "the plan says where the files go: {plan}"
    );
    let o = restore(&["--set", &to_far, "--set", "database=sales_far"]);
    assert!(o.status.success(), "{}", text(&o));
    let id = sql
        .table("databases.json")
        .into_iter()
        .find(|d| d["name"] == "sales_far")
        .expect("restored")["database_id"]
        .clone();
    let placed: Vec<String> = sql
        .table("master_files.json")
        .into_iter()
        .filter(|f| f["database_id"] == id)
        .map(|f| f["physical_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(placed.len(), 2, "{placed:?}");
    assert!(
        placed
            .iter()
            .any(|p| p.starts_with(&format!("{}/sales_far", data.display())))
            && placed
                .iter()
                .any(|p| p.starts_with(&format!("{}/sales_far", log.display()))),
        "data and log files in the instance's default folders, under the new name: {placed:?}"
    );

    // ---- over the original: refused without consent
    let o = restore(&[]);
    assert!(
        !o.status.success() && text(&o).contains("replace=true"),
        "{}",
        text(&o)
    );

    // ---- before the first full: nothing reaches it, and the plan says what does
    let early = go(&[
        "restore",
        &last,
        "--target",
        "-",
        "--set",
        &staging,
        "--set",
        "stop-at=2020-01-01T00:00:00",
        "--set",
        "database=x",
        "--plan-only",
    ]);
    assert!(text(&early).contains(&times[0][..10]), "{}", text(&early));

    // ---- as files for a DBA: the chosen backups and restore.sql
    let dba = dir.join("dba");
    std::fs::create_dir_all(&dba).unwrap();
    let mut a = vec![
        "restore",
        last.as_str(),
        "--target",
        dba.to_str().unwrap(),
        "--set",
        "mode=files",
        "--set",
        &stop,
    ];
    a.insert(0, "sql-server");
    a.insert(0, "run");
    a.insert(0, "plugins");
    a.insert(0, "--json");
    let o = run(&cli, &a);
    assert!(o.status.success(), "{}", text(&o));
    let script = std::fs::read_to_string(dba.join("restore.sql")).unwrap();
    assert!(
        script.contains("RESTORE DATABASE [sales] FROM DISK = N'./sales_full_")
            && script.contains("\nGO\n"),
        "{script}"
    );
    assert_eq!(
        std::fs::read_dir(&dba).unwrap().count(),
        4,
        "full, differential, log and the script"
    );

    // ---- verify: the point's chain is whole; without staging the instance reads nothing
    let v = json_out(&go(&["verify", &last]));
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "sql.verifyonly-skipped"),
        "{v}"
    );

    // ---- verify with staging: the instance reads every backup a restore would use
    let before = sql.statements().len();
    let v = json_out(&go(&["verify", &last, "--set", &staging]));
    assert_eq!(v["ok"], true, "{v}");
    let read: Vec<Value> = sql.statements()[before..]
        .iter()
        .filter(|s| s["sql"] == "RESTORE VERIFYONLY FROM DISK = @P1 WITH CHECKSUM")
        .cloned()
        .collect();
    assert_eq!(
        read.len(),
        4,
        "the full, the differential and the two logs after it read back: {read:?}"
    );
    assert!(read.iter().all(|s| s["error"].is_null()), "{read:?}");
    assert_eq!(
        std::fs::read_dir(&stage).unwrap().count(),
        0,
        "the staged copies are removed"
    );

    // ---- staged where the instance does not look: verify fails and says which backup
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let map = format!("path-map={}={}", stage.display(), elsewhere.display());
    let o = go(&["verify", &last, "--set", &staging, "--set", &map]);
    assert_eq!(o.status.code(), Some(14), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    let failed: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "sql.verifyonly-failed")
        .collect();
    assert_eq!(failed.len(), 4, "{v}");
    assert!(
        failed[0]["detail"].as_str().unwrap().contains("3201"),
        "SQL Server's cannot-open-device error: {v}"
    );

    // ---- a setting verify does not know is refused, naming it
    let o = go(&["verify", &last, "--set", "level=full"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("level"), "{}", text(&o));
}
