//! SQL batches run through a command target (`plugins sql-server add --via`): the host
//! hands each batch to PowerShell there (here `local`, this machine's `pwsh`), which
//! runs it with its SQL client signed in as its own account and prints the answer. No
//! PowerShell runs here: `support/sql_pwsh.py` stands in for it, doing what the host's
//! script asks with a real SQL client (python-tds) against the SQL Server stand-in, so
//! the plugin's discovery and backup go through the target end to end and the
//! statements the instance receives are checked as the direct connection's are.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::sql_server::{database, grant, prop, text, with_standin};
use crate::support::{self, Cli};
use rehydra_test_support::sshd::Sshd;

/// The stand-in PowerShell in `dir/bin` as `pwsh`, signed in as the instance's test
/// login; what it was given is logged to the returned file.
fn stand_in_pwsh(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let login = dir.join("pwsh-login.json");
    std::fs::write(
        &login,
        serde_json::json!({"user": "rehydra", "password": crate::sql_server::PASSWORD, "cafile": dir.join("tls/ca.pem")})
            .to_string(),
    )
    .unwrap();
    let log = dir.join("pwsh.jsonl");
    let python =
        PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/rehydra/venv/bin/python");
    let script = support::root().join("crates/cli/tests/cli/support/sql_pwsh.py");
    let pwsh = bin.join("pwsh");
    std::fs::write(
        &pwsh,
        format!(
            "#!/bin/sh\nexec '{}' '{}' --login-file '{}' --log '{}' \"$@\"\n",
            python.display(),
            script.display(),
            login.display(),
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pwsh, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, log)
}

/// What the stand-in PowerShell was given, in order.
fn given(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn sql_server_batches_run_through_a_command_target() {
    let (cli, sql, dir, staging) = with_standin("sql01.test.lan");
    let (bin, log) = stand_in_pwsh(&dir);
    // (SQL_PW: the direct connection's password, compared with below)
    let run = |args: &[&str]| {
        cli.cmd(Some(&bin))
            .env("SQL_PW", crate::sql_server::PASSWORD)
            .args(args)
            .output()
            .unwrap()
    };
    // (the name is where PowerShell connects, and what the certificate is checked against)
    let name = sql.server();
    let name = name.as_str();
    let add = |extra: &[&str]| {
        let mut a = vec!["plugins", "sql-server", "add", name];
        a.extend(extra);
        run(&a)
    };

    // ---- refused before anything is kept: a login and password (never put on a command
    // line), a target that is not configured
    let o = add(&[
        "--login",
        "rehydra",
        "--password-env",
        "SQL_PW",
        "--via",
        "local",
    ]);
    assert!(
        !o.status.success() && text(&o).contains("--integrated"),
        "{}",
        text(&o)
    );
    let o = add(&["--integrated", "--via", "local", "--address", "127.0.0.1:1"]);
    assert!(
        !o.status.success() && text(&o).contains("--address"),
        "{}",
        text(&o)
    );
    let o = add(&["--integrated", "--via", "nosuch"]);
    assert!(
        !o.status.success() && text(&o).contains("no command target named nosuch"),
        "{}",
        text(&o)
    );
    assert!(given(&log).is_empty());

    // ---- kept after signing in through the target: the check's batch went through it
    let o = add(&["--integrated", "--via", "local"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("as rehydra"),
        "the login the instance took the target's account for: {}",
        text(&o)
    );
    let first = &given(&log)[0];
    let conn = first["c"].as_str().unwrap();
    assert!(
        conn.starts_with(&format!("Server=tcp:{};", name.replacen(':', ",", 1)))
            && conn.contains("Integrated Security=SSPI;Encrypt=True;TrustServerCertificate=False"),
        "{conn}"
    );
    let listed = cli.ok(Some(&bin), &["plugins", "sql-server", "list"]);
    assert!(
        listed.contains("through local as the account commands run as there"),
        "{listed}"
    );
    let stored = cli.ok(Some(&bin), &["--json", "plugins", "sql-server", "list"]);
    assert!(!stored.contains("password"), "{stored}");

    // ---- a plugin's discovery and a backup go through the target
    // (and the same instance connected to directly, compared with below)
    let direct_name = "sql01.test.lan";
    grant(&cli, &[name, direct_name], &dir);
    let go = |args: &[&str]| {
        let mut a = vec!["--json", "plugins", "run", "sql-server"];
        a.extend(args);
        run(&a)
    };
    let servers = format!("servers={name}");
    let assets = support::json_out(&go(&["discover", "--set", &servers]));
    let db = |n: &str| database(&assets, n);
    assert_eq!(prop(&db("hr"), "recovery-model").as_deref(), Some("SIMPLE"));
    assert_eq!(prop(&db("hr"), "tde").as_deref(), Some("true"));
    assert_eq!(prop(&db("sales"), "size-mib").as_deref(), Some("20"));
    assert!(
        prop(&db("legacy"), "chain").unwrap().contains("problem"),
        "{assets}"
    );
    // the same as the direct connection finds, value for value (dates, LSNs, GUIDs as text)
    let o =
        crate::sql_server::add_with(&cli, direct_name, &dir, &["--address", name, "--no-check"]);
    assert!(o.status.success(), "{}", text(&o));
    let direct = support::json_out(&go(&[
        "discover",
        "--set",
        &format!("servers={direct_name}"),
    ]));
    let seen = |v: &Value| {
        let mut all: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "database")
            .map(|a| format!("{} {}", a["name"], a["properties"]))
            .collect();
        all.sort();
        all
    };
    assert_eq!(seen(&assets), seen(&direct));
    let asset = format!("{name}/sales");
    let o = go(&[
        "backup",
        "--asset",
        &asset,
        "--set",
        "level=full",
        "--set",
        &staging,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let backup = sql
        .statements()
        .into_iter()
        .find(|s| s["sql"].as_str().unwrap().starts_with("BACKUP"))
        .expect("a BACKUP reached the instance");
    assert_eq!(
        backup["sql"], "BACKUP DATABASE @P1 TO DISK = @P2 WITH CHECKSUM, INIT, FORMAT, NAME = @P3",
        "{backup}"
    );
    assert!(
        given(&log).iter().any(
            |q| q["b"].as_str().unwrap().starts_with("BACKUP DATABASE @P1") && q["p"][0] == "sales"
        ),
        "the BACKUP went through the target with its parameters"
    );

    // ---- through a command target over SSH (a real sshd on loopback; the same stand-in
    // PowerShell, run as the target's --powershell), named in another case than it was
    // added in
    let sshd = Sshd::start(&["127.0.0.1"]);
    let mut target = vec![
        "plugins".to_string(),
        "target".into(),
        "add".into(),
        "SqlVM".into(),
    ];
    target.extend(sshd.target_args("127.0.0.1", &bin.join("pwsh")));
    cli.ok(None, &target.iter().map(String::as_str).collect::<Vec<_>>());
    let before = given(&log).len();
    let o = add(&["--integrated", "--via", "sqlvm"]);
    assert!(o.status.success(), "{}", text(&o));
    let listed = cli.ok(None, &["plugins", "sql-server", "list"]);
    assert!(listed.contains("through SqlVM"), "{listed}");
    let over_ssh = support::json_out(&go(&["discover", "--set", &servers]));
    let direct = support::json_out(&go(&[
        "discover",
        "--set",
        &format!("servers={direct_name}"),
    ]));
    assert_eq!(seen(&over_ssh), seen(&direct));
    let over = &given(&log)[before..];
    assert!(
        !over.is_empty() && over.iter().all(|q| q["ssh"].is_string()),
        "the batches went through the target over SSH: {over:?}"
    );
    assert!(given(&log)[..before].iter().all(|q| q["ssh"].is_null()));
    // no second target whose name differs in case alone
    let o = run(&[
        "plugins",
        "target",
        "add",
        "sqlvm",
        "--ssh",
        "admin@elsewhere",
    ]);
    assert!(
        !o.status.success() && text(&o).contains("command target SqlVM is configured already"),
        "{}",
        text(&o)
    );
    // a target an instance goes through is not removed from under it
    let o = run(&["plugins", "target", "remove", "SqlVM"]);
    assert!(
        !o.status.success() && text(&o).contains("goes through command target SqlVM"),
        "{}",
        text(&o)
    );
    let o = add(&["--integrated", "--via", "local"]);
    assert!(o.status.success(), "{}", text(&o));

    // ---- what the target says when the instance does not answer reaches the plugin
    drop(sql);
    let assets = support::json_out(&go(&["discover", "--set", &servers]));
    let inst = &assets.as_array().unwrap()[0];
    let why = prop(inst, "unreachable").unwrap_or_default();
    assert!(
        why.contains("through this machine's PowerShell 7"),
        "{assets}"
    );
    // and with no PowerShell there, the check says so
    let o = Cli::run(&cli, None, &["plugins", "sql-server", "check", name]);
    assert!(
        !o.status.success() && text(&o).contains("PowerShell 7 (pwsh) is not installed"),
        "{}",
        text(&o)
    );
}
