//! What the tests replay: ARM's examples (`tests/fixtures/arc-sql-mi`), Kubernetes list
//! answers shaped as the CRDs there declare them, and a stand-in for the instance that
//! does what SQL Server and kubectl do: BACKUP writes a file in the pod and msdb rows whose
//! LSNs continue (a copy-only log starts where the last log backup that was not copy-only
//! ended, as on SQL Server), `kubectl cp` copies it to the staging folder, `kubectl exec
//! … rm` removes it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rehydra_plugin_sdk::mock::{Command, MockHost, SqlBatch, output};
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::sql::ResultSet;
use serde_json::{Value, json};

pub const KUBE: &str = "https://10.0.0.5:6443";
pub const SERVER: &str = "sqlmi1.contoso.local:31433";
pub const LIST_URL: &str =
    "https://10.0.0.5:6443/apis/sql.arcdata.microsoft.com/v1/namespaces/arc/sqlmanagedinstances";

/// An ARM example's `responses.200.body`.
pub fn arm_example(name: &str) -> Value {
    let text = match name {
        "list-rg" => include_str!(
            "../../../../tests/fixtures/arc-sql-mi/azurearcdata-ListByResourceGroupSqlManagedInstance.json"
        ),
        "list-sub" => include_str!(
            "../../../../tests/fixtures/arc-sql-mi/azurearcdata-ListSubscriptionSqlManagedInstance.json"
        ),
        "get" => include_str!(
            "../../../../tests/fixtures/arc-sql-mi/azurearcdata-GetSqlManagedInstance.json"
        ),
        _ => unreachable!("{name}"),
    };
    let v: Value = serde_json::from_str(text).unwrap();
    v["responses"]["200"]["body"].clone()
}

/// The CRD file the Kubernetes answers are shaped after.
pub const CRDS: &str = include_str!(
    "../../../../tests/fixtures/arc-sql-mi/azure_arc-custom-resource-definitions.yaml"
);

/// A `SqlManagedInstance` as the API server returns it (`sql.arcdata.microsoft.com/v1`).
pub fn cr(ns: &str, name: &str, spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "sql.arcdata.microsoft.com/v1",
        "kind": "SqlManagedInstance",
        "metadata": {"name": name, "namespace": ns, "uid": "7d3c0e4e-6b1a-4c44-9d7b-3f0c1a2b3c4d",
            "resourceVersion": "81234", "creationTimestamp": "2026-11-01T08:00:00Z"},
        "spec": spec,
        "status": status,
    })
}

/// A Ready General Purpose instance with one replica and the default retention.
pub fn ready_gp(ns: &str, name: &str) -> Value {
    cr(
        ns,
        name,
        json!({"tier": "GeneralPurpose", "replicas": 1, "dev": false,
            "backup": {"retentionPeriodInDays": 7},
            "scheduling": {"default": {"resources": {"limits": {"cpu": "2", "memory": "8Gi"}}}}}),
        json!({"state": "Ready", "readyReplicas": "1/1", "primaryEndpoint": "10.0.0.4,31433",
            "observedGeneration": 1}),
    )
}

/// One page of a list (`continue` when more follow).
pub fn page(items: Vec<Value>, cont: Option<&str>) -> Vec<u8> {
    let mut meta = json!({"resourceVersion": "81300"});
    if let Some(c) = cont {
        meta["continue"] = c.into();
        meta["remainingItemCount"] = 1.into();
    }
    serde_json::to_vec(&json!({"apiVersion": "sql.arcdata.microsoft.com/v1",
        "kind": "SqlManagedInstanceList", "metadata": meta, "items": items}))
    .unwrap()
}

/// The API server's `Status` for an expired continue token.
pub fn gone() -> Vec<u8> {
    serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        "reason": "Expired", "code": 410}))
    .unwrap()
}

pub fn set(columns: &[&str], rows: Vec<Vec<Option<String>>>) -> Vec<ResultSet> {
    vec![ResultSet {
        columns: columns.iter().map(|c| (*c).to_string()).collect(),
        rows,
    }]
}

/// A database of the stand-in.
#[derive(Clone)]
pub struct Db {
    pub name: String,
    pub recovery: String,
}

/// A backup msdb records.
#[derive(Clone)]
pub struct Row {
    pub kind: &'static str,
    pub copy_only: bool,
    pub first: u128,
    pub last: u128,
    pub checkpoint: u128,
    pub base: u128,
    pub minute: u32,
    pub set_name: String,
    pub database: String,
    pub device: String,
    /// Its backup set's position in its file.
    pub position: u32,
    /// Its number in msdb (`backup_set_id`), which its `backup_set_uuid` is made of.
    pub set_id: usize,
}

/// The instance behind the TDS endpoint and the pod.
#[derive(Default)]
pub struct Sim {
    pub dbs: Vec<Db>,
    pub msdb: Vec<Row>,
    pub lsn: u128,
    /// Where the next log backup starts (the log was truncated up to here).
    pub log_point: u128,
    pub minute: u32,
    /// Files in the pod (`/var/opt/mssql/backups/…`).
    pub pod_files: HashMap<String, Vec<u8>>,
    /// A `kubectl cp` that fails.
    pub cp_fails: bool,
    /// A `kubectl cp` out of the pod that ends early (and says nothing).
    pub cp_short: bool,
    /// kubectl is gone from the command target (the host cannot start it).
    pub kubectl_gone: bool,
    /// RESTORE statements run, in order, with the bytes of the file each read.
    pub restores: Vec<(String, Option<Vec<u8>>)>,
    /// A RESTORE LOG that fails (SQL Server's error 4305: the log does not follow).
    pub log_restore_fails: bool,
}

/// `minute` minutes after 2026-12-01 10:00, as msdb writes a time (days roll over).
fn time(minute: u32) -> String {
    let start = sql_common::tsql::parse_time("2026-12-01T10:00:00").unwrap() / 1000;
    let t = rehydra_plugin_sdk::time::rfc3339(start + i64::from(minute) * 60);
    format!("{}.000", t.trim_end_matches('Z'))
}

impl Sim {
    pub fn new(dbs: &[(&str, &str)]) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Self {
            dbs: dbs
                .iter()
                .map(|(n, r)| Db {
                    name: (*n).into(),
                    recovery: (*r).into(),
                })
                .collect(),
            lsn: 38_000_000_040_800_001,
            log_point: 38_000_000_040_800_001,
            ..Self::default()
        }))
    }

    /// The instance's own backup (what its built-in schedule does): a file on its backup
    /// volume; `kind` is msdb's `D`, `I` or `L`.
    pub fn own_backup(&mut self, db: &str, kind: &'static str) {
        let device = format!(
            "/var/opt/mssql/backups/current/{db}/{kind}-{}.bak",
            self.minute + 5
        );
        self.backup_to(db, kind, &device);
    }

    /// A backup someone takes by hand (not copy-only) to `device`.
    pub fn backup_to(&mut self, db: &str, kind: &'static str, device: &str) {
        self.backup(db, kind, false, "", device);
        let bytes = format!("own {kind} backup of {db} at minute {}", self.minute);
        self.pod_files
            .insert(device.to_string(), bytes.into_bytes());
    }

    /// Files of Rehydra's own backups left in the pod.
    pub fn ours_in_pod(&self) -> usize {
        self.pod_files
            .keys()
            .filter(|f| f.starts_with("/var/opt/mssql/backups/rehydra/"))
            .count()
    }

    fn backup(
        &mut self,
        db: &str,
        kind: &'static str,
        copy_only: bool,
        set_name: &str,
        device: &str,
    ) {
        self.lsn += 100;
        self.minute += 5;
        let last_full = self
            .msdb
            .iter()
            .rev()
            .find(|r| r.kind == "D" && r.database == db && !r.copy_only)
            .map_or(0, |r| r.checkpoint);
        let (first, last, checkpoint) = if kind == "D" || kind == "I" {
            (self.lsn, self.lsn + 1, self.lsn)
        } else {
            (self.log_point, self.lsn, self.log_point)
        };
        if kind == "L" && !copy_only {
            self.log_point = self.lsn;
        }
        self.msdb.push(Row {
            kind,
            copy_only,
            first,
            last,
            checkpoint,
            base: last_full,
            minute: self.minute,
            set_name: set_name.into(),
            database: db.into(),
            device: device.into(),
            position: 1,
            set_id: self.msdb.len() + 1,
        });
    }

    fn history(&self, rows: Vec<&Row>) -> Vec<ResultSet> {
        let cols = [
            "backup_set_uuid",
            "type",
            "is_copy_only",
            "first_lsn",
            "last_lsn",
            "checkpoint_lsn",
            "database_backup_lsn",
            "differential_base_lsn",
            "first_recovery_fork_guid",
            "last_recovery_fork_guid",
            "backup_start_date",
            "backup_finish_date",
            "user_name",
            "name",
            "database_name",
            "physical_device_name",
            "position",
        ];
        let fork = Some("4faf3dab-af8f-4ede-9000-41a2344da82f".to_string());
        let rows = rows
            .into_iter()
            .map(|r| {
                let s = |v: &str| Some(v.to_string());
                vec![
                    s(&format!("a258a0e2-0f34-4bbc-ab33-{:012}", r.set_id)),
                    s(r.kind),
                    s(if r.copy_only { "1" } else { "0" }),
                    s(&r.first.to_string()),
                    s(&r.last.to_string()),
                    s(&r.checkpoint.to_string()),
                    s(&r.base.to_string()),
                    None,
                    fork.clone(),
                    fork.clone(),
                    s(&time(r.minute)),
                    s(&time(r.minute)),
                    s(if r.set_name.is_empty() {
                        "NT AUTHORITY\\SYSTEM"
                    } else {
                        "rehydra"
                    }),
                    s(&r.set_name),
                    s(&r.database),
                    s(&r.device),
                    s(&r.position.to_string()),
                ]
            })
            .collect();
        set(&cols, rows)
    }

    /// Answer one batch as the instance would.
    pub fn answer(&mut self, b: &SqlBatch) -> Result<Vec<ResultSet>> {
        assert_eq!(b.server, SERVER, "only the configured endpoint is asked");
        let p = |i: usize| b.params.get(i).cloned().unwrap_or_default();
        if let Some(rest) = b.batch.strip_prefix("BACKUP ") {
            assert!(
                p(1).starts_with("/var/opt/mssql/backups/rehydra/"),
                "BACKUP writes to the pod's rehydra folder: {}",
                p(1)
            );
            let kind = if rest.starts_with("LOG") { "L" } else { "D" };
            let copy_only = b.batch.contains("COPY_ONLY");
            self.backup(&p(0), kind, copy_only, &p(2), &p(1));
            self.pod_files.insert(
                p(1),
                format!("native {kind} backup of {}", p(0)).into_bytes(),
            );
            return Ok(vec![]);
        }
        if b.batch.starts_with("RESTORE ") {
            if self.log_restore_fails && b.batch.starts_with("RESTORE LOG") {
                return Err(Error::new(
                    ErrorCode::Failed,
                    "Msg 4305: The log in this backup set begins at LSN 38000000040900001, which is too recent to apply to the database.",
                ));
            }
            // FROM DISK = N'<file in the pod>': a file the pod does not hold is error 3201
            let file = b
                .batch
                .split_once("FROM DISK = N'")
                .and_then(|(_, r)| r.split_once('\''))
                .map(|(f, _)| f.to_string());
            let bytes = file.as_ref().map(|f| self.pod_files.get(f).cloned());
            if let Some(None) = bytes {
                return Err(Error::new(
                    ErrorCode::Failed,
                    "Msg 3201: Cannot open backup device. Operating system error 2(The system cannot find the file specified.).",
                ));
            }
            self.restores.push((b.batch.clone(), bytes.flatten()));
            return Ok(vec![]);
        }
        if b.batch.starts_with("SELECT M") && b.batch.contains(" FROM msdb.dbo.backupset") {
            // the aggregates: the newest full (any), or the span of the instance's own
            // backups (not copy-only, under the LIKE prefix): its oldest full, its newest
            let db = p(0);
            let prefix = p(1).strip_suffix('%').map(str::to_string);
            let rows: Vec<&Row> = self
                .msdb
                .iter()
                .filter(|r| {
                    r.database == db
                        && !(b.batch.contains("b.is_copy_only = 0") && r.copy_only)
                        && prefix
                            .as_ref()
                            .is_none_or(|f| r.device.starts_with(f.as_str()))
                })
                .collect();
            let fulls = || rows.iter().filter(|r| r.kind == "D").map(|r| r.minute);
            if b.batch.contains(" AS first_full, ") {
                let last = rows.iter().map(|r| r.minute).max();
                return Ok(set(
                    &["first_full", "last"],
                    vec![vec![fulls().min().map(time), last.map(time)]],
                ));
            }
            return Ok(set(&["at"], vec![vec![fulls().max().map(time)]]));
        }
        if b.batch.contains("msdb.dbo.backupset") {
            let db = p(0);
            let mut rows: Vec<&Row> = self.msdb.iter().filter(|r| r.database == db).collect();
            if b.batch.contains("AND b.is_copy_only = 0 ORDER BY") {
                // the instance's own (not copy-only), newest first, with their position
                assert!(b.batch.contains(", b.position FROM "), "{}", b.batch);
                rows.retain(|r| !r.copy_only);
                rows.reverse();
                return Ok(self.history(rows));
            }
            if b.batch.contains("TOP (1)") {
                rows.retain(|r| r.device == p(1));
            }
            rows.reverse();
            rows.truncate(if b.batch.contains("TOP (1)") { 1 } else { 2000 });
            return Ok(self.history(rows));
        }
        if b.batch.contains("FROM sys.master_files f JOIN") {
            let db = p(0);
            return Ok(set(
                &["name", "type_desc", "physical_name"],
                vec![
                    vec![
                        Some(db.clone()),
                        Some("ROWS".into()),
                        Some(format!("/var/opt/mssql/data/{db}.mdf")),
                    ],
                    vec![
                        Some(format!("{db}_log")),
                        Some("LOG".into()),
                        Some(format!("/var/opt/mssql/data-log/{db}_log.ldf")),
                    ],
                ],
            ));
        }
        if b.batch.contains("FROM sys.databases d") {
            let only = b.batch.contains("d.name = @P1").then(|| p(0));
            let rows = self
                .dbs
                .iter()
                .filter(|d| only.as_ref().is_none_or(|n| *n == d.name))
                .map(|d| {
                    vec![
                        Some(d.name.clone()),
                        Some(d.recovery.clone()),
                        Some("ONLINE".into()),
                        Some("160".into()),
                        Some("0".into()),
                        None,
                        Some("1024".into()),
                    ]
                })
                .collect();
            return Ok(set(
                &[
                    "name",
                    "recovery_model_desc",
                    "state_desc",
                    "compatibility_level",
                    "is_encrypted",
                    "group_database_id",
                    "pages",
                ],
                rows,
            ));
        }
        Err(Error::new(
            ErrorCode::InvalidInput,
            format!("the stand-in does not know: {}", b.batch),
        ))
    }

    /// Run kubectl as it would against this pod.
    pub fn kubectl(&mut self, c: &Command) -> Result<rehydra_plugin_sdk::commands::Output> {
        let fail = |m: &str| {
            let mut o = output(1, "");
            o.stderr = m.as_bytes().to_vec();
            Ok(o)
        };
        if self.kubectl_gone {
            return Err(Error::new(
                ErrorCode::NotFound,
                "starting kubectl: No such file or directory (os error 2)",
            ));
        }
        match c.args.first().map(String::as_str) {
            Some("exec") => {
                let cmd: Vec<&str> = c
                    .args
                    .iter()
                    .skip_while(|a| *a != "--")
                    .skip(1)
                    .map(String::as_str)
                    .collect();
                match cmd.as_slice() {
                    ["mkdir", "-p", _] => Ok(output(0, "")),
                    ["stat", "-c", "%F %s", "--", path] => match self.pod_files.get(*path) {
                        Some(b) if b.is_empty() => Ok(output(0, "regular empty file 0\n")),
                        Some(b) => Ok(output(0, format!("regular file {}\n", b.len()))),
                        // a folder holding files
                        None if self
                            .pod_files
                            .keys()
                            .any(|f| f.starts_with(&format!("{path}/"))) =>
                        {
                            Ok(output(0, "directory 4096\n"))
                        }
                        None => fail(&format!(
                            "stat: cannot statx '{path}': No such file or directory"
                        )),
                    },
                    ["rm", "-f", path] => {
                        self.pod_files.remove(*path);
                        Ok(output(0, ""))
                    }
                    _ => fail("unexpected exec"),
                }
            }
            Some("cp") => {
                if self.cp_fails {
                    return fail(
                        "error: unable to upgrade connection: container not found (\"arc-sqlmi\")",
                    );
                }
                // into the pod: the staged file is what the pod holds from now on
                if let Some(to) = c.args[2].strip_prefix("arc/sqlmi1-0:") {
                    let bytes = std::fs::read(&c.args[1]).expect("a staged file");
                    self.pod_files.insert(to.to_string(), bytes);
                    return Ok(output(0, ""));
                }
                let from = c.args[1]
                    .strip_prefix("arc/sqlmi1-0:")
                    .expect("the instance's pod");
                let Some(bytes) = self.pod_files.get(from) else {
                    return fail("tar: removing leading '/' from member names\nno such file");
                };
                let end = if self.cp_short {
                    bytes.len() / 2
                } else {
                    bytes.len()
                };
                std::fs::write(&c.args[2], &bytes[..end]).unwrap();
                Ok(output(0, ""))
            }
            _ => fail("unknown kubectl command"),
        }
    }
}

/// A mock host with the stand-in answering SQL, kubectl and rm, and the grants a backup
/// into `stage` needs.
pub fn host_with(sim: &Rc<RefCell<Sim>>, stage: &std::path::Path) -> MockHost {
    let (a, b) = (sim.clone(), sim.clone());
    MockHost::new()
        .grant("engine")
        .grant(&format!("sql:{SERVER}"))
        .grant("command:kubectl")
        .grant("command:rm")
        .grant_files(stage)
        .on_sql(move |q| a.borrow_mut().answer(q))
        .on_command("kubectl", move |c| b.borrow_mut().kubectl(c))
        .on_command("rm", |c| {
            assert_eq!(c.args[..2], ["-f", "--"]);
            std::fs::remove_file(&c.args[2])
                .map(|()| output(0, ""))
                .or_else(|_| Ok(output(1, "")))
        })
}
