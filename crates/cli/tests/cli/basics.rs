//! The `rehydra` binary as users and schedulers run it: exit codes, JSON, crash safety.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub(crate) struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Self {
        let e = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = e.run(&[
            "init",
            "--kdf-memory-kib",
            "1024",
            "--kdf-iterations",
            "1",
            "--pack-size-mib",
            "1",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        e
    }
    pub(crate) fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }
    pub(crate) fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rehydra"));
        c.env("REHYDRA_REPOSITORY", self.repo())
            .env("REHYDRA_PASSWORD", "pw")
            .env("REHYDRA_CACHE_DIR", self.dir.path().join("cache"))
            .env("REHYDRA_CATALOG", self.dir.path().join("catalog.db"))
            .env_remove("REHYDRA_PASSWORD_FILE")
            .stdin(Stdio::null());
        c
    }
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "rehydra {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

pub(crate) fn write_random(p: &Path, len: usize, seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(p, v).unwrap();
}

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn main_job_backup_restore_json_and_exit_codes() {
    let e = Env::new();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    write_random(&src.join("a"), 300_000, 1);
    let out = e.ok(&[
        "--json",
        "backup",
        src.to_str().unwrap(),
        "--tag",
        "nightly",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = v["restore_point"]["id"].as_str().unwrap().to_string();
    let list: serde_json::Value =
        serde_json::from_str(&e.ok(&["--json", "restore-points", "--tag", "nightly"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    e.ok(&[
        "restore",
        &id[..8],
        "--target",
        e.path("out").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(e.path("out/a")).unwrap(),
        std::fs::read(src.join("a")).unwrap()
    );
    // restore target exists → 13, nothing changed
    assert_eq!(
        code(&e.run(&[
            "restore",
            "latest",
            "--target",
            e.path("out").to_str().unwrap()
        ])),
        13
    );
    // wrong password → 12 (as restic)
    assert_eq!(
        code(
            &e.cmd()
                .env("REHYDRA_PASSWORD", "nope")
                .args(["restore-points"])
                .output()
                .unwrap()
        ),
        12
    );
    // not a repository → 10
    assert_eq!(
        code(
            &e.cmd()
                .env("REHYDRA_REPOSITORY", e.path("src"))
                .args(["restore-points"])
                .output()
                .unwrap()
        ),
        10
    );
    // unknown restore point → 2
    assert_eq!(code(&e.run(&["restore", "ffffffffff", "--target", "x"])), 2);
    // password file
    std::fs::write(e.path("pwfile"), "pw\n").unwrap();
    let o = e
        .cmd()
        .env_remove("REHYDRA_PASSWORD")
        .arg("--password-file")
        .arg(e.path("pwfile"))
        .arg("restore-points")
        .output()
        .unwrap();
    assert!(o.status.success());
    // no password and no terminal → clear error
    let o = e
        .cmd()
        .env_remove("REHYDRA_PASSWORD")
        .arg("restore-points")
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("REHYDRA_PASSWORD"));
    // a password command: its first line; a failing one is named, its output never shown
    let with_command = |cmd: &str| {
        e.cmd()
            .env_remove("REHYDRA_PASSWORD")
            .args(["--password-command", cmd, "restore-points"])
            .output()
            .unwrap()
    };
    assert!(with_command("printf 'pw\\nsecond line'").status.success());
    let o = with_command("echo not-the-password");
    assert_eq!(code(&o), 12, "wrong password");
    let o = with_command("echo pw-leak; true token-in-the-command; exit 3");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the password command failed (exit status: 3)"),
        "{err}"
    );
    assert!(
        !err.contains("pw-leak") && !err.contains("token-in-the-command"),
        "{err}"
    );
    // check, stats, catalog, key list
    e.ok(&["check", "--read-data"]);
    assert!(e.ok(&["stats"]).contains("restore points: 1"));
    assert!(e.ok(&["catalog", "rebuild"]).contains("1 restore point"));
    assert!(e.ok(&["catalog", "runs"]).contains("backup"));
    assert!(e.ok(&["key", "list"]).contains('*'));
    // a reader that went away (`rehydra restore-points | head -0`): 141 and no panic
    let mut c = e
        .cmd()
        .arg("restore-points")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(c.stdout.take());
    let o = c.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(141),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn stdin_stream_roundtrip() {
    let e = Env::new();
    write_random(&e.path("blob"), 2_000_000, 3);
    let mut c = e.cmd();
    c.args(["backup", "--stdin", "--stdin-name", "db.bak"])
        .stdin(std::fs::File::open(e.path("blob")).unwrap());
    assert!(c.output().unwrap().status.success());
    e.ok(&[
        "restore",
        "latest",
        "--target",
        e.path("restored.bak").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(e.path("restored.bak")).unwrap(),
        std::fs::read(e.path("blob")).unwrap()
    );
}

#[test]
fn special_file_gives_exit_3_and_keeps_the_rest() {
    let e = Env::new();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    write_random(&src.join("ok"), 1000, 1);
    // a FIFO is not backed up: reported, restore point still made
    let st = Command::new("mkfifo")
        .arg(src.join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    let o = e.run(&["backup", src.to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("special file"));
    assert!(e.ok(&["restore-points"]).contains("1 restore point"));
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        count_files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn kill_at(e: &Env, args: &[&str], after: Duration) -> bool {
    let mut child = e
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    !finished
}

#[test]
fn sigkill_during_backup_and_prune_leaves_a_consistent_repository() {
    let e = Env::new();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..6 {
        write_random(&src.join(format!("f{i}")), 8 << 20, i);
    }
    e.ok(&["backup", src.to_str().unwrap()]);
    let first: serde_json::Value =
        serde_json::from_str(&e.ok(&["--json", "restore-points"])).unwrap();
    // kill each backup after it stored 1, 3, 5 … new packs: always mid-backup, at different points
    for (round, packs) in [1usize, 3, 5, 8, 12].into_iter().enumerate() {
        write_random(
            &src.join(format!("new{round}")),
            24 << 20,
            100 + round as u64,
        );
        let before = count_files(&e.repo().join("packs"));
        let mut child = e
            .cmd()
            .args(["backup", src.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        while count_files(&e.repo().join("packs")) < before + packs
            && t.elapsed() < Duration::from_secs(60)
        {
            assert!(
                child.try_wait().unwrap().is_none(),
                "backup finished before {packs} packs were stored: make the data larger"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let o = e.run(&["check"]);
        assert!(
            o.status.success(),
            "check after SIGKILL at {packs} packs: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // earlier restore point intact, next backup succeeds
    let id = first[0]["id"].as_str().unwrap();
    e.ok(&["restore", id, "--target", e.path("r1").to_str().unwrap()]);
    assert_eq!(
        std::fs::read(e.path("r1/f3")).unwrap(),
        std::fs::read(src.join("f3")).unwrap()
    );
    e.ok(&["backup", src.to_str().unwrap()]);
    // prune killed at several points
    e.ok(&["forget", "--keep-last", "1"]);
    for ms in [5u64, 40, 100, 200] {
        kill_at(&e, &["prune"], Duration::from_millis(ms));
        let o = e.run(&["check"]);
        assert!(
            o.status.success(),
            "check after prune SIGKILL at {ms} ms: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // a stale prune lock from a killed process is detected
    let p = e.ok(&["prune"]);
    assert!(p.contains("freed") || p.contains("deleted"), "{p}");
    let o = e.ok(&["check", "--read-data"]);
    assert!(
        o.contains("no errors") && !o.contains("not named by any index"),
        "{o}"
    );
    e.ok(&[
        "restore",
        "latest",
        "--target",
        e.path("r2").to_str().unwrap(),
    ]);
    for f in std::fs::read_dir(&src).unwrap().flatten() {
        let name = f.file_name();
        assert_eq!(
            std::fs::read(e.path("r2").join(&name)).unwrap(),
            std::fs::read(f.path()).unwrap()
        );
    }
}

#[test]
fn two_processes_back_up_at_once() {
    let e = Env::new();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..3 {
        write_random(&src.join(format!("f{i}")), 4 << 20, i);
    }
    let a = e
        .cmd()
        .args(["backup", src.to_str().unwrap()])
        .spawn()
        .unwrap();
    let b = e
        .cmd()
        .args(["backup", src.to_str().unwrap(), "--tag", "b"])
        .spawn()
        .unwrap();
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    assert!(e.ok(&["restore-points"]).contains("2 restore point"));
    e.ok(&["check", "--read-data"]);
    e.ok(&["prune"]);
    let st: serde_json::Value = serde_json::from_str(&e.ok(&["--json", "stats"])).unwrap();
    let (packs, unique) = (
        st["pack_bytes"].as_u64().unwrap(),
        st["unique_bytes"].as_u64().unwrap(),
    );
    assert!(
        packs < unique + unique / 10,
        "shared chunks stored once after prune: {packs} vs {unique}"
    );
}

#[test]
fn disk_full_is_a_clear_error_and_loses_nothing() {
    let mnt = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP disk_full: cannot mount a small tmpfs here (needs root)");
        return;
    }
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Umount(mnt.path().to_path_buf());
    let work = tempfile::tempdir().unwrap();
    let repo = mnt.path().join("repo");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rehydra"))
            .env("REHYDRA_REPOSITORY", &repo)
            .env("REHYDRA_PASSWORD", "pw")
            .env("REHYDRA_CACHE_DIR", work.path().join("cache"))
            .env("REHYDRA_CATALOG", work.path().join("c.db"))
            .args(args)
            .output()
            .unwrap()
    };
    assert!(
        run(&[
            "init",
            "--kdf-memory-kib",
            "1024",
            "--kdf-iterations",
            "1",
            "--pack-size-mib",
            "1"
        ])
        .status
        .success()
    );
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    write_random(&src.join("small"), 500_000, 1);
    assert!(run(&["backup", src.to_str().unwrap()]).status.success());
    write_random(&src.join("big"), 20 << 20, 2);
    let o = run(&["backup", src.to_str().unwrap()]);
    assert_eq!(code(&o), 16, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no space"));
    std::fs::remove_file(src.join("big")).unwrap();
    let c = run(&["check", "--read-data"]);
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stdout));
    let r = run(&[
        "restore",
        "latest",
        "--target",
        work.path().join("out").to_str().unwrap(),
    ]);
    assert!(r.status.success());
}

#[test]
fn copy_and_policy_copy_targets() {
    let e = Env::new();
    let data = e.path("data");
    std::fs::create_dir_all(&data).unwrap();
    write_random(&data.join("a.bin"), 300_000, 1);
    let d = data.to_str().unwrap();
    let offsite = e.path("offsite");
    let off = offsite.to_str().unwrap();
    let pwfile = e.path("offsite.pw");
    std::fs::write(&pwfile, "other secret\n").unwrap();
    let pwf = pwfile.to_str().unwrap();
    e.cmd()
        .env("REHYDRA_REPOSITORY", off)
        .env("REHYDRA_PASSWORD", "other secret")
        .args(["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"])
        .output()
        .unwrap();
    e.ok(&["backup", d]);
    // the target's own password is needed: none given, then a wrong one
    let o = e.run(&["copy", "--to", off]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("REHYDRA_COPY_PASSWORD"));
    let o = e
        .cmd()
        .env("REHYDRA_COPY_PASSWORD", "nope")
        .args(["copy", "--to", off])
        .output()
        .unwrap();
    assert_eq!(code(&o), 12, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("copy target"));
    let o = e.run(&[
        "copy",
        "--to",
        e.path("nowhere").to_str().unwrap(),
        "--to-password-file",
        pwf,
    ]);
    assert_eq!(code(&o), 10, "{}", String::from_utf8_lossy(&o.stderr));
    let out = e.ok(&["copy", "--to", off, "--to-password-file", pwf]);
    assert!(out.contains("copied as"), "{out}");
    assert!(
        e.ok(&["copy", "--to", off, "--to-password-file", pwf])
            .contains("already copied")
    );
    // restore from the copy
    let back = e.path("back");
    e.cmd()
        .env("REHYDRA_REPOSITORY", off)
        .env("REHYDRA_PASSWORD", "other secret")
        .args(["restore", "latest", "--target", back.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        std::fs::read(back.join("a.bin")).unwrap(),
        std::fs::read(data.join("a.bin")).unwrap()
    );

    // a policy with a copy target: backup, retention, copy, retention there
    let o = e.run(&[
        "policy",
        "add",
        "p",
        "--folder",
        d,
        "--keep-last",
        "1",
        "--copy-to",
        &e.repo().display().to_string(),
    ]);
    assert_ne!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("another repository"));
    e.ok(&[
        "policy",
        "add",
        "p",
        "--folder",
        d,
        "--keep-last",
        "2",
        "--copy-to",
        off,
    ]);
    // no password for the target: the backup stands, the copy failure is reported, exit 1
    let o = e.run(&["policy", "run", "p"]);
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("restore point"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no password"));
    for i in 0..2 {
        write_random(&data.join("a.bin"), 300_000, 20 + i);
        let out = e.ok(&["policy", "run", "p", "--copy-password-file", pwf]);
        assert!(out.contains("copied to"), "{out}");
    }
    let snaps: Vec<serde_json::Value> = serde_json::from_str(
        &String::from_utf8(
            e.cmd()
                .env("REHYDRA_REPOSITORY", off)
                .env("REHYDRA_PASSWORD", "other secret")
                .args(["--json", "restore-points", "--tag", "policy:p"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        snaps.len(),
        2,
        "the target keeps the policy's retention (last 2)"
    );
    assert!(snaps.iter().all(|s| s["copied_from"].is_string()));
}

#[test]
fn check_storage_runs_the_backend_contract_without_a_repository() {
    let e = Env::new();
    let share = e.path("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::write(share.join("someone-elses.txt"), b"kept").unwrap();
    let s = share.to_str().unwrap();
    let out = e.ok(&["-r", s, "check", "--storage"]);
    assert!(out.contains("behaves as a repository needs"), "{out}");
    let left: Vec<_> = std::fs::read_dir(&share)
        .unwrap()
        .flatten()
        .map(|d| d.file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("someone-elses.txt")],
        "only what was there before"
    );
    // no password is asked for, and a folder that is not there is a clear error
    let o = e
        .cmd()
        .env_remove("REHYDRA_PASSWORD")
        .args(["-r", e.path("nope").to_str().unwrap(), "check", "--storage"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a folder"));
}

#[test]
fn an_item_name_given_twice_is_refused_before_anything_is_read() {
    let e = Env::new();
    let data = e.path("data");
    std::fs::create_dir(&data).unwrap();
    let d = data.to_str().unwrap();
    let o = e.run(&["backup", d, d]);
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("used twice"));
    assert!(
        e.ok(&["restore-points"]).contains("0 restore point"),
        "nothing saved"
    );
}

#[test]
fn completions_and_manual_pages_cover_every_command() {
    let e = Env::new();
    // the top-level commands, as --help lists them
    let help = e.ok(&["--help"]);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 15, "{help}");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = e.ok(&["completions", shell]);
        for c in &commands {
            assert!(script.contains(c), "{shell} completions lack `{c}`");
        }
    }
    let o = e.run(&["completions", "tcsh"]);
    assert_eq!(code(&o), 2, "an unknown shell is a usage error");
    let man = e.path("man");
    e.ok(&["man", "--dir", man.to_str().unwrap()]);
    let mut pages = vec!["rehydra".to_string()];
    pages.extend(commands.iter().map(|c| format!("rehydra-{c}")));
    pages.push("rehydra-plugins-directory-add".into());
    for p in &pages {
        let page = std::fs::read_to_string(man.join(format!("{p}.1")))
            .unwrap_or_else(|e| panic!("no manual page {p}.1: {e}"));
        assert!(page.contains(".TH"), "{p}.1 is not roff");
    }
    // the pages render
    let o = Command::new("man")
        .arg("-l")
        .arg(man.join("rehydra-backup.1"))
        .env("MANPAGER", "cat")
        .output();
    if let Ok(o) = o {
        assert!(String::from_utf8_lossy(&o.stdout).contains("SYNOPSIS"));
    }
}

/// `--limit-upload` and `--limit-download` (KiB/s) hold a backup's writes and a
/// restore's reads to the rate: 1 MiB that does not compress, at 256 KiB/s with one
/// second's worth passing at once, takes at least three seconds each way.
#[test]
fn bandwidth_limits_hold_transfers_to_their_rate() {
    let e = Env::new();
    let data = e.path("data");
    std::fs::create_dir_all(&data).unwrap();
    write_random(&data.join("a.bin"), 1 << 20, 3);
    let d = data.to_str().unwrap();
    let o = e.run(&["--limit-upload", "0", "backup", d]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--limit-upload"));
    let start = std::time::Instant::now();
    e.ok(&["--limit-upload", "256", "backup", d]);
    let up = start.elapsed();
    assert!(up >= Duration::from_millis(2800), "backup took {up:?}");
    let target = e.path("restored");
    let start = std::time::Instant::now();
    e.cmd()
        .env("REHYDRA_LIMIT_DOWNLOAD", "256")
        .args(["restore", "latest", "--target", target.to_str().unwrap()])
        .output()
        .map(|o| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr)))
        .unwrap();
    let down = start.elapsed();
    assert!(down >= Duration::from_millis(2800), "restore took {down:?}");
    assert_eq!(
        std::fs::read(target.join("a.bin")).unwrap(),
        std::fs::read(data.join("a.bin")).unwrap()
    );
}

/// `--json --progress json`: every line on stdout is a JSON object; each phase's status
/// at its start and end (and at most every second between), then the result marked
/// `summary`, as a wrapper or a service reads them.
#[test]
fn json_progress_lines_end_in_the_summary() {
    let e = Env::new();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    write_random(&src.join("a"), 3 << 20, 5);
    let d = src.to_str().unwrap();
    let o = e.run(&["--progress", "json", "backup", d]);
    assert_eq!(code(&o), 2, "JSON status lines go with --json");
    let lines = |out: &str| -> Vec<serde_json::Value> {
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not one JSON object: {l}")))
            .collect()
    };
    let out = lines(&e.ok(&["--json", "--progress", "json", "backup", d]));
    let (last, status) = out.split_last().unwrap();
    assert_eq!(last["message_type"], "summary");
    assert!(last["restore_point"]["id"].is_string(), "{last}");
    assert!(
        status.iter().all(|s| s["message_type"] == "status"),
        "{out:?}"
    );
    let backup: Vec<_> = status.iter().filter(|s| s["phase"] == "backup").collect();
    assert_eq!(backup[0]["bytes_done"], 0);
    let end = backup.last().unwrap();
    assert!(
        end["bytes_done"].as_u64().unwrap() >= 3 << 20 && end["percent_done"] == 1.0,
        "{end}"
    );
    let target = e.path("out");
    let o = e
        .cmd()
        .env("REHYDRA_PROGRESS", "json")
        .args([
            "--json",
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = lines(&String::from_utf8(o.stdout).unwrap());
    assert!(out.iter().any(|s| s["phase"] == "restore"), "{out:?}");
    assert_eq!(out.last().unwrap()["message_type"], "summary");
}

/// `key remember` where no keychain answers (this machine's tests run with no Secret
/// Service session): a clear error naming the keychain, and commands go on asking the
/// other sources; a relative repository path is refused before any keychain is asked.
/// The kept password in use is tested in Wine's Credential Manager (windows-test.sh).
#[test]
fn key_remember_without_a_keychain_says_so_and_nothing_else_changes() {
    let e = Env::new();
    let mut c = e.cmd();
    let o = c
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .args(["key", "remember"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("keychain"), "{err}");
    let o = e
        .cmd()
        .args(["-r", "repo", "key", "remember"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains("relative path"), "{err}");
    // with no password at all, the error names every source, the keychain too
    let o = e
        .cmd()
        .env_remove("REHYDRA_PASSWORD")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .args(["restore-points"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(code(&o), 0, "{err}");
    assert!(err.contains("key remember"), "{err}");
}
