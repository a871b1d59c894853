//! A batch stopped before its answer is stopped on the server too: a backup cancelled
//! (Ctrl-C) while the instance runs its BACKUP sends an Attention, and the stand-in stops
//! the statement as SQL Server does, writing nothing.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sql_server::{PASSWORD, add_instance, grant, with_standin};

#[test]
fn a_cancelled_sql_backup_is_stopped_on_the_instance_with_an_attention() {
    let (cli, sql, dir, staging) = with_standin("sql01.test.lan");
    let state = dir.join("state");
    // a BACKUP takes two minutes there, unless stopped
    std::fs::write(state.join("standin.json"), r#"{"backup_seconds": 120}"#).unwrap();
    let server = sql.server();
    add_instance(&cli, &server, &dir);
    grant(&cli, &[&server], &dir);
    let asset = format!("{server}/sales");
    let child = cli
        .cmd(None)
        .env("SQL_PW", PASSWORD)
        .args(["plugins", "run", "sql-server", "backup", "--asset", &asset])
        .args(["--set", "level=full", "--set", &staging])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !state.join("working").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the BACKUP never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let asked = Instant::now();
    rehydra_test_support::run(Command::new("kill").args(["-INT", &child.id().to_string()]));
    let o = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "{said}");
    assert!(said.contains("cancel"), "{said}");
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "the cancel waited for the BACKUP: {:?}",
        asked.elapsed()
    );
    // the instance was told: the statement stopped there, nothing recorded or written
    let backups: Vec<_> = sql
        .statements()
        .into_iter()
        .filter(|s| {
            s["sql"]
                .as_str()
                .unwrap_or_default()
                .contains("BACKUP DATABASE")
        })
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(backups[0]["error"], "attention", "{backups:?}");
    assert!(
        sql.table("backupset.json")
            .iter()
            .all(|s| s["database_name"] != "sales"),
        "no backup of sales is in msdb"
    );
}
