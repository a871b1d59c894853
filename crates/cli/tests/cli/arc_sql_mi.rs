//! The arc-sql-mi plugin end to end through the CLI and the host: the SQL Server stand-in
//! (`support/sql_standin.py`, TDS with TLS) running as if in the instance's pod, whose
//! file system is a folder here, and the stand-in kubectl (`support/fake_kubectl.py`)
//! copying out of and into that pod's backup volume. The instance's own backups are taken
//! as its built-in schedule takes them (`support/sql_agent.py`, BACKUP over TDS).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::sql_server::{StandIn, add_instance, text};
use crate::support::{self, Cli, json_out};

/// The pod `arc/sqlmi1-0` with its backup volume, for the stand-in kubectl; the folder
/// holding `bin/kubectl`.
pub(crate) fn pod(dir: &Path) -> (PathBuf, PathBuf) {
    let state = dir.join("kube");
    std::fs::create_dir_all(&state).unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "sqlmi1-0", "namespace": "arc"},
        "spec": {"containers": [{"name": "arc-sqlmi", "image": "mcr.microsoft.com/arcdata/arc-sqlmi",
            "volumeMounts": [{"name": "backups", "mountPath": "/var/opt/mssql/backups"}]}],
            "volumes": [{"name": "backups", "emptyDir": {}}]},
        "status": {"phase": "Running"}});
    std::fs::write(
        state.join("state.json"),
        json!({"objects": [pod]}).to_string(),
    )
    .unwrap();
    let volume = state.join("scratch/arc/sqlmi1-0/backups");
    std::fs::create_dir_all(volume.join("current/4faf3dab")).unwrap();
    let bin = crate::kube_volumes::kubectl(dir, &json!({"": state}));
    (volume, bin)
}

/// The instance's container: `/var/opt/mssql/backups` is the pod's backup volume.
pub(crate) fn container(dir: &Path, volume: &Path) -> PathBuf {
    let root = dir.join("container");
    for d in ["var/opt/mssql/data", "var/opt/mssql/data-log"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::os::unix::fs::symlink(volume, root.join("var/opt/mssql/backups")).unwrap();
    root
}

/// The instance's own backup, as its built-in schedule takes it.
pub(crate) fn own_backup(sql: &StandIn, dir: &Path, level: &str, file: &str) {
    let venv = PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/rehydra/venv/bin/python");
    let o = std::process::Command::new(venv)
        .arg(support::root().join("crates/cli/tests/cli/support/sql_agent.py"))
        .args([
            &sql.server()["127.0.0.1:".len()..],
            dir.join("sql/tls/ca.pem").to_str().unwrap(),
        ])
        .args(["rehydra", "SQL_PW", level, "sales", file])
        .env("SQL_PW", crate::sql_server::PASSWORD)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

pub(crate) fn point_of(v: &Value) -> String {
    v["restore_point"]["id"].as_str().unwrap().to_string()
}

fn restores(sql: &StandIn) -> Vec<String> {
    sql.statements()
        .iter()
        .filter_map(|s| s["sql"].as_str().map(str::to_string))
        .filter(|s| s.starts_with("RESTORE"))
        .collect()
}

/// A CLI with the plugin and a repository, and the instance `arc/sqlmi1`: the SQL Server
/// stand-in running in its pod's container (its configured endpoint `server`), the pod's
/// backup volume, the stand-in kubectl (in `bin`), and a staging folder.
pub(crate) struct Mi {
    pub(crate) sql: StandIn,
    pub(crate) cli: Cli,
    pub(crate) dir: PathBuf,
    pub(crate) volume: PathBuf,
    pub(crate) bin: PathBuf,
    pub(crate) stage: PathBuf,
    pub(crate) server: String,
}

impl Mi {
    pub(crate) fn start() -> Self {
        let cli = Cli::new(&["arc-sql-mi"]);
        cli.init_repo();
        let dir = cli.dir.path().to_path_buf();
        let sqldir = dir.join("sql");
        let tls = sqldir.join("tls");
        support::certificates(&tls, "sqlmi1.arc.test");
        let (volume, bin) = pod(&dir);
        let root = container(&dir, &volume);
        let sql = StandIn::start_with(&sqldir, &tls, |c| {
            c.arg("--root").arg(&root);
        });
        let server = sql.server();
        add_instance(&cli, &server, &sqldir);
        let stage = dir.join("stage");
        std::fs::create_dir_all(&stage).unwrap();
        Self {
            sql,
            cli,
            dir,
            volume,
            bin,
            stage,
            server,
        }
    }

    /// Grant the plugin the engine, the instance's endpoint, kubectl, rm, the staging
    /// folder and `more`.
    pub(crate) fn grant(&self, more: &[&str]) {
        let (sql, files, write) = (
            format!("sql:{}", self.server),
            format!("files:{}", self.stage.display()),
            format!("files-write:{}", self.stage.display()),
        );
        let mut a = vec!["plugins", "grant", "arc-sql-mi", "engine", &sql];
        a.extend(["command:kubectl", "command:rm", &files, &write]);
        a.extend(more);
        self.cli.ok(None, &a);
    }

    /// The instance's own backup `<level>-<n>.bak`, as its built-in schedule takes it.
    pub(crate) fn own(&self, level: &str, n: u32) {
        let file = format!("/var/opt/mssql/backups/current/4faf3dab/{level}-{n}.bak");
        own_backup(&self.sql, &self.dir, level, &file);
    }

    /// `rehydra --json plugins run arc-sql-mi <args>`, the stand-in kubectl on the PATH.
    pub(crate) fn run(&self, args: &[&str]) -> std::process::Output {
        self.cli
            .cmd(Some(&self.bin))
            .env("SQL_PW", crate::sql_server::PASSWORD)
            .args(["--json", "plugins", "run", "arc-sql-mi"])
            .args(args)
            .output()
            .unwrap()
    }

    /// A backup of `arc/sqlmi1/sales` at `level`, which must succeed: what it printed.
    pub(crate) fn backup(&self, level: &str) -> Value {
        let (servers, staging) = self.settings();
        let l = format!("level={level}");
        let o = self.run(&[
            "backup",
            "--asset",
            "arc/sqlmi1/sales",
            "--set",
            &servers,
            "--set",
            &staging,
            "--set",
            &l,
        ]);
        assert!(o.status.success(), "{level}: {}", text(&o));
        json_out(&o)
    }

    /// When the `i`-th backup of `sales` msdb lists finished (the instance's clock).
    pub(crate) fn finished(&self, i: usize) -> chrono::NaiveDateTime {
        let rows = self.sql.table("backupset.json");
        let t = rows
            .iter()
            .filter(|r| r["database_name"] == "sales")
            .nth(i)
            .unwrap()["backup_finish_date"]
            .as_str()
            .unwrap()
            .to_string();
        chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f").unwrap()
    }

    /// `servers=arc/sqlmi1=<endpoint>` and `staging=<folder>`.
    pub(crate) fn settings(&self) -> (String, String) {
        (
            format!("servers=arc/sqlmi1={}", self.server),
            format!("staging={}", self.stage.display()),
        )
    }
}

#[test]
#[allow(clippy::too_many_lines)]
fn an_instances_own_chain_and_rehydras_copies_leave_the_cluster_and_restore_to_a_moment() {
    let mi = Mi::start();
    let (dir, sql, volume, stage) = (&mi.dir, &mi.sql, &mi.volume, &mi.stage);
    sql.edit("master_files.json", |rows| {
        for r in rows.iter_mut() {
            let name = r["physical_name"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string();
            let folder = if name.ends_with(".ldf") {
                "data-log"
            } else {
                "data"
            };
            r["physical_name"] = format!("/var/opt/mssql/{folder}/{name}").into();
        }
    });
    mi.grant(&[]);
    let (servers, staging) = mi.settings();
    let run = |args: &[&str]| {
        let o = mi.run(args);
        (o.status.success(), o)
    };
    let backup = |level: &str| mi.backup(level);

    // ---- the instance's own schedule: full, log, differential, log
    let own = |level: &str, n: u32| mi.own(level, n);
    own("full", 1);
    own("log", 2);
    own("diff", 3);
    own("log", 4);

    // ---- level=built-in: the four copied out, the instance's files left where they are
    let first = backup("built-in");
    let on_volume = |sub: &str| std::fs::read_dir(volume.join(sub)).map_or(0, Iterator::count);
    assert_eq!(
        on_volume("current/4faf3dab"),
        4,
        "the instance's files stay"
    );
    assert_eq!(on_volume("rehydra"), 0);
    assert_eq!(
        std::fs::read_dir(&stage).unwrap().count(),
        0,
        "staging keeps nothing"
    );
    let sent: Vec<String> = sql
        .statements()
        .iter()
        .filter_map(|s| s["sql"].as_str().map(str::to_string))
        .collect();
    assert!(
        sent.iter().filter(|s| s.starts_with("BACKUP")).count() == 4,
        "only the instance's own four BACKUPs ran: {sent:#?}"
    );
    let log = std::fs::read_to_string(dir.join("kube/exec.log")).unwrap();
    assert_eq!(
        log.matches("\"stat\", \"-c\", \"%F %s\", \"--\"").count(),
        4,
        "each copy's size is checked against the pod's file: {log}"
    );

    // ---- one more log of its own: the next run copies that one only
    own("log", 5);
    let second = backup("built-in");
    let point = point_of(&second);
    assert_ne!(point, point_of(&first));
    assert_eq!(on_volume("current/4faf3dab"), 5);

    // ---- a restore from the copies onto the same instance under another name, to a
    // moment inside the last log: the instance reads each file back whole (its SHA-256)
    // and checks every LSN step, as SQL Server does
    let at = |i: usize| mi.finished(i);
    let moment = (at(3) + (at(4) - at(3)) / 2)
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string();
    let stop = format!("stop-at={moment}");
    let (ok, o) = run(&[
        "restore",
        &point,
        "--target",
        "-",
        "--set",
        &servers,
        "--set",
        &staging,
        "--set",
        "database=sales_copy",
        "--set",
        &stop,
    ]);
    assert!(ok, "{}", text(&o));
    let restores = restores(&sql);
    assert_eq!(
        restores.len(),
        5,
        "full, diff, two logs, recovery: {restores:#?}"
    );
    assert!(restores[0].starts_with(
        "RESTORE DATABASE [sales_copy] FROM DISK = N'/var/opt/mssql/backups/rehydra/sales_full_"
    ));
    assert!(
        restores[1].contains("/rehydra/sales_diff_"),
        "{}",
        restores[1]
    );
    assert!(restores[2].starts_with("RESTORE LOG") && !restores[2].contains("STOPAT"));
    assert!(
        restores[3].contains(&format!("STOPAT = N'{moment}'")),
        "{}",
        restores[3]
    );
    let dbs = sql.table("databases.json");
    let copy = dbs
        .iter()
        .find(|d| d["name"] == "sales_copy")
        .expect("sales_copy restored");
    assert_eq!(copy["state_desc"], "ONLINE");
    assert_eq!(
        on_volume("rehydra"),
        0,
        "the copies put into the pod are removed"
    );

    // ---- Rehydra's own copy-only full: taken in the pod's rehydra folder, copied out,
    // removed there; the instance's chain is untouched
    backup("full");
    let last = sql.table("backupset.json").last().unwrap().clone();
    assert_eq!(last["is_copy_only"], true);
    assert_eq!(on_volume("rehydra"), 0);
    assert_eq!(on_volume("current/4faf3dab"), 5);
}
