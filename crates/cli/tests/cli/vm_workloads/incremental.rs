//! Hyper-V incremental backups through Resilient Change Tracking.

use super::*;

#[test]
fn hyperv_incremental_backup_reads_only_the_blocks_rct_reports() {
    let cli = Cli::new(&["hyperv-vm"]);
    cli.init_repo();
    let d = cli.dir.path().to_path_buf();
    let csv = d.join("csv");
    let dir = csv.join("Volume1/arc01/Virtual Hard Disks");
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join("arc01.vhdx");
    qemu(&["qemu-img", "create", "-q", "-f", "vhdx"], &disk, &["24M"]);
    qemu(
        &["qemu-io", "-f", "vhdx", "-c", "write -q -P 0x61 2M 3M"],
        &disk,
        &[],
    );
    let node = Node::new(
        &d.join("node"),
        &json!({
            "vms": [vm("arc01", ARC_ID, false, "00155D0A0C01")], "switches": [], "keys": [],
        }),
    );
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "hyperv-vm",
            "engine",
            "command:powershell@local",
            &format!("files:{}", csv.display()),
        ],
    );
    let map = format!("path-map=C:\\ClusterStorage\\={}/", csv.display());
    let backup = || {
        cli.run(
            Some(&node.bin),
            &[
                "--json",
                "plugins",
                "run",
                "hyperv-vm",
                "backup",
                "--asset",
                ARC_ID,
                "--set",
                "node=local",
                "--set",
                &map,
                "--set",
                "rct=true",
            ],
        )
    };
    let restored = |snap: &str, name: &str| {
        let out = d.join(name);
        cli.ok(
            None,
            &[
                "restore",
                snap,
                "--item",
                "disk-0",
                "--target",
                out.to_str().unwrap(),
            ],
        );
        std::fs::read(out).unwrap()
    };
    // first backup: whole disk, and the checkpoint becomes the RCT reference point
    let first = restore_point_id(&json_out(&backup()));
    let log = node.log();
    assert!(
        log.contains(&"reference-point arc01".to_string())
            && !log.iter().any(|l| l == "remove-checkpoint"),
        "{log:?}"
    );
    // two changes; RCT reports only the first (a 1 MiB write at 10 MiB)
    qemu(
        &["qemu-io", "-f", "vhdx", "-c", "write -q -P 0x62 10M 1M"],
        &disk,
        &[],
    );
    qemu(
        &["qemu-io", "-f", "vhdx", "-c", "write -q -P 0x63 20M 64k"],
        &disk,
        &[],
    );
    let win = "C:\\ClusterStorage\\Volume1\\arc01\\Virtual Hard Disks\\arc01.vhdx";
    node.edit(|s| s["rct"] = json!({ win: { "Size": 24u64 << 20, "Offsets": [10u64 << 20], "Lengths": [1u64 << 20] } }));
    node.clear_log();
    let second = restore_point_id(&json_out(&backup()));
    assert!(
        node.log().contains(&format!("rct-changes {win}")),
        "{:?}",
        node.log()
    );
    let img = restored(&second, "second.raw");
    assert!(
        img[10 << 20..11 << 20].iter().all(|b| *b == 0x62),
        "the reported change was read"
    );
    assert!(
        img[2 << 20..5 << 20].iter().all(|b| *b == 0x61),
        "unchanged data came from the first restore point"
    );
    assert!(
        img[20 << 20..(20 << 20) + 65536].iter().all(|b| *b == 0),
        "a change RCT did not report is not read: the hints were used"
    );
    assert_eq!(
        restored(&first, "first.raw")[10 << 20],
        0,
        "the first restore point is untouched"
    );
    // RCT fails: the disk is read whole, with a warning, and the restore point is complete
    node.edit(|s| s["rct_fail"] = json!(true));
    let o = backup();
    assert_eq!(
        o.status.code(),
        Some(3),
        "saved with a warning: {}",
        err(&o)
    );
    let warned = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        warned.contains("unavailable") && warned.contains("read whole"),
        "{warned}"
    );
    let third = restore_point_id(&serde_json::from_slice(&o.stdout).unwrap());
    let raw = d.join("third.raw");
    std::fs::write(&raw, restored(&third, "third-out.raw")).unwrap();
    let c = Command::new("qemu-img")
        .args(["compare", "-q", "-f", "raw", "-F", "vhdx"])
        .arg(&raw)
        .arg(&disk)
        .output()
        .unwrap();
    assert!(c.status.success(), "a full read equals the disk");
}
