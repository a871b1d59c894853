//! Copying restore points into another repository (`Session::copy_to`).

use std::fs;

use rehydra_api::{
    BackupOptions, Cancel, CheckOptions, Code, NoProgress, RestoreOptions, RestorePointFilter,
    Source, SourceItem,
};
use rehydra_integration_tests::{TestRepo, assert_same_tree, files_in, random_bytes, text_bytes};

fn backup_tree(r: &TestRepo, src: &std::path::Path) -> String {
    r.open()
        .backup(
            vec![SourceItem {
                name: "data".into(),
                source: Source::Path(src.to_path_buf()),
            }],
            &BackupOptions {
                asset: "srv-data".into(),
                tags: vec!["nightly".into()],
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap()
        .restore_point
        .id
}

fn try_copy(
    a: &TestRepo,
    b: &TestRepo,
    specs: &[String],
    cancel: &Cancel,
) -> Result<Vec<rehydra_api::CopyOutcome>, rehydra_api::ApiError> {
    a.open().copy_to(
        &b.open(),
        specs,
        &RestorePointFilter::default(),
        &NoProgress,
        cancel,
    )
}

fn copy_all(a: &TestRepo, b: &TestRepo) -> Vec<rehydra_api::CopyOutcome> {
    try_copy(a, b, &[], &Cancel::default()).unwrap()
}

fn count(r: &TestRepo) -> usize {
    r.open()
        .restore_points(&RestorePointFilter::default())
        .unwrap()
        .len()
}

fn restore_latest(r: &TestRepo, into: &std::path::Path) {
    r.open()
        .restore(
            "latest",
            &RestorePointFilter::default(),
            into,
            &RestoreOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
}

#[test]
fn a_copy_restores_the_same_bytes_keeps_the_metadata_and_is_idempotent() {
    let (a, b) = (TestRepo::new(), TestRepo::new());
    let src = a.scratch("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    fs::write(src.join("docs/a.txt"), text_bytes(700_000, 1)).unwrap();
    fs::write(src.join("big.bin"), random_bytes(5 << 20, 2)).unwrap();
    let mut sparse = vec![0u8; 4 << 20];
    sparse[3 << 20..].copy_from_slice(&random_bytes(1 << 20, 3));
    fs::write(src.join("sparse.img"), &sparse).unwrap();
    let id = backup_tree(&a, &src);

    let out = copy_all(&a, &b);
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(c.source, id);
    assert!(!c.already_copied);
    assert!(c.chunks_read > 0 && c.new_chunks > 0);
    assert_eq!(c.chunks_reused, 0, "nothing to reuse on the first copy");
    assert_eq!(c.copy.copied_from.as_deref(), Some(id.as_str()));
    let orig = &a
        .open()
        .restore_points(&RestorePointFilter::default())
        .unwrap()[0];
    assert_eq!(
        c.copy.time, orig.time,
        "the copy keeps the time of the backup"
    );
    assert_eq!(c.copy.asset, "srv-data");
    assert_eq!(c.copy.tags, vec!["nightly".to_string()]);
    assert_ne!(c.copy.id, id, "ids are per repository");

    let dst = b.scratch("restored");
    restore_latest(&b, &dst);
    assert_same_tree(&src, &dst);
    let rep = b
        .open()
        .check(
            &CheckOptions {
                read_data: true,
                subset: None,
            },
            &NoProgress,
        )
        .unwrap();
    assert!(rep.ok(), "{:?}", rep.errors);

    let again = copy_all(&a, &b);
    assert!(again[0].already_copied);
    assert_eq!(again[0].copy.id, c.copy.id);
    assert_eq!(count(&b), 1);
}

#[test]
fn the_next_copy_reads_only_what_changed() {
    let (a, b) = (TestRepo::new(), TestRepo::new());
    let src = a.scratch("src");
    for i in 0..8 {
        fs::write(src.join(format!("f{i}.bin")), random_bytes(1 << 20, 10 + i)).unwrap();
    }
    backup_tree(&a, &src);
    let first = copy_all(&a, &b).remove(0);
    fs::write(src.join("f3.bin"), random_bytes(1 << 20, 99)).unwrap();
    backup_tree(&a, &src);
    let out = copy_all(&a, &b);
    assert_eq!(out.len(), 2);
    assert!(out[0].already_copied);
    let second = &out[1];
    assert!(
        second.chunks_reused > 0 && second.chunks_read * 4 < first.chunks_read,
        "second copy read {} chunks (first {}), reused {}",
        second.chunks_read,
        first.chunks_read,
        second.chunks_reused
    );
    assert_eq!(second.copy.parent.as_deref(), Some(first.copy.id.as_str()));
    let dst = b.scratch("restored");
    restore_latest(&b, &dst);
    assert_same_tree(&src, &dst);
}

#[test]
fn a_disk_item_copies_with_its_holes() {
    let (a, b) = (TestRepo::new(), TestRepo::new());
    let dir = a.scratch("img");
    let mut disk = vec![0u8; 16 << 20];
    disk[1 << 20..3 << 20].copy_from_slice(&random_bytes(2 << 20, 5));
    disk[12 << 20..13 << 20].copy_from_slice(&random_bytes(1 << 20, 6));
    fs::write(dir.join("d.raw"), &disk).unwrap();
    a.open()
        .backup(
            vec![SourceItem {
                name: "disk0".into(),
                source: Source::Disk {
                    path: dir.join("d.raw"),
                    format: rehydra_api::DiskFormat::Auto,
                },
            }],
            &BackupOptions {
                workload: "disk".into(),
                asset: "vm-1".into(),
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    let c = copy_all(&a, &b).remove(0);
    assert!(
        c.copy.new_bytes <= (3 << 20) + (1 << 20),
        "holes are not stored"
    );
    let out = b.scratch("out").join("d.raw");
    b.open()
        .restore(
            "latest",
            &RestorePointFilter::default(),
            &out,
            &RestoreOptions {
                item: Some("disk0".into()),
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    assert!(fs::read(out).unwrap() == disk);
}

#[test]
fn damaged_source_data_or_a_cancel_commits_nothing_in_the_target() {
    let (a, b) = (TestRepo::new(), TestRepo::new());
    let src = a.scratch("src");
    fs::write(src.join("a.bin"), random_bytes(3 << 20, 7)).unwrap();
    backup_tree(&a, &src);

    let cancel = Cancel::default();
    cancel.cancel();
    let e = try_copy(&a, &b, &[], &cancel).unwrap_err();
    assert_eq!(e.code, Code::Cancelled, "{}", e.message);
    assert!(count(&b) == 0);

    let packs = files_in(&a.path().join("packs"));
    let mut bytes = fs::read(&packs[0]).unwrap();
    bytes[1000] ^= 0x40;
    fs::write(&packs[0], bytes).unwrap();
    let e = try_copy(&a, &b, &[], &Cancel::default()).unwrap_err();
    assert_eq!(e.code, Code::Corrupt, "{}", e.message);
    assert!(
        count(&b) == 0,
        "a damaged chunk is never copied as if it were good"
    );
}

#[test]
fn copying_into_the_same_repository_or_an_unknown_restore_point_is_refused() {
    let a = TestRepo::new();
    let src = a.scratch("src");
    fs::write(src.join("x"), b"x").unwrap();
    backup_tree(&a, &src);
    let e = try_copy(&a, &a, &[], &Cancel::default()).unwrap_err();
    assert_eq!(e.code, Code::InvalidInput);
    assert!(e.message.contains("same repository"), "{}", e.message);
    let b = TestRepo::new();
    let e = try_copy(&a, &b, &["ffffffff".into()], &Cancel::default()).unwrap_err();
    assert!(e.message.contains("ffffffff"), "{}", e.message);
}
