//! Runs handed to the service (`policy run NAME --service`, what the app's "Run now" does
//! when a service runs): taken within seconds and run in the service's process, so they
//! go on after the command that asked has ended; progress and outcome written back;
//! cancelled while waiting or while running (no restore point is saved); refused when no
//! service runs or the policy is another repository's; and a run left behind by a killed
//! service is failed, saying so, when the next one starts.

use std::process::{Child, Stdio};

use super::service::{Env, wait_for};

fn requests(e: &Env) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&e.ok(&["--json", "service", "--status"])).unwrap();
    v["requests"].as_array().unwrap().clone()
}

fn state(e: &Env, id: i64) -> serde_json::Value {
    requests(e)
        .into_iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no request {id}"))
}

fn hand_over(e: &Env, policy: &str) -> i64 {
    let v: serde_json::Value =
        serde_json::from_str(&e.ok(&["--json", "policy", "run", policy, "--service"])).unwrap();
    assert_eq!(v["state"], "waiting", "{v}");
    v["id"].as_i64().unwrap()
}

/// The service, uploading at 512 KiB/s (so a run of a few MiB takes long enough to be
/// watched and cancelled), logging to service.log.
fn service(e: &Env) -> Child {
    let log = std::fs::File::create(e.path("service.log")).unwrap();
    let child = e
        .cmd()
        .env("REHYDRA_LIMIT_UPLOAD", "512")
        .args(["service", "--interval", "3600"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for("the service to start", 30, || {
        std::fs::read_to_string(e.path("service.log"))
            .unwrap()
            .contains("service started")
    });
    child
}

fn points(e: &Env) -> usize {
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["--json", "restore-points"])).unwrap();
    v.as_array().unwrap().len()
}

#[test]
fn runs_handed_to_the_service_run_there_report_progress_and_can_be_cancelled() {
    let e = Env {
        dir: tempfile::tempdir().unwrap(),
    };
    e.ok(&[
        "init",
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
        "--pack-size-mib",
        "1",
    ]);
    let (slow, quick) = (e.path("slow"), e.path("quick"));
    std::fs::create_dir_all(&slow).unwrap();
    std::fs::create_dir_all(&quick).unwrap();
    let random = || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open("/dev/urandom").unwrap(), 24 << 20),
            &mut b,
        )
        .unwrap();
        b
    };
    std::fs::write(slow.join("small.txt"), "soon bigger").unwrap();
    std::fs::write(quick.join("a.txt"), "hello").unwrap();
    for (name, dir) in [("slow", &slow), ("quick", &quick)] {
        e.ok(&[
            "policy",
            "add",
            name,
            "--folder",
            dir.to_str().unwrap(),
            "--every-hours",
            "24",
            "--keep-last",
            "5",
        ]);
    }
    // nothing is handed over while no service runs: said, non-zero, nothing recorded
    let o = e.run(&["policy", "run", "quick", "--service"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("no Rehydra service runs"));
    assert!(requests(&e).is_empty());
    // the service's first round runs both (never run: due); wait for it to be idle
    let mut svc = service(&e);
    wait_for("the first round", 180, || {
        std::fs::read_to_string(e.path("service.log"))
            .unwrap()
            .matches("succeeded (1 restore point")
            .count()
            == 2
    });
    let before = points(&e);
    // a big file, new to the repository: the next run of `slow` uploads 24 MiB at
    // 512 KiB/s; it is handed over, runs in the service and reports how far it got
    std::fs::write(slow.join("big.bin"), random()).unwrap();
    let first = hand_over(&e, "slow");
    let second = hand_over(&e, "quick");
    wait_for("the slow run's progress", 60, || {
        let r = state(&e, first);
        r["state"] == "running"
            && r["progress"]
                .as_str()
                .is_some_and(|p| p.starts_with("backup: "))
    });
    assert_eq!(state(&e, second)["state"], "waiting");
    let human = e.ok(&["service", "--status"]);
    assert!(
        human.contains("policy slow, asked by rehydra policy run")
            && human.contains("running: backup: "),
        "{human}"
    );
    // cancelled while it runs: stopped within seconds, no restore point; the next runs
    let out = e.ok(&["service", "cancel", &first.to_string()]);
    assert!(out.contains("stops it"), "{out}");
    wait_for("the slow run to stop", 30, || {
        state(&e, first)["state"] == "cancelled"
    });
    wait_for("the quick run", 60, || {
        state(&e, second)["state"] == "succeeded"
    });
    let r = state(&e, second);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("succeeded (1 restore point(s)"),
        "{r}"
    );
    assert_eq!(
        points(&e),
        before + 1,
        "only the quick run saved a restore point"
    );
    // a waiting one is cancelled before it starts; an ended one stays as it ended
    let third = hand_over(&e, "slow");
    let fourth = hand_over(&e, "slow");
    wait_for("the third to start", 30, || {
        state(&e, third)["state"] == "running"
    });
    let out = e.ok(&["service", "cancel", &fourth.to_string()]);
    assert!(out.contains("cancelled before it started"), "{out}");
    assert!(
        e.ok(&["service", "cancel", &second.to_string()])
            .contains("already ended")
    );
    let o = e.run(&["service", "cancel", "999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no service request 999"));
    // the service stopped (SIGTERM, as systemd and the SCM stop it) while it runs: the
    // job is cancelled and the run failed, saying so
    term(&mut svc);
    let r = state(&e, third);
    assert_eq!(r["state"], "failed", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("service was stopped"),
        "{r}"
    );
    assert_eq!(state(&e, fourth)["state"], "cancelled");
    // the service killed while it runs: a cancel then ends the run at once (no service
    // is there to stop it), and the next service fails what was left running
    let mut svc = service(&e);
    let fifth = hand_over(&e, "slow");
    let sixth = hand_over(&e, "slow");
    wait_for("the fifth to start", 30, || {
        state(&e, fifth)["state"] == "running"
    });
    svc.kill().unwrap();
    svc.wait().unwrap();
    let out = e.ok(&["service", "cancel", &fifth.to_string()]);
    assert!(out.contains("already ended"), "{out}");
    let r = state(&e, fifth);
    assert_eq!(r["state"], "cancelled", "{r}");
    assert!(r["message"].as_str().unwrap().contains("had ended"), "{r}");
    // (the sixth waits for a service; it is taken by the next one)
    assert_eq!(state(&e, sixth)["state"], "waiting");
    let mut svc = service(&e);
    wait_for("the sixth to start", 30, || {
        state(&e, sixth)["state"] == "running"
    });
    svc.kill().unwrap();
    svc.wait().unwrap();
    assert_eq!(state(&e, sixth)["state"], "running");
    let mut svc = service(&e);
    let r = state(&e, sixth);
    assert_eq!(r["state"], "failed", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("service ended before"),
        "{r}"
    );
    // a policy of another repository is refused, naming both
    e.ok(&[
        "-r",
        e.path("other").to_str().unwrap(),
        "init",
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
    ]);
    e.ok(&[
        "-r",
        e.path("other").to_str().unwrap(),
        "policy",
        "add",
        "elsewhere",
        "--folder",
        quick.to_str().unwrap(),
        "--keep-last",
        "1",
    ]);
    let o = e.run(&["policy", "run", "elsewhere", "--service"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("backs up into") && err.contains("other"),
        "{err}"
    );
    // both repositories are known to the catalog, the most recent first
    let known: serde_json::Value =
        serde_json::from_str(&e.ok(&["--json", "catalog", "repositories"])).unwrap();
    let locations: Vec<&str> = known
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["location"].as_str().unwrap())
        .collect();
    assert_eq!(
        locations,
        [
            e.path("other").to_str().unwrap(),
            e.path("repo").to_str().unwrap()
        ]
    );
    assert!(
        e.ok(&["catalog", "repositories"])
            .contains(e.path("repo").to_str().unwrap())
    );
    // opening one (no job) records it, a relative path made absolute, as the most recent
    let o = e
        .cmd()
        .current_dir(e.dir.path())
        .args(["-r", "repo", "key", "list"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let known: serde_json::Value =
        serde_json::from_str(&e.ok(&["--json", "catalog", "repositories"])).unwrap();
    assert_eq!(
        known[0]["location"],
        e.path("repo").to_str().unwrap(),
        "{known}"
    );
    assert_eq!(known.as_array().unwrap().len(), 2, "{known}");
    // --service is for one named policy
    assert_eq!(
        e.run(&["policy", "run", "--due", "--service"])
            .status
            .code(),
        Some(2)
    );
    term(&mut svc);
}

/// Stop the service as systemd does, and wait until it has.
fn term(svc: &mut Child) {
    std::process::Command::new("kill")
        .args(["-TERM", &svc.id().to_string()])
        .status()
        .unwrap();
    assert!(svc.wait().unwrap().success());
}
