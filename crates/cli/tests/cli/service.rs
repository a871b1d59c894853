//! The always-on service and notifications: `rehydra service` runs due policies with no
//! app open, one service per catalog, stops on SIGTERM; a failed run calls a webhook (a
//! local HTTP server that answers 503 once, to be retried), pings a dead man's switch
//! and mails a summary over STARTTLS to aiosmtpd (from PyPI, installed by setup.sh),
//! and no secret reaches a log, a mail or a webhook body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::object_storage::{cache, free_port, start};

const PASSWORD: &str = "repo-pw-SECRET-42";
const TOKEN: &str = "hook-SECRET-TOKEN";

pub(super) struct Env {
    pub(super) dir: tempfile::TempDir,
}

impl Env {
    pub(super) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    pub(super) fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rehydra"));
        c.env("REHYDRA_REPOSITORY", self.path("repo"))
            .env("REHYDRA_PASSWORD", PASSWORD)
            .env("REHYDRA_CACHE_DIR", self.path("cache"))
            .env("REHYDRA_CATALOG", self.path("catalog.db"))
            .env("REHYDRA_PLUGIN_PATH", self.path("plugins"))
            .env_remove("REHYDRA_PASSWORD_FILE")
            .stdin(Stdio::null());
        c
    }
    pub(super) fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    pub(super) fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "rehydra {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

/// A request the test server received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    body: String,
}

/// An HTTP server on loopback that records every request and answers 200, except the
/// first POST, which gets 503.
fn hook_server() -> (u16, Arc<Mutex<Vec<Request>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::<Request>::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            );
            let mut len = 0;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let mut seen = s2.lock().unwrap();
            let first_post = method == "POST" && !seen.iter().any(|q| q.method == "POST");
            seen.push(Request {
                method,
                path,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            drop(seen);
            let status = if first_post {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, seen)
}

pub(super) fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn mails(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap());
            }
        }
    }
    out
}

#[test]
fn the_service_runs_due_policies_and_tells_people_when_one_fails() {
    let e = Env {
        dir: tempfile::tempdir().unwrap(),
    };
    e.ok(&["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]);
    let data = e.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "hello").unwrap();

    // the mail server: aiosmtpd requiring STARTTLS with a certificate from a test CA
    let tls = e.path("tls");
    super::support::certificates(&tls, "localhost");
    let smtp = free_port();
    let maildir = e.path("maildir");
    let _aiosmtpd = start(
        &cache().join("venv/bin/python"),
        &[
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{smtp}"),
            "--tlscert",
            tls.join("srv.pem").to_str().unwrap(),
            "--tlskey",
            tls.join("srv.key").to_str().unwrap(),
            "-c",
            "aiosmtpd.handlers.Mailbox",
            maildir.to_str().unwrap(),
        ],
        smtp,
        e.dir.path(),
    );
    let (http, seen) = hook_server();
    let hook = format!("http://127.0.0.1:{http}/hook/{TOKEN}");
    let notify = |ping: &str| -> Vec<String> {
        [
            "--webhook",
            &hook,
            "--ping",
            &format!("http://127.0.0.1:{http}/ping/{ping}"),
            "--mail-to",
            "ops@example.com",
            "--mail-from",
            "rehydra@example.com",
            "--smtp-server",
            &format!("localhost:{smtp}"),
            "--smtp-ca-file",
            tls.join("ca.pem").to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    // bad settings are refused by name before anything is saved
    let o = e.run(&[
        "policy",
        "add",
        "x",
        "--folder",
        "/",
        "--keep-last",
        "1",
        "--webhook",
        "file:///etc/passwd",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("webhook must be an http(s)"));
    // every 1.8 s: "good" backs up a folder, "bad" names one that does not exist
    let add = |name: &str, folder: &Path, when: &str| {
        let mut args: Vec<String> = [
            "policy",
            "add",
            name,
            "--folder",
            folder.to_str().unwrap(),
            "--every-hours",
            "0.0005",
            "--keep-last",
            "2",
            "--notify-when",
            when,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(notify(name));
        e.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    };
    add("good", &data, "failure");
    add("bad", &e.path("gone"), "failure");

    // `policy run --due` goes on past the failed policy and reports both
    let o = e.run(&["policy", "run", "--due"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("policy bad: failed"), "{err}");
    assert!(out.contains("policy good: restore point"), "{out}");
    assert!(
        !err.contains("notification not sent"),
        "the 503 is retried: {err}"
    );
    {
        let seen = seen.lock().unwrap();
        let posts: Vec<&Request> = seen.iter().filter(|r| r.method == "POST").collect();
        assert_eq!(
            posts.len(),
            2,
            "one failure event, sent twice (503, then 200): {seen:?}"
        );
        let ev: serde_json::Value = serde_json::from_str(&posts[1].body).unwrap();
        assert_eq!(ev["event"], "policy-run");
        assert_eq!(ev["policy"], "bad");
        assert_eq!(ev["status"], "failed");
        assert!(ev["error"].as_str().unwrap().contains("gone"), "{ev}");
        assert!(
            ev["summary"]
                .as_str()
                .unwrap()
                .starts_with("Rehydra policy `bad` FAILED")
        );
        // the dead man's switch hears both: success plainly, failure at /fail
        assert!(
            seen.iter()
                .any(|r| r.method == "GET" && r.path == "/ping/good")
        );
        assert!(
            seen.iter()
                .any(|r| r.method == "GET" && r.path == "/ping/bad/fail")
        );
    }
    wait_for("the mail", 20, || !mails(&maildir).is_empty());
    let m = mails(&maildir).remove(0);
    assert!(
        m.contains("Subject: [Rehydra] policy bad: FAILED on "),
        "{m}"
    );
    assert!(m.contains("To: ops@example.com"), "{m}");

    // `policy list` says a policy keeps failing
    assert!(
        e.ok(&["policy", "list"])
            .contains("failed 1 time(s) since its last success"),
        "{}",
        e.ok(&["policy", "list"])
    );
    // the service: runs what is due with nobody at the keyboard
    let log = std::fs::File::create(e.path("service.log")).unwrap();
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut svc = e
        .cmd()
        .args(["service", "--interval", "1", "--metrics", &metrics_addr])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let service_log = || std::fs::read_to_string(e.path("service.log")).unwrap();
    wait_for("the service to start", 30, || {
        service_log().contains("service started")
    });
    // one per catalog, and others can see it
    let o = e.run(&["service", "--interval", "1"]);
    assert_eq!(o.status.code(), Some(11), "the lock's exit code");
    assert!(String::from_utf8_lossy(&o.stderr).contains("already runs on this machine"));
    assert!(
        e.ok(&["service", "--status"])
            .contains(&format!("process {}", svc.id()))
    );
    let good_points = || {
        let l: Vec<serde_json::Value> =
            serde_json::from_str(&e.ok(&["--json", "restore-points", "--tag", "policy:good"]))
                .unwrap();
        l.len()
    };
    std::fs::write(data.join("b.txt"), "more").unwrap();
    let mails_before = mails(&maildir).len();
    wait_for("two more runs of `good`", 60, || {
        service_log().matches("policy good: succeeded").count() >= 2
    });
    assert_eq!(good_points(), 2, "its retention keeps two");
    wait_for("the service's failure mail", 30, || {
        mails(&maildir).len() > mails_before
    });
    // the metrics endpoint: what ran, what failed, when each policy last succeeded
    let scrape = Command::new("curl")
        .args(["-sf", &format!("http://{metrics_addr}/metrics")])
        .output()
        .unwrap();
    assert!(scrape.status.success());
    let metrics = String::from_utf8(scrape.stdout).unwrap();
    let value = |line_start: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in:\n{metrics}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(value("rehydra_jobs_total{kind=\"backup\",status=\"succeeded\"}") >= 3.0);
    assert!(value("rehydra_policy_failures{policy=\"bad\",repository=") >= 1.0);
    assert!(
        value("rehydra_policy_last_success_timestamp_seconds{policy=\"good\",repository=") > 1.7e9
    );
    assert_eq!(value("rehydra_up"), 1.0);
    assert!(metrics.contains("# TYPE rehydra_jobs_total counter"));
    let not_found = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{metrics_addr}/"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&not_found.stdout), "404");
    let log_text = service_log();
    assert!(log_text.contains("policy bad: failed:"), "{log_text}");
    assert!(log_text.contains("(next attempt after "), "{log_text}");

    // SIGTERM: it cancels what runs and stops, and the lock goes with it
    Command::new("kill")
        .arg(svc.id().to_string())
        .status()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = svc.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the service did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    assert!(service_log().contains("service stopped"));
    assert!(e.ok(&["service", "--status"]).contains("no service runs"));

    // the JSON log next to the catalog: every job's start and end with its id
    let mut json_log = String::new();
    for f in std::fs::read_dir(e.path("logs")).unwrap().flatten() {
        json_log += &std::fs::read_to_string(f.path()).unwrap();
    }
    let events: Vec<serde_json::Value> = json_log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|err| panic!("{err}: {l}")))
        .collect();
    let finished: Vec<&serde_json::Value> = events
        .iter()
        .filter(|ev| {
            ev["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("job finished"))
        })
        .collect();
    assert!(
        finished
            .iter()
            .any(|ev| ev["status"] == "succeeded" && ev["job"].as_i64().is_some()),
        "{json_log}"
    );
    assert!(
        events.iter().any(|ev| ev["policy"] == "bad"
            && ev["level"] == "ERROR"
            && ev["message"].as_str().unwrap().contains("gone")),
        "the failed policy, and why: {json_log}"
    );
    assert!(
        events
            .iter()
            .any(|ev| ev["message"].as_str().unwrap().contains("service started")),
        "{json_log}"
    );
    // no secret in the logs, the mails or the webhook bodies
    let mut everything = service_log();
    everything.push_str(&json_log);
    everything.push_str(&metrics);
    everything.extend(mails(&maildir));
    for r in seen.lock().unwrap().iter() {
        everything.push_str(&r.body);
    }
    assert!(!everything.contains(PASSWORD));
    assert!(!everything.contains(TOKEN), "the webhook's token leaked");
}

/// `service install` and `uninstall` are the Windows service's (tested under Wine by
/// scripts/windows-test.sh); here they say where Linux's service is, and change nothing.
#[test]
fn installing_the_windows_service_on_linux_points_to_the_systemd_unit() {
    let e = Env {
        dir: tempfile::tempdir().unwrap(),
    };
    for args in [
        &["service", "install"][..],
        &["service", "uninstall"],
        &["service", "--windows-service"],
    ] {
        let o = e.run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("rehydra.service") || err.contains("run `rehydra service` here"),
            "{args:?}: {err}"
        );
    }
    // options of the running service belong to it, not to install's subcommand
    let o = e.run(&["service", "--interval", "5", "install"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(!e.path("catalog.db").exists());
}
