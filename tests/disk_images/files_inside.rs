//! File-level restore from inside a backed-up disk (partitions, NTFS, ext4).

use super::*;

#[test]
fn files_are_browsed_and_restored_from_inside_a_backed_up_disk() {
    use rehydra_api::{DiskLocation, FileEntryKind};
    let r = TestRepo::new();
    let d = r.scratch("img");
    // an ext4 volume (mkfs.ext4 -d) and an NTFS volume (mkntfs, ntfscp) in a GPT disk (sfdisk)
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("srv/www")).unwrap();
    std::fs::write(tree.join("srv/www/index.html"), b"<h1>it works</h1>").unwrap();
    std::fs::write(
        tree.join("srv/db.bin"),
        rehydra_integration_tests::random_bytes(1 << 20, 21),
    )
    .unwrap();
    filetime::set_file_mtime(
        tree.join("srv/www/index.html"),
        filetime::FileTime::from_unix_time(1_700_000_000, 0),
    )
    .unwrap();
    let ext4 = d.join("vol.ext4");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&ext4)
        .arg("16M"));
    let ntfs = d.join("vol.ntfs");
    std::fs::File::create(&ntfs)
        .unwrap()
        .set_len(3 << 20)
        .unwrap();
    run(Command::new("mkntfs")
        .args(["-q", "-F", "-Q", "-p", "2048", "-L", "SYSTEM"])
        .arg(&ntfs));
    let doc = d.join("doc");
    std::fs::write(&doc, rehydra_integration_tests::random_bytes(300 << 10, 22)).unwrap();
    run(Command::new("ntfscp")
        .arg("-q")
        .arg(&ntfs)
        .arg(&doc)
        .arg("Budget 2026.xlsx"));
    let raw = d.join("disk.raw");
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(24 << 20)
        .unwrap();
    let mut sf = Command::new("sfdisk")
        .arg("-q")
        .arg(&raw)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        sf.stdin.as_mut().unwrap(),
        b"label: gpt\nstart=2048, size=6144, name=boot\nstart=8192, size=32768, name=data\n",
    )
    .unwrap();
    assert!(sf.wait().unwrap().success());
    for (img, mib) in [(&ntfs, 1), (&ext4, 4)] {
        run(Command::new("dd")
            .args([
                "conv=notrunc",
                "status=none",
                "bs=1M",
                &format!("seek={mib}"),
            ])
            .arg(format!("if={}", img.display()))
            .arg(format!("of={}", raw.display())));
    }
    let vhdx = d.join("vm.vhdx");
    run(Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "vhdx"])
        .arg(&raw)
        .arg(&vhdx));
    let b = backup_disk(&r, &vhdx, "vm");
    let s = r.open();
    let any = DiskLocation {
        restore_point: b.restore_point.short_id.clone(),
        ..Default::default()
    };
    let parts = s.disk_partitions(&any).unwrap();
    let seen: Vec<_> = parts
        .iter()
        .map(|p| (p.number, p.name.as_str(), p.filesystem.as_str()))
        .collect();
    assert_eq!(seen, vec![(1, "boot", "ntfs"), (2, "data", "ext4")]);
    // two volumes: the partition must be named
    let e = s.list_files(&any, "/").unwrap_err();
    assert!(
        e.message
            .contains("choose a partition with --partition: 1 (ntfs), 2 (ext4)"),
        "{}",
        e.message
    );

    let at = DiskLocation {
        partition: Some(2),
        ..any.clone()
    };
    let listed = s.list_files(&at, "/srv").unwrap();
    assert!(
        listed
            .iter()
            .any(|e| e.name == "www" && e.kind == FileEntryKind::Dir)
            && listed
                .iter()
                .any(|e| e.name == "db.bin" && e.size == 1 << 20)
    );
    let out = d.join("out");
    let sum = s.restore_files(&at, "/srv", &out, false).unwrap();
    assert_eq!((sum.files, sum.dirs), (2, 2));
    assert_eq!(
        std::fs::read(out.join("srv/www/index.html")).unwrap(),
        b"<h1>it works</h1>"
    );
    assert!(
        std::fs::read(out.join("srv/db.bin")).unwrap()
            == rehydra_integration_tests::random_bytes(1 << 20, 21)
    );
    let m = std::fs::metadata(out.join("srv/www/index.html")).unwrap();
    assert_eq!(
        filetime::FileTime::from_last_modification_time(&m).unix_seconds(),
        1_700_000_000
    );
    assert_eq!(
        s.restore_files(&at, "/srv", &out, false).unwrap_err().code,
        Code::TargetExists
    );

    // the NTFS volume: names compare case-insensitively, the file keeps its stored name
    let win = DiskLocation {
        partition: Some(1),
        ..any.clone()
    };
    assert!(
        s.list_files(&win, "/")
            .unwrap()
            .iter()
            .any(|e| e.name == "Budget 2026.xlsx" && e.size == 300 << 10)
    );
    s.restore_files(&win, "/budget 2026.XLSX", &out, false)
        .unwrap();
    assert!(
        std::fs::read(out.join("Budget 2026.xlsx")).unwrap()
            == rehydra_integration_tests::random_bytes(300 << 10, 22)
    );
}
