//! A Samba domain controller's system state: `samba-tool domain backup offline` run
//! through the command capability and its archive ingested with the objects; the restore
//! plan explaining how a DC comes back; the restore writing the archive and running
//! `samba-tool domain backup restore` into a new folder; the restored DC started in place
//! of the old one and answering for the domain with the objects of the point. A Windows
//! DC's `wbadmin` runs against the stand-in node (no Windows DC runs here).

use std::path::Path;

use crate::support::samba::{BASE, Dc};
use serde_json::json;

use crate::support::{Cli, Node, json_out};

/// A repository, the DC's directory configured, and the plugin granted `extra` too.
pub fn configured(dc: &Dc, extra: &[&str]) -> Cli {
    let cli = Cli::new(&["active-directory"]);
    cli.init_repo();
    let o = dc.configure(&cli, true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut grant = vec![
        "plugins",
        "grant",
        "active-directory",
        "engine",
        "ldap:127.0.0.1",
    ];
    grant.extend(extra);
    cli.ok(None, &grant);
    cli
}

fn archive_in(dir: &Path) -> Option<String> {
    std::fs::read_dir(dir).ok()?.find_map(|e| {
        let n = e.ok()?.file_name().to_string_lossy().into_owned();
        (n.starts_with("samba-backup-") && n.ends_with(".tar.bz2")).then_some(n)
    })
}

#[test]
#[allow(clippy::too_many_lines)]
fn a_samba_dc_comes_back_from_its_system_state_as_a_new_dc_of_the_domain() {
    let mut dc = Dc::start(false);
    dc.apply(&format!(
        "dn: CN=Dana Lee,CN=Users,{BASE}\nobjectClass: user\nsAMAccountName: dana\nuserAccountControl: 514\n"
    ));
    let work = tempfile::tempdir().unwrap();
    let staging = work.path().join("staging");
    let to = work.path().join("restore");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(&to).unwrap();
    let (staging_s, to_s) = (staging.to_str().unwrap(), to.to_str().unwrap());
    let read = format!("files:{staging_s}");
    let write = format!("files-write:{to_s}");
    let cli = configured(&dc, &["command:samba-tool@local", &read, &write]);
    let run = |args: &[&str]| {
        let mut a = vec!["--json", "plugins", "run", "active-directory"];
        a.extend(args);
        cli.run(None, &a)
    };
    let conf = dc.dir.path().join("etc/smb.conf");
    let conf_s = conf.to_str().unwrap();

    // ---- a wrong tool name is refused before anything runs
    let o = run(&[
        "backup",
        "--asset",
        "test.lan@127.0.0.1",
        "--set",
        "system-state=ntbackup",
        "--set",
        &format!("staging={staging_s}"),
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not one of: none, samba, wbadmin"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // ---- objects and system state in one restore point
    let o = run(&[
        "backup",
        "--asset",
        "test.lan@127.0.0.1",
        "--set",
        "system-state=samba",
        "--set",
        &format!("staging={staging_s}"),
        "--set",
        &format!("samba-config={conf_s}"),
    ]);
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    let v = json_out(&o);
    let point = v.get("restore_point").unwrap_or(&v)["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}\n{log}"))
        .to_string();
    let archive = archive_in(&staging).expect("samba-tool wrote its archive to the staging folder");
    assert!(
        log.contains("password hashes"),
        "the log says what the archive holds: {log}"
    );
    let items = cli.ok(None, &["--json", "restore-points"]);
    assert!(
        items.contains(&format!("system-state/{archive}")) && items.contains("system-state.json"),
        "{items}"
    );

    // ---- the plan explains; it refuses a folder that is taken
    let restore = |extra: &[&str]| {
        let mut a = vec![
            "restore",
            point.as_str(),
            "--target",
            to_s,
            "--set",
            "whole-dc=true",
        ];
        a.extend(extra);
        run(&a)
    };
    // python3 checks the archive before samba-tool extracts it: not granted, nothing is written
    let o = restore(&["--set", "new-server-name=DC2"]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("python3 cannot run here"), "{e}");
    assert!(archive_in(&to).is_none());
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "active-directory",
            "command:python3@local",
        ],
    );
    let plan = json_out(&restore(&["--set", "new-server-name=DC2", "--plan-only"])).to_string();
    for want in [
        "Restore the domain into a new DC",
        "Non-authoritative restore",
        "USN rollback",
        "keep every old DC of the domain off the network",
    ] {
        assert!(plan.contains(want), "{want}: {plan}");
    }
    assert!(archive_in(&to).is_none(), "a plan writes nothing");
    let bad = restore(&["--set", "new-server-name=not a name"]);
    assert!(!bad.status.success(), "a bad DC name is a blocker");
    assert!(archive_in(&to).is_none());

    // ---- restore: the archive written, the DC restored into a new folder
    json_out(&restore(&["--set", "new-server-name=DC2"]));
    assert_eq!(archive_in(&to).as_deref(), Some(archive.as_str()));
    let new_conf = to.join("DC2/etc/smb.conf");
    assert!(
        new_conf.exists(),
        "samba-tool restored the DC into restore/DC2"
    );
    // a second restore into the same folder is refused: nothing is overwritten
    assert!(!restore(&["--set", "new-server-name=DC2"]).status.success());

    // ---- an archive whose sysvol.tar.gz would write outside its folder (a stand-in
    // samba-tool makes one, as a hostile host writing the repository could) is refused
    // before samba-tool sees it
    let evil = work.path().join("evil-bin");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::write(
        evil.join("samba-tool"),
        "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\nexec python3 - \"$5\" <<'P'\nimport io, sys, tarfile, time\ndef add(t, name, data):\n    i = tarfile.TarInfo(name)\n    i.size = len(data)\n    t.addfile(i, io.BytesIO(data))\ninner = io.BytesIO()\nwith tarfile.open(fileobj=inner, mode='w:gz') as t:\n    add(t, '../../../../escaped', b'owned')\nwith tarfile.open(sys.argv[1] + '/samba-backup-evil-%d.tar.bz2' % time.time_ns(), 'w:bz2') as t:\n    add(t, 'etc/smb.conf', b'[global]')\n    add(t, 'sysvol.tar.gz', inner.getvalue())\nP\n",
    )
    .unwrap();
    std::fs::set_permissions(
        evil.join("samba-tool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let to_evil = work.path().join("restore-evil");
    std::fs::create_dir_all(&to_evil).unwrap();
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "active-directory",
            &format!("files-write:{}", to_evil.display()),
        ],
    );
    let run_evil = |args: &[&str]| {
        let mut a = vec!["--json", "plugins", "run", "active-directory"];
        a.extend(args);
        cli.run(Some(&evil), &a)
    };
    let v = json_out(&run_evil(&[
        "backup",
        "--asset",
        "test.lan@127.0.0.1",
        "--set",
        "system-state=samba",
        "--set",
        &format!("staging={staging_s}"),
    ]));
    let evil_point = v.get("restore_point").unwrap_or(&v)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = run_evil(&[
        "restore",
        &evil_point,
        "--target",
        to_evil.to_str().unwrap(),
        "--set",
        "whole-dc=true",
        "--set",
        "new-server-name=DC3",
    ]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("leads outside the folder"), "{e}");
    assert!(!to_evil.join("DC3").exists());
    assert!(
        !work.path().join("escaped").exists() && !std::path::Path::new("/tmp/escaped").exists()
    );

    // ---- a Windows DC: wbadmin through PowerShell (the stand-in node, as no Windows DC
    // runs here), its WindowsImageBackup folder ingested through path-map
    let node = Node::new(
        &work.path().join("node"),
        &json!({"vms": [], "computer": "DC01", "paths": {"E:\\": format!("{}/", work.path().join("e").display())}}),
    );
    std::fs::create_dir_all(work.path().join("e")).unwrap();
    let to_win = work.path().join("restore-win");
    std::fs::create_dir_all(&to_win).unwrap();
    let e_read = format!("files:{}", work.path().join("e").display());
    let win_write = format!("files-write:{}", to_win.display());
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "active-directory",
            "command:powershell@local",
            &e_read,
            &win_write,
        ],
    );
    let run_on_node = |args: &[&str]| {
        let mut a = vec!["--json", "plugins", "run", "active-directory"];
        a.extend(args);
        cli.run(Some(&node.bin), &a)
    };
    let wb = [
        "backup",
        "--asset",
        "test.lan@127.0.0.1",
        "--set",
        "system-state=wbadmin",
        "--set",
        "staging=E:",
        "--set",
        &format!("path-map=E:\\={}/", work.path().join("e").display()),
    ];
    let v = json_out(&run_on_node(&wb));
    let win_point = v.get("restore_point").unwrap_or(&v)["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(node.log(), ["wbadmin E:"], "wbadmin ran once, on E:");
    let win = |extra: &[&str]| {
        let mut a = vec![
            "restore",
            win_point.as_str(),
            "--target",
            to_win.to_str().unwrap(),
            "--set",
            "whole-dc=true",
        ];
        a.extend(extra);
        run_on_node(&a)
    };
    let plan = json_out(&win(&["--plan-only"])).to_string();
    assert!(
        plan.contains("Directory Services Restore Mode")
            && plan.contains("wbadmin start systemstaterecovery"),
        "{plan}"
    );
    json_out(&win(&[]));
    let restored =
        to_win.join("WindowsImageBackup/DC01/Backup 2026-12-02 020000/a1b2c3d4-system.vhdx");
    assert_eq!(
        std::fs::read(&restored).unwrap(),
        std::fs::read(
            work.path()
                .join("e/WindowsImageBackup/DC01/Backup 2026-12-02 020000/a1b2c3d4-system.vhdx")
        )
        .unwrap()
    );
    // a failing wbadmin fails the backup and says why
    node.edit(|s| {
        s["wbadmin_fail"] = json!("There is not enough free space on the backup storage location")
    });
    let o = run_on_node(&wb);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not enough free space"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // ---- the restored DC starts in place of the old one and serves the domain
    let o = dc.ldap("ldapdelete", &[&format!("CN=Dana Lee,CN=Users,{BASE}")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dc.restart_with(&new_conf);
    let root = dc.ldap(
        "ldapsearch",
        &["-LLL", "-b", "", "-s", "base", "dnsHostName"],
    );
    let root = String::from_utf8_lossy(&root.stdout).to_ascii_lowercase();
    assert!(root.contains("dnshostname: dc2.test.lan"), "{root}");
    assert!(
        dc.search("(sAMAccountName=dana)", &["cn"])
            .contains("CN=Dana Lee"),
        "the restored DC has the object deleted after the point"
    );
}
