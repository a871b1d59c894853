//! Policies as the admin and a scheduler use them: schedules (every N hours, times of day,
//! days, windows, cron expressions), due runs and retention.

use crate::basics::{Env, code, write_random};

#[test]
fn policies_back_up_on_schedule_and_keep_what_their_retention_says() {
    let e = Env::new();
    let data = e.path("data");
    std::fs::create_dir_all(&data).unwrap();
    write_random(&data.join("a.bin"), 100_000, 1);
    let d = data.to_str().unwrap();
    // a policy must keep something, and name a folder or a plugin asset
    let o = e.run(&["policy", "add", "nightly", "--folder", d]);
    assert_ne!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("keeps something"));
    e.ok(&[
        "policy",
        "add",
        "nightly",
        "--folder",
        d,
        "--every-hours",
        "24",
        "--keep-last",
        "2",
    ]);
    // times of day, days and a window; a bad time is refused by name
    let o = e.run(&[
        "policy",
        "add",
        "x",
        "--folder",
        d,
        "--keep-last",
        "1",
        "--at",
        "25:00",
    ]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("`25:00` is not a time of day"));
    e.ok(&[
        "policy",
        "add",
        "weekdays",
        "--folder",
        d,
        "--keep-last",
        "1",
        "--at",
        "02:00",
        "--days",
        "mon,fri",
        "--window",
        "22:00-06:00",
    ]);
    assert!(
        e.ok(&["policy", "list"])
            .contains("at 02:00 on mon, fri, within 22:00-06:00"),
        "{}",
        e.ok(&["policy", "list"])
    );
    e.ok(&["policy", "remove", "weekdays"]);
    // a cron expression, with the next runs listed; one that is not, or never comes, or
    // given with --at, is refused by name
    let add_x = |schedule: &[&str]| {
        let mut args = vec!["policy", "add", "x", "--folder", d, "--keep-last", "1"];
        args.extend(schedule);
        e.run(&args)
    };
    for (schedule, why) in [
        (&["--cron", "0 2 * *"][..], "five fields"),
        (&["--cron", "0 0 30 2 *"], "never comes"),
        (
            &["--cron", "0 2 * * *", "--at", "02:00"],
            "cannot be used with",
        ),
    ] {
        let o = add_x(schedule);
        assert_eq!(code(&o), 2, "{schedule:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(why),
            "{schedule:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    e.ok(&[
        "policy",
        "add",
        "weekdays",
        "--folder",
        d,
        "--keep-last",
        "1",
        "--cron",
        "0 2 * * 1-5",
    ]);
    let list = e.ok(&["policy", "list"]);
    assert!(
        list.contains("cron 0 2 * * 1-5") && list.contains(" then "),
        "{list}"
    );
    let l: serde_json::Value = serde_json::from_str(&e.ok(&["--json", "policy", "list"])).unwrap();
    let weekdays = l
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"]["name"] == "weekdays")
        .unwrap();
    assert_eq!(weekdays["policy"]["cron"], "0 2 * * 1-5");
    assert_eq!(weekdays["upcoming"].as_array().unwrap().len(), 3);
    e.ok(&["policy", "remove", "weekdays"]);
    let l: serde_json::Value = serde_json::from_str(&e.ok(&["--json", "policy", "list"])).unwrap();
    assert_eq!(l[0]["due"], true, "never run: due");
    // due → runs; then not due any more
    e.ok(&["policy", "run", "--due"]);
    let l: serde_json::Value = serde_json::from_str(&e.ok(&["--json", "policy", "list"])).unwrap();
    assert_eq!(l[0]["due"], false);
    assert!(
        e.ok(&["policy", "run", "--due"])
            .contains("no policy is due")
    );
    // run now three more times: retention keeps the newest two of the policy's own points
    e.ok(&["backup", d]); // not the policy's: never touched by its retention
    for i in 0..3 {
        write_random(&data.join("a.bin"), 100_000, 10 + i);
        e.ok(&["policy", "run", "nightly"]);
    }
    let snaps: Vec<serde_json::Value> =
        serde_json::from_str(&e.ok(&["--json", "restore-points"])).unwrap();
    let tagged = snaps
        .iter()
        .filter(|s| {
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "policy:nightly")
        })
        .count();
    assert_eq!(tagged, 2, "keep-last 2 of the policy's restore points");
    assert_eq!(snaps.len(), 3, "the manual backup is kept");
    // a policy for another repository does not run against this one
    let other = e.path("other-repo");
    e.cmd()
        .env("REHYDRA_REPOSITORY", &other)
        .args([
            "policy",
            "add",
            "elsewhere",
            "--folder",
            d,
            "--keep-daily",
            "7",
        ])
        .output()
        .unwrap();
    let o = e.run(&["policy", "run", "elsewhere"]);
    assert_ne!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("backs up into"));
    e.ok(&["policy", "remove", "elsewhere"]);
    assert_ne!(code(&e.run(&["policy", "remove", "elsewhere"])), 0);
}

/// Each command closes the catalog before it ends, failed ones too: SQLite folds its
/// write-ahead log into the file, and no connection is still writing when the process
/// exits (under Wine a process whose threads outlive its exit is killed).
#[test]
fn every_command_ends_with_the_catalog_closed() {
    let e = Env::new();
    let data = e.path("data");
    std::fs::create_dir_all(&data).unwrap();
    write_random(&data.join("a.bin"), 10_000, 1);
    let d = data.to_str().unwrap();
    let wal = e.path("catalog.db-wal");
    let add = ["policy", "add", "p", "--folder", d, "--keep-last", "1"];
    for args in [
        &add[..],
        &["policy", "list"],
        &["policy", "run", "p"],
        &["backup", d],
        &["restore-points"],
        &["catalog", "repositories"],
    ] {
        e.ok(args);
        assert!(!wal.exists(), "rehydra {args:?} left the catalog open");
    }
    assert_ne!(
        code(&e.run(&["policy", "run", "nosuch"])),
        0,
        "no such policy"
    );
    assert!(!wal.exists(), "a failed command left the catalog open");
}
