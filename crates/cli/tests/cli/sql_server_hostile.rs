//! A hostile SQL Server instance: what it sends is counted as it arrives, so no value it
//! sends grows past what the host takes, however long the instance says it is (the
//! driver alone would hold one of up to 2 GiB before any cap was checked). And what an
//! instance says that a plugin is not told: the login it refused.

use serde_json::json;

use crate::sql_server::{add_with, grant, plugin, prop, text, with_standin};

/// The stand-in answers batches matching `in` with one nvarchar(max) value of `chars`
/// characters (two bytes each on the wire), as the first column (the check shows it as
/// the instance's name).
fn huge_value(dir: &std::path::Path, r#in: &str, chars: u64) {
    std::fs::write(
        dir.join("state/standin.json"),
        json!({"huge_value": {"in": r#in, "chars": chars}}).to_string(),
    )
    .unwrap();
}

#[test]
fn a_hostile_instance_s_huge_value_is_cut_off_as_it_arrives() {
    let (cli, sql, dir, _) = with_standin("sql01.test.lan");
    let server = sql.server();

    // 62 million characters (118 MiB on the wire, 59 MiB as held): within the answer cap,
    // so within what is taken on the wire too
    huge_value(&dir, "ProductVersion", 62_000_000);
    let o = add_with(&cli, &server, &dir, &[]);
    assert!(
        o.status.success(),
        "{}",
        &text(&o)[..2000.min(text(&o).len())]
    );
    assert!(
        o.stdout
            .windows(1_000_000)
            .any(|w| w.iter().all(|&b| b == b'x')),
        "the value was read whole"
    );

    // 80 million (153 MiB on the wire): cut off once 136 MiB have arrived, said as such
    huge_value(&dir, "ProductVersion", 80_000_000);
    let o = add_with(&cli, &server, &dir, &[]);
    let said = text(&o);
    assert!(!o.status.success(), "{said}");
    assert!(
        said.contains("the instance sent more than 136 MiB on one connection"),
        "{said}"
    );

    // a plugin's batch: the plugin is told the same
    huge_value(&dir, "sys\\.databases", 80_000_000);
    grant(&cli, &[&server], &dir);
    let o = plugin(&cli, &["discover", "--set", &format!("servers={server}")]);
    let said = text(&o);
    assert!(
        said.contains("the instance sent more than 136 MiB on one connection"),
        "{said}"
    );
}

#[test]
fn a_refused_sign_in_is_told_to_the_admin_and_not_to_a_plugin() {
    let (cli, sql, dir, _) = with_standin("sql01.test.lan");
    let server = sql.server();
    let ca = dir.join("tls/ca.pem");
    let with_wrong_password = |args: &[&str]| {
        cli.cmd(None)
            .env("WRONG_PW", "not-the-password")
            .args(args)
            .output()
            .unwrap()
    };
    let ca = ca.to_str().unwrap();
    let add = |more: &[&str]| {
        let login = [
            "plugins",
            "sql-server",
            "add",
            &server,
            "--login",
            "rehydra",
            "--password-env",
            "WRONG_PW",
            "--ca-file",
            ca,
        ];
        with_wrong_password(&[&login[..], more].concat())
    };
    // the admin's check says SQL Server's words, the login among them
    let o = add(&[]);
    assert!(
        !o.status.success()
            && text(&o).contains("the instance refused the sign-in: SQL Server error 18456")
            && text(&o).contains("'rehydra'"),
        "{}",
        text(&o)
    );
    // kept anyway: a plugin is told only that the sign-in was refused
    let o = add(&["--no-check"]);
    assert!(o.status.success(), "{}", text(&o));
    grant(&cli, &[&server], &dir);
    let o = with_wrong_password(&[
        "--json",
        "plugins",
        "run",
        "sql-server",
        "discover",
        "--set",
        &format!("servers={server}"),
    ]);
    let found: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let why = prop(&found[0], "unreachable").unwrap_or_default();
    assert!(
        why.contains("the instance refused the sign-in (the job log says why)")
            && !why.contains("rehydra'")
            && !why.contains("18456"),
        "{}",
        text(&o)
    );
}
