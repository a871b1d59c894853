//! The service's door for operators (`service --operators GROUP`, `rehydra operator`):
//! people who cannot open the service's catalog see its policies and their results, run
//! one now and cancel such a run, through a Unix socket of mode 0660 and the group's;
//! nothing of the policies' settings reaches them (a webhook's token), the service names
//! who asked as the kernel says, a line that is no request is refused, and what lies at
//! the socket's path is never replaced unless it is a socket nobody answers at. As root,
//! the door is also tried as two other accounts: `nobody`, in the group, let in, and
//! `daemon`, not in it, refused.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use super::service::{Env, wait_for};

const TOKEN: &str = "operators-SECRET-TOKEN";

/// `rehydra` as an operator: another catalog, no repository, no password.
fn operator(bin: &Path, sock: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("REHYDRA_SERVICE_SOCKET", sock)
        .env("REHYDRA_CATALOG", sock.with_file_name("operator.db"))
        .args(args)
        .stdin(Stdio::null());
    c
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A command that failed with `code`, saying each of `says`.
#[track_caller]
fn refused(o: &Output, code: i32, says: &[&str]) {
    assert_eq!(o.status.code(), Some(code), "{}", out(o));
    for s in says {
        assert!(out(o).contains(s), "not said `{s}`: {}", out(o));
    }
}

fn service(e: &Env, sock: &Path, group: &str, log: &str) -> Child {
    let child = e
        .cmd()
        .env("REHYDRA_SERVICE_SOCKET", sock)
        .args(["service", "--interval", "3600", "--operators", group])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(e.path(log)).unwrap())
        .spawn()
        .unwrap();
    wait_for("the service to start", 60, || {
        std::fs::read_to_string(e.path(log))
            .unwrap()
            .contains("service started")
    });
    child
}

fn overview(bin: &Path, sock: &Path) -> serde_json::Value {
    let o = operator(bin, sock, &["--json", "operator", "status"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn stop(svc: &mut Child) {
    Command::new("kill")
        .args(["-TERM", &svc.id().to_string()])
        .status()
        .unwrap();
    assert!(svc.wait().unwrap().success());
}

#[test]
fn operators_see_and_run_the_services_policies_through_its_socket_only() {
    let e = Env {
        dir: tempfile::tempdir().unwrap(),
    };
    let root = nix::unistd::Uid::effective().is_root();
    // as root the door is tried by other accounts: they need to reach the binary
    std::fs::set_permissions(e.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin: PathBuf = e.path("rehydra");
    std::fs::copy(env!("CARGO_BIN_EXE_rehydra"), &bin).unwrap();
    let sock = e.path("run/operators.sock");
    let group = if root {
        "nogroup".to_string()
    } else {
        nix::unistd::Group::from_gid(nix::unistd::Gid::effective())
            .unwrap()
            .unwrap()
            .name
    };
    e.ok(&["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]);
    let data = e.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "hello").unwrap();
    let webhook = format!("http://127.0.0.1:9/{TOKEN}");
    let folder = data.to_str().unwrap();
    let add = |name: &str, extra: &[&str]| {
        let mut a = vec![
            "policy",
            "add",
            name,
            "--folder",
            folder,
            "--every-hours",
            "24",
        ];
        a.extend_from_slice(&["--keep-last", "5", "--webhook", &webhook]);
        a.extend_from_slice(extra);
        e.ok(&a);
    };
    add("nightly", &[]);
    add("weekly", &[]);
    add("elsewhere", &["-r", e.path("other-repo").to_str().unwrap()]);

    // nothing answers yet: said, with the fix
    let o = operator(&bin, &sock, &["operator", "status"])
        .output()
        .unwrap();
    refused(&o, 2, &["no Rehydra service answers operators at"]);

    // what is at the socket's path and is no socket is never replaced; a group that does
    // not exist stops the start
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    for (what, make) in [
        (
            "a file",
            &(|p: &Path| std::fs::write(p, "keep me").unwrap()) as &dyn Fn(&Path),
        ),
        ("a link", &|p: &Path| {
            std::os::unix::fs::symlink("/etc/passwd", p).unwrap()
        }),
    ] {
        make(&sock);
        let o = e
            .cmd()
            .env("REHYDRA_SERVICE_SOCKET", &sock)
            .args(["service", "--operators", &group])
            .output()
            .unwrap();
        refused(&o, 2, &["is not a socket"]);
        assert!(
            std::fs::symlink_metadata(&sock).is_ok(),
            "{what} was removed"
        );
        std::fs::remove_file(&sock).unwrap();
    }
    let o = e
        .cmd()
        .env("REHYDRA_SERVICE_SOCKET", &sock)
        .args(["service", "--operators", "no-such-group-here"])
        .output()
        .unwrap();
    refused(&o, 2, &["no such group"]);
    // nor in a folder others may write (they could swap the socket for their own)
    let open = e.path("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = e
        .cmd()
        .env("REHYDRA_SERVICE_SOCKET", open.join("operators.sock"))
        .args(["service", "--operators", &group])
        .output()
        .unwrap();
    refused(&o, 2, &["only the service's account writes"]);

    let mut svc = service(&e, &sock, &group, "service.log");
    let m = std::fs::metadata(&sock).unwrap();
    assert_eq!(m.mode() & 0o777, 0o660);
    let gid = nix::unistd::Group::from_name(&group).unwrap().unwrap().gid;
    assert_eq!(m.gid(), gid.as_raw());
    // a second service on another catalog does not take the door from the first, and
    // runs its backups all the same (saying so)
    let mut second = e
        .cmd()
        .env("REHYDRA_SERVICE_SOCKET", &sock)
        .env("REHYDRA_CATALOG", e.path("second/catalog.db"))
        .args(["service", "--operators", &group])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(e.path("second.log")).unwrap())
        .spawn()
        .unwrap();
    wait_for("the second service", 60, || {
        let log = std::fs::read_to_string(e.path("second.log")).unwrap();
        log.contains("another Rehydra service answers operators") && log.contains("service started")
    });
    second.kill().unwrap();
    second.wait().unwrap();

    // the first round ran `nightly` (never run: due); the overview shows it and its
    // result, not the other repository's policy, and nothing of its settings
    wait_for("the first round", 120, || {
        std::fs::read_to_string(e.path("service.log"))
            .unwrap()
            .contains("policy nightly: succeeded")
    });
    let v = overview(&bin, &sock);
    assert_eq!(v["repository"], e.path("repo").to_str().unwrap());
    let names: Vec<_> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, ["nightly", "weekly"], "{v}");
    assert_eq!(v["policies"][0]["what"], folder);
    assert!(v["policies"][0]["last_run"].is_string(), "{v}");
    let text = operator(&bin, &sock, &["operator", "status"])
        .output()
        .unwrap();
    for shown in [v.to_string(), out(&text)] {
        assert!(
            !shown.contains(TOKEN) && !shown.contains("127.0.0.1:9"),
            "{shown}"
        );
    }
    assert!(out(&text).contains("nightly: "), "{}", out(&text));

    // a run asked for: taken by the service, said who asked as the kernel names them
    let me = nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .unwrap()
        .unwrap()
        .name;
    let points = || {
        let v: serde_json::Value =
            serde_json::from_str(&e.ok(&["--json", "restore-points"])).unwrap();
        v.as_array().unwrap().len()
    };
    let before = points();
    // asked twice at once: one run, the second ask given the first's request
    let ask = |line: &str| -> serde_json::Value {
        use std::io::{Read as _, Write as _};
        let mut c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        c.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    };
    let (r, again) = (
        ask(r#"{"ask":"run","policy":"nightly"}"#),
        ask(r#"{"ask":"run","policy":"nightly"}"#),
    );
    let r = &r["ok"];
    assert_eq!(again["ok"]["id"], r["id"], "{again}");
    let asked = format!("operator {me} (uid {})", nix::unistd::Uid::effective());
    assert!(r["asked_by"].as_str().unwrap().starts_with(&asked), "{r}");
    let id = r["id"].as_i64().unwrap();
    let ended = |id: i64, state: &str| {
        wait_for("an operator's run", 120, || {
            overview(&bin, &sock)["requests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|q| q["id"] == id && q["state"] == state)
        });
    };
    ended(id, "succeeded");
    assert_eq!(points(), before + 1);
    // asked again so soon: refused (each run applies the retention)
    let o = operator(&bin, &sock, &["operator", "run", "nightly"])
        .output()
        .unwrap();
    refused(&o, 2, &["less than 15 minutes ago"]);
    // the admin sees it in the catalog too, with who asked
    assert!(e.ok(&["service", "--status"]).contains(&asked));

    // what the service refuses: another repository's policy, one it does not have, a
    // run that was never handed over; each named, non-zero
    for (args, says) in [
        (
            &["operator", "run", "elsewhere"][..],
            "it has no policy named elsewhere",
        ),
        (&["operator", "run", "nope"], "it has no policy named nope"),
        (
            &["operator", "cancel", "999"],
            "no run 999 was handed to it",
        ),
    ] {
        let o = operator(&bin, &sock, args).output().unwrap();
        refused(&o, 2, &[says]);
    }
    // a line that is no request gets an error, and the service goes on answering
    {
        use std::io::{Read as _, Write as _};
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        s.write_all(b"{\"ask\":\"restore\",\"path\":\"/etc\"}\n")
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(
            answer.contains("\"invalid-input\"") && answer.contains("not a request"),
            "{answer}"
        );
    }
    assert_eq!(
        overview(&bin, &sock)["policies"].as_array().unwrap().len(),
        2
    );
    // a run an administrator handed over is not an operator's to cancel
    let admin: serde_json::Value =
        serde_json::from_str(&e.ok(&["--json", "policy", "run", "weekly", "--service"])).unwrap();
    let o = operator(
        &bin,
        &sock,
        &["operator", "cancel", &admin["id"].to_string()],
    )
    .output()
    .unwrap();
    refused(&o, 2, &["not by an operator"]);
    wait_for("the administrator's run", 120, || {
        e.ok(&["service", "--status"])
            .contains("policy weekly, asked by rehydra policy run")
            && !e
                .ok(&["--json", "service", "--status"])
                .contains("\"waiting\"")
            && !e
                .ok(&["--json", "service", "--status"])
                .contains("\"running\"")
    });

    if root {
        // `nobody` is in nogroup: let in, and named; `daemon` is not: refused, told who is
        let o = operator(&bin, &sock, &["--json", "operator", "run", "weekly"])
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", out(&o));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(
            r["asked_by"]
                .as_str()
                .unwrap()
                .starts_with("operator nobody (uid 65534)"),
            "{r}"
        );
        let o = operator(&bin, &sock, &["operator", "status"])
            .uid(1)
            .gid(1)
            .output()
            .unwrap();
        refused(&o, 2, &["you may not use", "members of nogroup"]);
    } else {
        eprintln!("not root: the door is not tried as other accounts");
    }

    // killed, the service leaves its socket; the next one takes the place (nobody answers
    // there), and a stopped one removes it
    svc.kill().unwrap();
    svc.wait().unwrap();
    assert!(sock.exists());
    let mut svc = service(&e, &sock, &group, "service2.log");
    assert_eq!(overview(&bin, &sock)["policies"][0]["name"], "nightly");
    stop(&mut svc);
    assert!(!sock.exists());
}
