//! Signing in to SQL Server as the account Rehydra runs as (`plugins sql-server add
//! --integrated`), from Linux: Kerberos end to end against a real KDC (a Samba AD DC) and
//! the TDS stand-in, whose acceptor is then MIT's GSS-API checking the client's ticket
//! with the instance's keys (its service principal `MSSQLSvc/<host>:<port>` registered
//! and exported the way `setspn` and `ktpass` do it on Windows). No password is kept.
//! Also a Windows account and its password from Linux (`--windows-login`): by Kerberos,
//! the password getting the account a ticket kept in memory.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::sql_server::{StandIn, grant, prop, text};
use crate::support::samba::{Dc, PASSWORD};
use crate::support::{self, Cli, json_out};

/// `samba-tool <args>` on the DC's own database.
fn samba_tool(dc: &Dc, args: &[&str]) {
    rehydra_test_support::run(
        Command::new("samba-tool")
            .args(args)
            .arg("--configfile")
            .arg(dc.dir.path().join("etc/smb.conf")),
    );
}

/// A domain account `user` whose keys are exported to `keytab` (for a service principal
/// `spn` registered on it, when given).
fn account(dc: &Dc, user: &str, spn: Option<&str>, keytab: &Path) {
    samba_tool(dc, &["user", "add", user, PASSWORD]);
    let principal = match spn {
        Some(spn) => {
            samba_tool(dc, &["spn", "add", spn, user]);
            spn.to_string()
        }
        None => user.to_string(),
    };
    let kt = keytab.to_str().unwrap();
    samba_tool(
        dc,
        &[
            "domain",
            "exportkeytab",
            kt,
            &format!("--principal={principal}"),
        ],
    );
}

/// A plugin's discovery of `sql01.test.lan`, run with the administrator's ticket or none.
fn discover(cli: &Cli, dc: &Dc, ticket: bool) -> Value {
    let mut c = cli.cmd(None);
    c.args(["--json", "plugins", "run", "sql-server", "discover"])
        .args(["--set", "servers=sql01.test.lan"])
        .envs(dc.kerberos(ticket));
    json_out(&c.output().unwrap())
}

/// The instance was unreachable to the plugin, which was told only that the sign-in
/// (`sign_in`: how it was made) failed: nothing of `hidden` (where the host looked, who it
/// signed in as).
fn told_only_that_it_failed(found: &Value, sign_in: &str, hidden: &str) {
    let why = prop(&found[0], "unreachable").unwrap_or_default();
    assert!(
        why.contains(&format!("{sign_in} failed (the job log says why)")) && !why.contains(hidden),
        "{found}"
    );
}

/// The plugin reached the instance: nothing unreachable, its database `sales` found.
fn reached(found: &Value) {
    assert_eq!(prop(&found[0], "unreachable"), None, "{found}");
    assert!(
        found
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "sales"),
        "{found}"
    );
}

/// The principals the stand-in let in, in order.
fn signed_in(state: &Path) -> Vec<String> {
    std::fs::read_to_string(state.join("logins.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["principal"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn sql_server_signed_in_to_with_kerberos_as_the_account_rehydra_runs_as() {
    let dc = Dc::start(false);
    let cli = Cli::new(&["sql-server"]);
    cli.init_repo();
    let dir = cli.dir.path().join("sql");
    let tls = dir.join("tls");
    // for the name alone: reached at 127.0.0.1, the certificate is checked against the name
    support::certificates_for(&tls, "DNS:sql01.test.lan", "sql01.test.lan");
    let service_keys = dir.join("sql01.keytab");
    std::fs::create_dir_all(&dir).unwrap();
    account(
        &dc,
        "svc-sql01",
        Some("MSSQLSvc/sql01.test.lan:1433"),
        &service_keys,
    );
    let sql = StandIn::start_with(&dir, &tls, |c| {
        c.arg("--keytab")
            .arg(&service_keys)
            .envs(dc.kerberos(false));
    });
    let state = dir.join("state");
    let address = sql.server();
    let ca = tls.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let add = |name: &str, more: &[&str], env: &[(&str, &Path)]| -> Output {
        let mut c = cli.cmd(None);
        c.args([
            "plugins",
            "sql-server",
            "add",
            name,
            "--integrated",
            "--address",
            &address,
        ])
        .args(["--ca-file", ca])
        .args(more);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let no_ticket = dc.kerberos(false);
    let no_ticket: Vec<_> = no_ticket.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let ticket = dc.kerberos(true);
    let ticket: Vec<_> = ticket.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let refused = |o: &Output, says: &str| {
        assert!(!o.status.success() && text(o).contains(says), "{}", text(o));
    };

    // ---- what cannot work is refused before anything is kept
    refused(
        &add("sql01.test.lan", &["--password-env", "SQL_PW"], &ticket),
        "cannot be used with",
    );
    // the service principal is made of the name: an address is none
    refused(
        &add(&address, &[], &ticket),
        "needs the instance's full host name",
    );
    // no ticket: the fix is named
    let o = add("sql01.test.lan", &[], &no_ticket);
    refused(
        &o,
        "the sign-in as the account Rehydra runs as failed (Kerberos): No credentials",
    );
    refused(
        &o,
        "kinit, or for a service a client keytab named by KRB5_CLIENT_KTNAME",
    );
    // a port the instance has no service principal for: the KDC has no such service
    refused(
        &add("sql01.test.lan:1444", &[], &ticket),
        "no service principal MSSQLSvc/sql01.test.lan:1444: register it",
    );
    assert!(
        signed_in(&state).is_empty(),
        "no login reached the instance"
    );
    let listed = json_out(&cli.run(None, &["--json", "plugins", "sql-server", "list"]));
    assert_eq!(listed, serde_json::json!([]), "nothing was kept");

    // ---- the administrator's ticket (kinit): signed in, nothing secret kept
    let o = add("sql01.test.lan", &[], &ticket);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("as TEST\\Administrator"), "{}", text(&o));
    assert_eq!(signed_in(&state), ["Administrator@TEST.LAN"]);
    let listed = json_out(&cli.run(None, &["--json", "plugins", "sql-server", "list"]));
    let kept = &listed[0];
    assert_eq!(kept["kind"], "integrated", "{listed}");
    assert_eq!(kept["login"], "", "{listed}");
    assert!(
        kept.get("password").is_none(),
        "no password is kept: {listed}"
    );

    // ---- a plugin's queries go through the same sign-in; it is given no credential,
    // nor told where the host looked for one
    grant(&cli, &["sql01.test.lan"], &dir);
    told_only_that_it_failed(
        &discover(&cli, &dc, false),
        "the sign-in as the account Rehydra runs as",
        "ccache",
    );
    reached(&discover(&cli, &dc, true));
    assert!(signed_in(&state).len() >= 2);
    assert!(
        signed_in(&state)
            .iter()
            .all(|p| p == "Administrator@TEST.LAN"),
        "{:?}",
        signed_in(&state)
    );

    // ---- the service, with nobody to run kinit: MIT krb5 gets its ticket from a
    // client keytab (KRB5_CLIENT_KTNAME), so schedules run unattended
    let client_keys = dir.join("svc-rehydra.keytab");
    account(&dc, "svc-rehydra", None, &client_keys);
    let mut c = cli.cmd(None);
    c.args(["plugins", "sql-server", "check", "sql01.test.lan"])
        .envs(dc.kerberos(false))
        .env("KRB5_CLIENT_KTNAME", &client_keys);
    let o = c.output().unwrap();
    assert!(
        o.status.success() && text(&o).contains("as TEST\\svc-rehydra"),
        "{}",
        text(&o)
    );
    assert_eq!(
        signed_in(&state).last().map(String::as_str),
        Some("svc-rehydra@TEST.LAN")
    );
    only_as_one_login(&dc, &cli, &address, &client_keys);
    a_cancel_is_heard_while_the_kdc_is_silent(&dc, &cli, &address, &dir);
    a_windows_account_and_its_password(&dc, &cli, &address, &state);
}

/// A Windows account and its password, from Linux: the password gets the account a ticket
/// from the KDC, kept in memory for the sign-in; the account Rehydra runs as has none, and
/// no ticket is written to its cache.
fn a_windows_account_and_its_password(dc: &Dc, cli: &Cli, address: &str, state: &Path) {
    let dir = cli.dir.path().join("sql");
    account(dc, "alice", None, &dir.join("alice.keytab"));
    let (right, wrong) = (dir.join("alice-password"), dir.join("wrong-password"));
    std::fs::write(&right, format!("{PASSWORD}\n")).unwrap();
    std::fs::write(&wrong, "not-her-password\n").unwrap();
    for f in [&right, &wrong] {
        // (a password file every user may read is refused)
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let ca = dir.join("tls/ca.pem");
    let env = dc.kerberos(false);
    let cache = &env[1].1;
    let add = |name: &str, login: &str, password: &Path| {
        cli.cmd(None)
            .args(["plugins", "sql-server", "add", name])
            .args(["--windows-login", login, "--address", address])
            .arg("--password-file")
            .arg(password)
            .arg("--ca-file")
            .arg(&ca)
            .envs(env.clone())
            .output()
            .unwrap()
    };
    let alice = "TEST\\alice";
    let before = signed_in(state).len();

    // the service principal is made of the name: an address is none
    let o = add(address, alice, &right);
    assert!(
        !o.status.success()
            && text(&o).contains("by Kerberos, which needs the instance's full host name"),
        "{}",
        text(&o)
    );
    // a wrong password: the KDC refuses it, said with what to check; nothing reaches the instance
    let o = add("sql01.test.lan", alice, &wrong);
    assert!(
        !o.status.success()
            && text(&o).contains(
                "the Kerberos sign-in as the configured Windows account, with its password, failed (Kerberos)"
            )
            && text(&o).contains("check the account's password"),
        "{}",
        text(&o)
    );
    assert_eq!(
        signed_in(state).len(),
        before,
        "no login reached the instance"
    );

    // a NetBIOS domain that is not the default realm's: the ticket is TEST.LAN's, and the
    // instance says it signed in TEST\\alice, not OTHER\\alice: refused before any batch
    let o = add("sql01.test.lan", "OTHER\\alice", &right);
    assert!(
        !o.status.success()
            && text(&o).contains(
                "signed Rehydra in as `TEST\\alice`, but it is to sign in only as `OTHER\\alice`"
            ),
        "{}",
        text(&o)
    );

    // the right one: signed in as the account, with no ticket of the account Rehydra runs
    // as, and none written to its cache
    let o = add("sql01.test.lan", alice, &right);
    assert!(
        o.status.success() && text(&o).contains("as TEST\\alice"),
        "{}",
        text(&o)
    );
    assert_eq!(
        signed_in(state).last().map(String::as_str),
        Some("alice@TEST.LAN")
    );
    // (the cache holds the tickets of the steps before, a service's from its keytab:
    // none of alice's)
    assert!(
        std::fs::metadata(cache).is_ok_and(|m| m.len() > 0),
        "the running account's cache holds the steps before's tickets"
    );
    let alices = || {
        std::fs::read(cache)
            .unwrap_or_default()
            .windows(5)
            .any(|w| w == b"alice")
    };
    assert!(!alices(), "a ticket was written to {}", cache.display());

    // a plugin's queries go through the same sign-in; when it fails, the plugin is told
    // only that, not the account
    reached(&discover(cli, dc, false));
    std::fs::write(&right, "changed-since\n").unwrap();
    told_only_that_it_failed(
        &discover(cli, dc, false),
        "the Kerberos sign-in as the configured Windows account, with its password,",
        "alice",
    );
    assert!(!alices());
}

/// Pinned to one login (`--only-as`), the instance must say it signed that one in before
/// anything else is sent: another account's ticket is refused, naming both to the admin
/// and nothing to a plugin.
fn only_as_one_login(dc: &Dc, cli: &Cli, address: &str, client_keys: &Path) {
    let ca = cli.dir.path().join("sql/tls/ca.pem");
    let ca = ca.to_str().unwrap();
    // given in another case: Windows logins are compared without it
    let o = cli
        .cmd(None)
        .args([
            "plugins",
            "sql-server",
            "add",
            "sql01.test.lan",
            "--integrated",
        ])
        .args([
            "--only-as",
            " test\\SVC-Rehydra ",
            "--address",
            address,
            "--ca-file",
            ca,
        ])
        .envs(dc.kerberos(false))
        .env("KRB5_CLIENT_KTNAME", client_keys)
        .output()
        .unwrap();
    assert!(
        o.status.success() && text(&o).contains("as TEST\\svc-rehydra"),
        "{}",
        text(&o)
    );
    let o = cli.run(None, &["plugins", "sql-server", "list"]);
    assert!(
        text(&o).contains("only as test\\SVC-Rehydra\n"),
        "kept trimmed: {}",
        text(&o)
    );
    let mut c = cli.cmd(None);
    c.args(["plugins", "sql-server", "check", "sql01.test.lan"])
        .envs(dc.kerberos(true));
    let o = c.output().unwrap();
    assert!(
        !o.status.success()
            && text(&o).contains(
                "signed Rehydra in as `TEST\\Administrator`, but it is to sign in only as `test\\SVC-Rehydra`"
            ),
        "{}",
        text(&o)
    );
    // a plugin's batch never reaches the instance signed in as another login, and the
    // plugin is not told which
    let sent = |cli: &Cli| cli.dir.path().join("sql/state/statements.jsonl");
    let before = std::fs::read_to_string(sent(cli))
        .unwrap_or_default()
        .lines()
        .count();
    told_only_that_it_failed(
        &discover(cli, dc, true),
        "the sign-in as the account Rehydra runs as",
        "Administrator",
    );
    let after: Vec<String> = std::fs::read_to_string(sent(cli))
        .unwrap()
        .lines()
        .skip(before)
        .map(String::from)
        .collect();
    assert!(
        after.iter().all(|l| l.contains("SUSER_SNAME()")),
        "only the login was asked: {after:?}"
    );
    // not a Windows login: refused before anything is kept
    for bad in ["svc-rehydra", "TEST\\", "\\svc", "a\\b\\c"] {
        let o = cli.run(
            None,
            &[
                "plugins",
                "sql-server",
                "add",
                "sql02.test.lan",
                "--integrated",
                "--only-as",
                bad,
                "--no-check",
            ],
        );
        assert!(
            !o.status.success() && text(&o).contains("DOMAIN\\user, not"),
            "{bad}: {}",
            text(&o)
        );
    }
}

/// A KDC that never answers holds MIT's library 27 s; a backup cancelled meanwhile (Ctrl-C)
/// stops at once all the same.
fn a_cancel_is_heard_while_the_kdc_is_silent(dc: &Dc, cli: &Cli, address: &str, dir: &Path) {
    // a port taken for UDP and TCP, never answered
    let (udp, tcp) = loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(tcp) = std::net::TcpListener::bind(udp.local_addr().unwrap()) {
            break (udp, tcp);
        }
    };
    let port = udp.local_addr().unwrap().port();
    let [(_, conf), (_, cache)] = dc.kerberos(true);
    let silent = dir.join("silent-krb5.conf");
    let krb5 = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &silent,
        krb5.replace("kdc = 127.0.0.1", &format!("kdc = 127.0.0.1:{port}")),
    )
    .unwrap();
    // the administrator's ticket-granting ticket, but no ticket for this port's principal yet
    let tickets = dir.join("silent-ccache");
    let ca = dir.join("tls/ca.pem").display().to_string();
    std::fs::copy(&cache, &tickets).unwrap();
    cli.ok(
        None,
        &[
            "plugins",
            "sql-server",
            "add",
            "sql01.test.lan:1445",
            "--integrated",
        ]
        .into_iter()
        .chain(["--address", address, "--no-check", "--ca-file", &ca])
        .collect::<Vec<_>>(),
    );
    grant(cli, &["sql01.test.lan:1445"], dir);
    let stage = format!("staging={}", dir.display());
    let child = cli
        .cmd(None)
        .args([
            "plugins",
            "run",
            "sql-server",
            "backup",
            "--asset",
            "sql01.test.lan:1445/sales",
        ])
        .args(["--set", "level=full", "--set", &stage])
        .env("KRB5_CONFIG", &silent)
        .env("KRB5CCNAME", &tickets)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // once MIT's library is asking the silent KDC (over UDP, or TCP for a large request)
    udp.set_nonblocking(true).unwrap();
    tcp.set_nonblocking(true).unwrap();
    let t = std::time::Instant::now();
    let _held = loop {
        if udp.peek_from(&mut [0; 8]).is_ok() {
            break None;
        }
        if let Ok((held, _)) = tcp.accept() {
            break Some(held);
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(60),
            "the KDC was never asked"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let asked = std::time::Instant::now();
    rehydra_test_support::run(Command::new("kill").args(["-INT", &child.id().to_string()]));
    let o = child.wait_with_output().unwrap();
    assert!(
        !o.status.success() && text(&o).contains("cancel"),
        "{}",
        text(&o)
    );
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(8),
        "the cancel waited for the KDC: {:?}",
        asked.elapsed()
    );
    drop((udp, tcp));
}
