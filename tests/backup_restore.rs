use std::fs;
use std::io::Write;

use proptest::prelude::*;
use rehydra_api::{
    BackupOptions, Cancel, NoProgress, RestoreOptions, RestorePointFilter, Source, SourceItem,
};
use rehydra_integration_tests::{TestRepo, assert_same_tree, random_bytes, text_bytes};

fn backup_path(r: &TestRepo, p: &std::path::Path) -> rehydra_api::BackupOutcome {
    let s = r.open();
    let opts = BackupOptions {
        asset: p.display().to_string(),
        ..BackupOptions::default()
    };
    s.backup(
        vec![SourceItem {
            name: p.display().to_string(),
            source: Source::Path(p.to_path_buf()),
        }],
        &opts,
        &NoProgress,
        &Cancel::default(),
    )
    .expect("backup")
}

fn make_tree(root: &std::path::Path) {
    fs::create_dir_all(root.join("etc/deep/er")).unwrap();
    fs::write(root.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    fs::write(
        root.join("etc/deep/er/random.bin"),
        random_bytes(700_000, 1),
    )
    .unwrap();
    fs::write(root.join("text.log"), text_bytes(2_000_000, 2)).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    std::os::unix::fs::symlink("etc/hosts", root.join("hosts-link")).unwrap();
    // sparse file: 8 MiB hole, a few bytes, then another hole
    let mut f = fs::File::create(root.join("sparse.img")).unwrap();
    f.set_len(32 << 20).unwrap();
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(8 << 20)).unwrap();
    f.write_all(&random_bytes(100_000, 3)).unwrap();
}

#[test]
fn tree_roundtrip_with_metadata_symlinks_and_holes() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    make_tree(&src);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(src.join("etc/hosts"), fs::Permissions::from_mode(0o640)).unwrap();
    let out = backup_path(&r, &src);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert!(out.restore_point.bytes >= (32 << 20));
    let dst = r.dir.path().join("dst");
    let s = r.open();
    let sum = s
        .restore(
            "latest",
            &RestorePointFilter::default(),
            &dst,
            &RestoreOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    assert!(sum.hole_bytes >= 30 << 20, "holes {}", sum.hole_bytes);
    assert_same_tree(&src, &dst);
    assert_eq!(
        fs::metadata(dst.join("etc/hosts"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    // the restored sparse file really is sparse
    use std::os::unix::fs::MetadataExt;
    assert!(fs::metadata(dst.join("sparse.img")).unwrap().blocks() * 512 < 4 << 20);
}

#[test]
fn second_backup_adds_only_changes() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    make_tree(&src);
    let first = backup_path(&r, &src);
    let second = backup_path(&r, &src);
    assert_eq!(second.restore_point.new_bytes, 0);
    assert_eq!(
        second.restore_point.parent.as_deref(),
        Some(first.restore_point.id.as_str())
    );
    fs::write(src.join("new.txt"), text_bytes(50_000, 9)).unwrap();
    let third = backup_path(&r, &src);
    assert!(
        third.restore_point.new_bytes > 0 && third.restore_point.new_bytes < 200_000,
        "{}",
        third.restore_point.new_bytes
    );
}

#[test]
fn restore_refuses_existing_target_unless_overwrite() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    make_tree(&src);
    backup_path(&r, &src);
    let dst = r.scratch("dst");
    fs::create_dir_all(dst.join("etc")).unwrap();
    fs::write(dst.join("etc/hosts"), b"precious").unwrap();
    let s = r.open();
    let e = s
        .restore(
            "latest",
            &RestorePointFilter::default(),
            &dst,
            &RestoreOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap_err();
    assert_eq!(e.code, rehydra_api::Code::TargetExists);
    assert_eq!(
        fs::read(dst.join("etc/hosts")).unwrap(),
        b"precious",
        "nothing touched"
    );
    assert!(
        !dst.join("text.log").exists(),
        "nothing written before refusing"
    );
    s.restore(
        "latest",
        &RestorePointFilter::default(),
        &dst,
        &RestoreOptions {
            overwrite: true,
            ..Default::default()
        },
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap();
    assert_same_tree(&src, &dst);
}

#[test]
fn restore_sub_path() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    make_tree(&src);
    backup_path(&r, &src);
    let dst = r.dir.path().join("dst");
    let s = r.open();
    s.restore(
        "latest",
        &RestorePointFilter::default(),
        &dst,
        &RestoreOptions {
            subpath: Some("etc/deep".into()),
            ..Default::default()
        },
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap();
    assert_eq!(
        fs::read(dst.join("deep/er/random.bin")).unwrap(),
        random_bytes(700_000, 1)
    );
    assert!(!dst.join("text.log").exists());
}

#[test]
fn disk_image_and_stream_items() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    // a raw "disk": data, 20 MiB of zeros, data, unaligned tail
    let mut disk = random_bytes(3 << 20, 4);
    disk.extend(vec![0u8; 20 << 20]);
    disk.extend(text_bytes((5 << 20) + 123, 5));
    fs::write(src.join("disk.raw"), &disk).unwrap();
    let s = r.open();
    let stream = text_bytes(1_234_567, 6);
    let items = vec![
        SourceItem {
            name: "disk.raw".into(),
            source: Source::Disk {
                path: src.join("disk.raw"),
                format: rehydra_api::DiskFormat::Auto,
            },
        },
        SourceItem {
            name: "stdin".into(),
            source: Source::Reader(Box::new(std::io::Cursor::new(stream.clone()))),
        },
    ];
    let out = s
        .backup(
            items,
            &BackupOptions {
                workload: "disk".into(),
                asset: "vm-1".into(),
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    assert!(
        out.restore_point.new_bytes < disk.len() as u64,
        "zeros are not stored"
    );
    let dst = r.scratch("dst");
    s.restore(
        &out.restore_point.short_id,
        &RestorePointFilter::default(),
        &dst.join("d.raw"),
        &RestoreOptions {
            item: Some("disk.raw".into()),
            ..Default::default()
        },
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap();
    assert!(fs::read(dst.join("d.raw")).unwrap() == disk);
    s.restore(
        &out.restore_point.short_id,
        &RestorePointFilter::default(),
        &dst.join("s.bin"),
        &RestoreOptions {
            item: Some("stdin".into()),
            ..Default::default()
        },
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap();
    assert_eq!(fs::read(dst.join("s.bin")).unwrap(), stream);
}

#[test]
fn diff_reports_changes() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    make_tree(&src);
    let a = backup_path(&r, &src);
    fs::write(src.join("text.log"), b"changed").unwrap();
    fs::remove_file(src.join("empty")).unwrap();
    fs::write(src.join("added"), b"x").unwrap();
    let b = backup_path(&r, &src);
    let d = r
        .open()
        .diff(&a.restore_point.short_id, &b.restore_point.short_id)
        .unwrap();
    let has = |c: &str, p: &str| {
        d.changes
            .iter()
            .any(|e| e.change == c && e.path.ends_with(p))
    };
    assert!(
        has("M", ":text.log") && has("-", ":empty") && has("+", ":added"),
        "{:?}",
        d.changes
    );
}

#[test]
fn find_restore_point_by_prefix_latest_and_errors() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::write(src.join("f"), b"1").unwrap();
    let a = backup_path(&r, &src);
    let s = r.open();
    assert_eq!(
        s.resolve(&a.restore_point.id[..6], &RestorePointFilter::default())
            .unwrap()
            .0
            .to_hex(),
        a.restore_point.id
    );
    assert_eq!(
        s.resolve("zz", &RestorePointFilter::default())
            .unwrap_err()
            .code,
        rehydra_api::Code::InvalidInput
    );
    assert_eq!(
        s.resolve(
            "latest",
            &RestorePointFilter {
                asset: Some("nope".into()),
                ..Default::default()
            }
        )
        .unwrap_err()
        .code,
        rehydra_api::Code::InvalidInput
    );
}

#[test]
fn cancelled_backup_commits_nothing() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::write(src.join("f"), random_bytes(5 << 20, 8)).unwrap();
    let s = r.open();
    let c = Cancel::default();
    c.cancel();
    let e = s
        .backup(
            vec![SourceItem {
                name: "x".into(),
                source: Source::Path(src.clone()),
            }],
            &BackupOptions::default(),
            &NoProgress,
            &c,
        )
        .unwrap_err();
    assert_eq!(e.code, rehydra_api::Code::Cancelled);
    assert!(
        s.restore_points(&RestorePointFilter::default())
            .unwrap()
            .is_empty()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
    #[test]
    fn random_files_roundtrip(files in proptest::collection::vec((0usize..300_000, any::<u64>(), any::<bool>()), 1..6)) {
        let r = TestRepo::new();
        let src = r.scratch("src");
        for (i, (len, seed, zeros)) in files.iter().enumerate() {
            let mut data = if *zeros { vec![0u8; *len] } else { random_bytes(*len, *seed) };
            if *zeros && *len > 10 { data[len / 2] = 1; }
            fs::write(src.join(format!("f{i}")), data).unwrap();
        }
        backup_path(&r, &src);
        let dst = r.dir.path().join("dst");
        r.open().restore("latest", &RestorePointFilter::default(), &dst, &RestoreOptions::default(), &NoProgress, &Cancel::default()).unwrap();
        assert_same_tree(&src, &dst);
    }
}

#[test]
fn restore_never_replaces_a_device_or_fifo_node() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::write(src.join("disk.raw"), random_bytes(100_000, 3)).unwrap();
    let s = r.open();
    let items = vec![SourceItem {
        name: "disk".into(),
        source: Source::Disk {
            path: src.join("disk.raw"),
            format: rehydra_api::DiskFormat::Raw,
        },
    }];
    s.backup(
        items,
        &BackupOptions::default(),
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap();
    let fifo = r.dir.path().join("node");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let e = s
        .restore(
            "latest",
            &RestorePointFilter::default(),
            &fifo,
            &RestoreOptions {
                overwrite: true,
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap_err();
    assert_eq!(e.code, rehydra_api::Code::InvalidInput, "{}", e.message);
    use std::os::unix::fs::FileTypeExt;
    assert!(
        fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(),
        "the node is untouched"
    );
}
