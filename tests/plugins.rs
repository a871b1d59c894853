//! Plugins driving the engine through the API: the example plugin's full cycle, grants
//! and trust kept in the catalog, and failed plugin backups that commit nothing.

use std::path::Path;

use rehydra_api::plugins::{Limits, PluginSettings, Plugins, Property};
use rehydra_api::{Cancel, Code, NoProgress, RestorePointFilter};

use rehydra_integration_tests::TestRepo;

use rehydra_test_support::{built_plugins as built, dev_key};

/// This package's folder as cargo gives it when it runs the test (a binary built from
/// another checkout sharing the build folder would otherwise read that checkout's files).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        std::path::PathBuf::from,
    )
}

/// A plugin platform whose only plugin folder is a private one, with both plugins installed and trusted.
pub(crate) fn platform(t: &TestRepo) -> Plugins {
    platform_capped(t, Limits::HIGHEST)
}

/// As [`platform`], under the admin's `caps`.
fn platform_capped(t: &TestRepo, caps: Limits) -> Plugins {
    let dir = t.scratch("plugins");
    let settings = PluginSettings {
        dirs: vec![dir.clone()],
        install_dir: Some(dir),
        developer_mode: false,
        caps,
    };
    let p = Plugins::new(&t.ctx, settings).unwrap();
    p.trust("rehydra-dev", &dev_key()).unwrap();
    p.install(&built().join("example-files.wasm"), false, false)
        .unwrap();
    p.install(&built().join("fixture.wasm"), false, false)
        .unwrap();
    p
}

/// The fixture's backup of folder `src` as item `tree` (granting what it needs to read it).
fn backup_tree(p: &Plugins, s: &rehydra_api::Session, src: &Path) -> rehydra_api::RestorePointDto {
    p.grant(
        "fixture",
        &["engine".into(), format!("files:{}", src.display())],
    )
    .unwrap();
    p.backup(
        s,
        "fixture",
        "tree",
        &[prop("tree", src.to_str().unwrap())],
        &[],
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap()
    .restore_point
}

fn prop(n: &str, v: &str) -> Property {
    Property {
        name: n.into(),
        value: v.into(),
    }
}

#[test]
fn example_plugin_backs_up_verifies_and_restores_a_folder() {
    let t = TestRepo::new();
    let p = platform(&t);
    let src = t.scratch("data/projects");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    std::fs::write(src.join("a/b/report.txt"), b"quarterly numbers").unwrap();
    std::fs::write(
        src.join("big.bin"),
        (0..2_000_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let out = t.dir.path().join("restored");
    std::fs::create_dir_all(&out).unwrap();
    let root = t.dir.path().join("data");

    // denied by default
    let e = p
        .discover("example-files", &[prop("root", root.to_str().unwrap())])
        .unwrap_err();
    assert_eq!(e.code, Code::PluginFailed);
    assert!(e.message.contains("denied"), "{}", e.message);
    let e = p
        .grant("example-files", &["http:example.com".into()])
        .unwrap_err();
    assert!(
        e.message.contains("did not ask for `http`"),
        "{}",
        e.message
    );

    p.grant(
        "example-files",
        &[
            format!("files:{}", root.display()),
            "engine".into(),
            format!("files-write:{}", out.display()),
        ],
    )
    .unwrap();
    let (assets, _) = p
        .discover("example-files", &[prop("root", root.to_str().unwrap())])
        .unwrap();
    assert!(
        assets
            .iter()
            .any(|a| a.id.ends_with("/projects") && a.parent.is_some())
    );

    let s = t.open();
    let o = p
        .backup(
            &s,
            "example-files",
            src.to_str().unwrap(),
            &[],
            &["weekly".into()],
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    assert_eq!(o.restore_point.plugin_id, "example-files");
    assert_eq!(o.restore_point.consistency, "crash");
    assert!(
        o.restore_point.items.iter().any(|i| i.name == "files")
            && o.restore_point.items.iter().any(|i| i.name == "asset.json")
    );
    assert!(o.restore_point.bytes >= 2_000_000);

    let (v, _) = p.verify(&s, "latest", &[]).unwrap();
    assert!(v.ok);

    // existing target without overwrite: blocked by the plan, nothing touched
    let existing = out.join("existing");
    std::fs::create_dir_all(&existing).unwrap();
    std::fs::write(existing.join("keep.txt"), b"mine").unwrap();
    let e = p
        .restore(
            &s,
            "latest",
            existing.to_str().unwrap(),
            &[],
            true,
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap_err();
    assert!(e.message.contains("blocked"), "{}", e.message);
    assert_eq!(std::fs::read(existing.join("keep.txt")).unwrap(), b"mine");

    // outside the write grant: denied
    let elsewhere = t.dir.path().join("elsewhere");
    assert!(
        p.restore(
            &s,
            "latest",
            elsewhere.to_str().unwrap(),
            &[],
            true,
            &NoProgress,
            &Cancel::default()
        )
        .is_err()
    );
    assert!(!elsewhere.exists());

    let target = out.join("projects");
    let r = p
        .restore(
            &s,
            "latest",
            target.to_str().unwrap(),
            &[],
            true,
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    assert!(r.report.unwrap().bytes >= 2_000_000);
    assert_eq!(
        std::fs::read(target.join("a/b/report.txt")).unwrap(),
        b"quarterly numbers"
    );
    assert_eq!(
        std::fs::read(target.join("big.bin")).unwrap(),
        std::fs::read(src.join("big.bin")).unwrap()
    );

    // the denials are in the audit log
    let audit = p.audit_log(Some("example-files"), 100).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| !a.allowed && a.capability == "files" && a.verb == "discover")
    );
    assert!(
        audit
            .iter()
            .any(|a| !a.allowed && a.target == elsewhere.to_str().unwrap())
    );
}

#[test]
fn failed_plugin_backup_commits_nothing_and_pushed_streams_round_trip() {
    let t = TestRepo::new();
    let p = platform(&t);
    let s = t.open();
    // fixture backup pushes a stream and a document through the engine: needs `engine`
    let e = p
        .backup(
            &s,
            "fixture",
            "vm-1",
            &[prop("k", "payload bytes")],
            &[],
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap_err();
    assert_eq!(e.code, Code::PluginFailed, "{}", e.message);
    assert!(
        s.restore_points(&RestorePointFilter::default())
            .unwrap()
            .is_empty(),
        "nothing committed"
    );

    p.grant("fixture", &["engine".into()]).unwrap();
    let o = p
        .backup(
            &s,
            "fixture",
            "vm-1",
            &[prop("a", "key blob "), prop("b", "and more")],
            &[],
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    assert_eq!(o.restore_point.asset, "vm-1");
    let payload = o
        .restore_point
        .items
        .iter()
        .find(|i| i.name == "payload")
        .unwrap();
    assert_eq!(payload.size, "key blob and more".len() as u64);
    let (v, _) = p.verify(&s, &o.restore_point.id, &[]).unwrap();
    assert!(v.ok, "verify read the pushed stream back");

    // grants live in the catalog: a new platform sees them; revoke removes them
    let again = Plugins::new(
        &t.ctx,
        PluginSettings {
            dirs: vec![t.dir.path().join("plugins")],
            install_dir: None,
            developer_mode: false,
            caps: Limits::HIGHEST,
        },
    )
    .unwrap();
    assert_eq!(
        again.info("fixture").unwrap().grants,
        vec!["engine".to_string()]
    );
    assert_eq!(again.revoke("fixture", &[]).unwrap(), 1);
    assert!(
        again
            .backup(
                &s,
                "fixture",
                "vm-1",
                &[],
                &[],
                &NoProgress,
                &Cancel::default()
            )
            .is_err()
    );
    assert_eq!(
        s.restore_points(&RestorePointFilter::default())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn install_refuses_untrusted_and_tampered_files_and_keeps_the_installed_one() {
    let t = TestRepo::new();
    let dir = t.scratch("plugins");
    let p = Plugins::new(
        &t.ctx,
        PluginSettings {
            dirs: vec![dir.clone()],
            install_dir: Some(dir.clone()),
            developer_mode: false,
            caps: Limits::HIGHEST,
        },
    )
    .unwrap();
    let e = p
        .install(&built().join("example-files.wasm"), false, false)
        .unwrap_err();
    assert_eq!(e.code, Code::PluginRejected);
    assert!(!dir.join("example-files.wasm").exists());
    p.trust("rehydra-dev", &dev_key()).unwrap();
    p.install(&built().join("example-files.wasm"), false, false)
        .unwrap();
    let mut bytes = std::fs::read(built().join("example-files.wasm")).unwrap();
    bytes[300] ^= 0xff;
    let bad = t.dir.path().join("example-files.wasm");
    std::fs::write(&bad, &bytes).unwrap();
    assert_eq!(
        p.install(&bad, true, false).unwrap_err().code,
        Code::PluginRejected
    );
    assert_eq!(
        std::fs::read(dir.join("example-files.wasm")).unwrap(),
        std::fs::read(built().join("example-files.wasm")).unwrap()
    );
    assert_eq!(p.describe("example-files").unwrap().id, "example-files");
    assert!(p.trust("rehydra-dev", "not-a-key").is_err());
}

#[test]
fn command_targets_are_kept_in_the_catalog_and_reach_the_host() {
    use rehydra_api::plugins::{RemoteShell, Target};
    let t = TestRepo::new();
    let p = platform(&t);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let lab = Target {
        name: "lab".into(),
        ssh: "admin@127.0.0.1".into(),
        port: Some(closed),
        identity: None,
        known_hosts: None,
        shell: RemoteShell::Posix,
        powershell: "pwsh".into(),
        cluster: false,
        nodes: Vec::new(),
    };
    let e = p
        .set_target(&Target {
            ssh: "-oProxyCommand=x".into(),
            ..lab.clone()
        })
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidInput);
    assert!(e.message.contains("ssh destination"), "{}", e.message);
    p.set_target(&lab).unwrap();
    assert_eq!(p.targets().unwrap(), vec![lab.clone()]);
    // a cluster whose nodes cannot be asked is not kept; given by hand they are pinned
    let mut hci = Target {
        name: "hci".into(),
        cluster: true,
        ..lab.clone()
    };
    let e = p.set_target(&hci).unwrap_err();
    assert!(e.message.contains("known-hosts"), "{}", e.message);
    hci.known_hosts = Some(std::env::temp_dir().join("hci_known_hosts"));
    let e = p.set_target(&hci).unwrap_err();
    assert!(e.message.contains("nothing was kept"), "{}", e.message);
    assert_eq!(p.targets().unwrap(), vec![lab.clone()]);
    let pinned = Target {
        nodes: vec!["hv01".into(), "hv02".into()],
        ..hci.clone()
    };
    assert_eq!(p.set_target(&pinned).unwrap().target, pinned);
    let e = p.refresh_target("hci", true).unwrap_err();
    assert!(
        e.message.contains("pinned nodes of hci are unchanged"),
        "{}",
        e.message
    );
    assert_eq!(p.targets().unwrap(), vec![pinned, lab.clone()]);
    assert!(
        p.refresh_target("lab", true)
            .unwrap_err()
            .message
            .contains("not a cluster")
    );
    assert!(p.remove_target("hci").unwrap());

    p.grant("fixture", &["command:printf@lab".into()]).unwrap();
    let call = |target: &str| {
        p.discover(
            "fixture",
            &[
                prop("mode", "command"),
                prop("program", "printf"),
                prop("argv", "x"),
                prop("target", target),
            ],
        )
        .unwrap_err()
    };
    // the configured target is used (and, with nothing listening, named in the error)
    let e = call("lab");
    assert_eq!(e.code, Code::PluginFailed);
    assert!(
        e.message
            .contains("command target `lab` (admin@127.0.0.1) could not be reached over SSH"),
        "{}",
        e.message
    );
    assert!(p.remove_target("lab").unwrap());
    assert!(!p.remove_target("lab").unwrap());
    p.grant("fixture", &["command:printf@lab".into()]).unwrap();
    let e = call("lab");
    assert!(
        e.message.contains("target `lab` is not configured"),
        "{}",
        e.message
    );
}

/// The fixture re-packed with its manifest edited by `edit` and signed with the key in `key`.
fn repack(out: &Path, key: &Path, edit: impl Fn(&str) -> String) {
    use rehydra_plugin_host::package;
    let key = package::load_signing_key(key).unwrap();
    let src = built().join("fixture.wasm");
    let wasm = std::fs::read(&src).unwrap();
    let manifest =
        std::fs::read_to_string(manifest_dir().join("../plugins/fixture/rehydra-plugin.toml"))
            .unwrap();
    let packed = package::pack(&src, &wasm, edit(&manifest).as_bytes(), Some(&key)).unwrap();
    std::fs::write(out, packed).unwrap();
}

#[test]
fn grants_belong_to_the_signer_and_downgrades_need_consent() {
    use rehydra_plugin_host::package;
    let t = TestRepo::new();
    let p = platform(&t);
    p.grant("fixture", &["engine".into()]).unwrap();
    assert_eq!(p.info("fixture").unwrap().grants, vec!["engine"]);

    // another trusted publisher ships a package claiming the same id
    let mallory_key = t.dir.path().join("mallory.key");
    let mallory = package::create_signing_key(&mallory_key).unwrap();
    let public: String = mallory
        .verifying_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    p.trust("mallory", &public).unwrap();
    let theirs = t.dir.path().join("fixture-mallory.wasm");
    repack(&theirs, &mallory_key, |m| {
        m.replace("publisher = \"rehydra-dev\"", "publisher = \"mallory\"")
            .replace("version = \"0.1.0\"", "version = \"9.0.0\"")
    });
    p.install(&theirs, true, false).unwrap();
    assert!(
        p.info("fixture").unwrap().grants.is_empty(),
        "another publisher's package of the same id gets no grants"
    );
    let s = t.open();
    let e = p
        .backup(
            &s,
            "fixture",
            "vm-1",
            &[],
            &[],
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap_err();
    assert!(
        e.message.contains("`engine` capability is not granted"),
        "{}",
        e.message
    );

    // a downgrade (back to the dev publisher's 0.1.0) needs consent
    let e = p
        .install(&built().join("fixture.wasm"), true, false)
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidInput);
    assert!(e.message.contains("--allow-downgrade"), "{}", e.message);
    p.install(&built().join("fixture.wasm"), true, true)
        .unwrap();
    // the original signer's grants apply again
    assert_eq!(p.info("fixture").unwrap().grants, vec!["engine"]);

    // an upgrade of the same publisher keeps them; a lower version is refused
    let dev = built().join("../rehydra-dev/signing.key");
    let newer = t.dir.path().join("fixture-0.2.wasm");
    repack(&newer, &dev, |m| {
        m.replace("version = \"0.1.0\"", "version = \"0.2.0\"")
    });
    p.install(&newer, true, false).unwrap();
    assert_eq!(p.info("fixture").unwrap().grants, vec!["engine"]);
    let older = t.dir.path().join("fixture-0.0.9.wasm");
    repack(&older, &dev, |m| {
        m.replace("version = \"0.1.0\"", "version = \"0.0.9\"")
    });
    assert!(p.install(&older, true, false).is_err());
    assert_eq!(p.info("fixture").unwrap().manifest.version, "0.2.0");
}

#[test]
fn planning_a_plugin_restore_writes_nothing_even_when_the_plugin_tries() {
    let t = TestRepo::new();
    let p = platform(&t);
    let s = t.open();
    let src = t.scratch("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"a").unwrap();
    let w = t.scratch("w");
    std::fs::create_dir_all(&w).unwrap();
    let o = backup_tree(&p, &s, &src);
    p.grant("fixture", &[format!("files-write:{}", w.display())])
        .unwrap();
    let target = w.join("planned");
    let e = p
        .plan_restore(
            &s,
            &o.id,
            target.to_str().unwrap(),
            &[prop("write-while-planning", "true")],
        )
        .unwrap_err();
    assert!(e.message.contains("only `restore` writes"), "{}", e.message);
    assert!(!target.exists(), "planning wrote {}", target.display());
    // the same plugin restores when asked to restore
    p.restore(
        &s,
        &o.id,
        target.to_str().unwrap(),
        &[prop("item", "tree")],
        true,
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(target.join("a.txt")).unwrap(), b"a");
}

#[test]
fn restore_item_does_not_write_through_a_symlink_in_the_granted_folder() {
    let t = TestRepo::new();
    let p = platform(&t);
    let s = t.open();
    // a tree with a folder `link` holding a file
    let src = t.scratch("src");
    std::fs::create_dir_all(src.join("link")).unwrap();
    std::fs::write(src.join("link/planted.txt"), b"attacker data").unwrap();
    std::fs::write(src.join("top.txt"), b"top").unwrap();
    let o = backup_tree(&p, &s, &src);
    // the writable folder W holds `link -> <outside>`
    let w = t.scratch("w");
    let outside = t.scratch("outside");
    std::fs::create_dir_all(&w).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, w.join("link")).unwrap();
    p.grant("fixture", &[format!("files-write:{}", w.display())])
        .unwrap();
    let restore = |target: &Path| {
        p.restore(
            &s,
            &o.id,
            target.to_str().unwrap(),
            &[prop("item", "tree"), prop("overwrite", "true")],
            true,
            &NoProgress,
            &Cancel::default(),
        )
    };
    // a target through the link is refused by the grant check
    let e = restore(&w.join("link/sub")).unwrap_err();
    assert!(e.message.contains("outside"), "{}", e.message);
    // a tree whose paths go through the link: whatever happens, nothing lands outside W
    let r = restore(&w);
    let escaped: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        escaped.is_empty(),
        "restore-item wrote {escaped:?} outside the granted folder through W/link (restore: {:?})",
        r.as_ref().map(|_| ()).map_err(|e| &e.message)
    );
    assert!(
        std::fs::symlink_metadata(w.join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
            || !w.join("link").exists(),
        "the link is replaced or kept, never followed"
    );
}

/// A disk image a plugin names may refer only to files the plugin may read itself: a
/// qcow2 in the granted folder whose backing file lies elsewhere is refused (the engine
/// would otherwise read any host file for the plugin), one whose backing file is inside
/// is stored whole.
#[test]
fn a_disk_image_cannot_pull_in_files_outside_the_grants() {
    let t = TestRepo::new();
    let p = platform(&t);
    let s = t.open();
    let granted = t.scratch("granted");
    let outside = t.scratch("outside");
    let qemu = |args: &[&str]| {
        let st = std::process::Command::new("qemu-img")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "qemu-img {args:?}");
    };
    let secret = outside.join("secret.qcow2");
    qemu(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        secret.to_str().unwrap(),
        "1M",
    ]);
    let child = granted.join("child.qcow2");
    qemu(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        secret.to_str().unwrap(),
        "-F",
        "qcow2",
        child.to_str().unwrap(),
    ]);
    p.grant(
        "fixture",
        &["engine".into(), format!("files:{}", granted.display())],
    )
    .unwrap();
    let backup = |image: &Path| {
        p.backup(
            &s,
            "fixture",
            "disk",
            &[prop("disk", image.to_str().unwrap())],
            &[],
            &NoProgress,
            &Cancel::default(),
        )
    };
    let e = backup(&child).unwrap_err();
    assert!(
        e.message
            .contains("outside the folders the plugin may read"),
        "{}",
        e.message
    );
    let base = granted.join("base.qcow2");
    qemu(&["create", "-q", "-f", "qcow2", base.to_str().unwrap(), "1M"]);
    let inside = granted.join("inside.qcow2");
    qemu(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "base.qcow2",
        "-F",
        "qcow2",
        inside.to_str().unwrap(),
    ]);
    let o = backup(&inside).unwrap();
    assert!(
        o.restore_point.items.iter().any(|i| i.name == "disk"),
        "{:?}",
        o.restore_point.items.len()
    );
}

/// The admin lowers what plugins may use: the fixture asks for 32 MiB and 5 s per call
/// and gets 16 MiB and 1 s.
#[test]
fn the_admins_caps_lower_a_plugins_limits() {
    let t = TestRepo::new();
    let p = platform_capped(
        &t,
        Limits {
            memory_mib: 16,
            timeout_secs: 1,
        },
    );
    let d = p.info("fixture").unwrap();
    let asked = d.manifest.limits;
    assert_eq!(
        (asked.memory_mib, asked.timeout_secs),
        (32, 5),
        "what the manifest asks"
    );
    assert_eq!(
        (d.limits.memory_mib, d.limits.timeout_secs),
        (16, 1),
        "what it gets"
    );
    let s = t.open();
    p.grant("fixture", &["engine".into()]).unwrap();
    let started = std::time::Instant::now();
    let e = p
        .backup(
            &s,
            "fixture",
            "a",
            &[prop("sleep", "60")],
            &[],
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap_err();
    let took = started.elapsed().as_secs_f64();
    assert!(e.message.contains("time limit"), "{}", e.message);
    assert!(
        (0.9..4.0).contains(&took),
        "stopped after {took:.1} s, not at the 1 s cap"
    );
}

/// Cancelling a job stops the plugin working for it, even inside a blocking wait.
#[test]
fn cancel_reaches_a_plugin_backup() {
    let t = TestRepo::new();
    let p = platform(&t);
    let s = t.open();
    p.grant("fixture", &["engine".into()]).unwrap();
    let cancel = std::sync::Arc::new(Cancel::default());
    let c2 = cancel.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        c2.cancel();
    });
    let started = std::time::Instant::now();
    let e = p
        .backup(
            &s,
            "fixture",
            "a",
            &[prop("sleep", "60")],
            &[],
            &NoProgress,
            &cancel,
        )
        .unwrap_err();
    stopper.join().unwrap();
    assert_eq!(e.code, Code::Cancelled, "{}", e.message);
    assert!(
        started.elapsed().as_secs_f64() < 3.0,
        "{:?}",
        started.elapsed()
    );
    assert!(
        s.restore_points(&RestorePointFilter::default())
            .unwrap()
            .is_empty()
    );
}
