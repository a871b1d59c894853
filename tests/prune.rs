use std::fs;

use rehydra_api::{
    BackupOptions, Cancel, CheckOptions, KeepPolicy, NoProgress, PruneOptions, RestoreOptions,
    RestorePointFilter, Source, SourceItem,
};
use rehydra_core::backend::FileKind;
use rehydra_integration_tests::{TestRepo, assert_same_tree, random_bytes};

fn backup(r: &TestRepo, src: &std::path::Path) {
    r.open()
        .backup(
            vec![SourceItem {
                name: "src".into(),
                source: Source::Path(src.to_path_buf()),
            }],
            &BackupOptions {
                asset: "a".into(),
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
}

fn pack_bytes(r: &TestRepo) -> u64 {
    r.open()
        .repository()
        .backend()
        .list(FileKind::Pack)
        .unwrap()
        .iter()
        .map(|f| f.size)
        .sum()
}

#[test]
fn forget_then_prune_frees_space_and_keeps_the_rest_restorable() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    for i in 0..4 {
        fs::write(src.join(format!("gen{i}")), random_bytes(2 << 20, i)).unwrap();
        if i > 0 {
            fs::remove_file(src.join(format!("gen{}", i - 1))).unwrap();
        }
        backup(&r, &src);
    }
    let before = pack_bytes(&r);
    let s = r.open();
    let d = s
        .forget(
            &KeepPolicy {
                last: 1,
                ..Default::default()
            },
            &RestorePointFilter::default(),
            false,
        )
        .unwrap();
    assert_eq!(d.iter().filter(|x| !x.keep).count(), 3);
    let rep = s.prune(&PruneOptions::default(), &NoProgress).unwrap();
    assert!(rep.deleted_packs > 0, "{rep:?}");
    let after = pack_bytes(&r);
    assert!(after < before / 2, "before {before} after {after}");
    assert!(
        s.check(
            &CheckOptions {
                read_data: true,
                subset: None
            },
            &NoProgress
        )
        .unwrap()
        .ok()
    );
    let dst = r.dir.path().join("dst");
    s.restore(
        "latest",
        &RestorePointFilter::default(),
        &dst,
        &RestoreOptions::default(),
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap();
    assert_same_tree(&src, &dst);
    assert!(
        fs::read_dir(r.path().join("prune"))
            .unwrap()
            .next()
            .is_none(),
        "plan executed and removed"
    );
}

#[test]
fn prune_defers_deletion_while_a_backup_runs() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::write(src.join("x"), random_bytes(2 << 20, 1)).unwrap();
    backup(&r, &src);
    fs::write(src.join("x"), random_bytes(2 << 20, 2)).unwrap();
    backup(&r, &src);
    let s = r.open();
    s.forget(
        &KeepPolicy {
            last: 1,
            ..Default::default()
        },
        &RestorePointFilter::default(),
        false,
    )
    .unwrap();
    // a backup announces itself
    let presence = rehydra_core::Lock::backup(s.repository().backend().clone()).unwrap();
    let before = pack_bytes(&r);
    let rep = s.prune(&PruneOptions::default(), &NoProgress).unwrap();
    assert_eq!(rep.deleted_packs, 0);
    assert_eq!(rep.deferred_plans, 1);
    assert_eq!(
        pack_bytes(&r),
        before,
        "nothing deleted while a backup runs"
    );
    assert!(s.check(&CheckOptions::default(), &NoProgress).unwrap().ok());
    drop(presence);
    let rep = s.prune(&PruneOptions::default(), &NoProgress).unwrap();
    assert!(rep.deleted_packs > 0, "{rep:?}");
    assert!(
        s.check(
            &CheckOptions {
                read_data: true,
                subset: None
            },
            &NoProgress
        )
        .unwrap()
        .ok()
    );
}

#[test]
fn concurrent_writers_both_succeed_and_prune_dedups() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::write(src.join("shared"), random_bytes(4 << 20, 7)).unwrap();
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| backup(&r, &src));
        }
    });
    let s = r.open();
    assert_eq!(
        s.restore_points(&RestorePointFilter::default())
            .unwrap()
            .len(),
        2
    );
    assert!(
        s.check(
            &CheckOptions {
                read_data: true,
                subset: None
            },
            &NoProgress
        )
        .unwrap()
        .ok()
    );
    s.prune(&PruneOptions::default(), &NoProgress).unwrap();
    let st = s.stats().unwrap();
    assert!(
        st.pack_bytes < st.unique_bytes + st.unique_bytes / 10,
        "after prune every shared chunk is stored once: {st:?}"
    );
    assert!(
        s.check(
            &CheckOptions {
                read_data: true,
                subset: None
            },
            &NoProgress
        )
        .unwrap()
        .ok()
    );
}

#[test]
fn second_prune_is_refused_while_one_holds_the_lock() {
    let r = TestRepo::new();
    let s = r.open();
    let _l = rehydra_core::Lock::exclusive(s.repository().backend().clone()).unwrap();
    assert_eq!(
        s.prune(&PruneOptions::default(), &NoProgress)
            .unwrap_err()
            .code,
        rehydra_api::Code::Locked
    );
}

/// A backup that starts after prune's phase 1 read the manifests, deduplicates against
/// chunks of packs the plan deletes, and commits before phase 2 must keep its chunks.
#[test]
fn backup_committed_between_plan_and_execute_keeps_its_chunks() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::write(src.join("x"), random_bytes(3 << 20, 11)).unwrap();
    backup(&r, &src); // A
    let s = r.open();
    let repo = s.repository();
    let (snaps, _) = repo.restore_points().unwrap();
    repo.remove_restore_point(&snaps[0].0).unwrap(); // forget A
    let planned = rehydra_core::prune::plan(repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert!(
        planned.report().unused_packs > 0,
        "A's packs are planned: {:?}",
        planned.report()
    );
    backup(&r, &src); // B: same data, deduplicates against A's chunks
    let rep = rehydra_core::prune::execute(repo, planned, &NoProgress).unwrap();
    let check = s
        .check(
            &CheckOptions {
                read_data: true,
                subset: None,
            },
            &NoProgress,
        )
        .unwrap();
    assert!(check.ok(), "prune report {rep:?}; check {check:?}");
    let dst = r.dir.path().join("dst");
    s.restore(
        "latest",
        &RestorePointFilter::default(),
        &dst,
        &RestoreOptions::default(),
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap();
    assert_same_tree(&src, &dst);
}

/// Serving a disk over NBD announces itself like a backup: prune deletes no pack meanwhile.
#[test]
fn prune_waits_while_a_disk_is_served_over_nbd() {
    use rehydra_api::DiskFormat;
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::write(src.join("old"), random_bytes(2 << 20, 31)).unwrap();
    backup(&r, &src); // forgotten below: its packs are what prune would delete
    let img = r.scratch("img").join("disk.raw");
    fs::write(&img, random_bytes(1 << 20, 32)).unwrap();
    let s = r.open();
    s.backup(
        vec![SourceItem {
            name: "disk".into(),
            source: Source::Disk {
                path: img,
                format: DiskFormat::Auto,
            },
        }],
        &BackupOptions {
            workload: "disk".into(),
            asset: "d".into(),
            ..Default::default()
        },
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap();
    let old = s
        .restore_points(&RestorePointFilter::default())
        .unwrap()
        .into_iter()
        .find(|d| d.asset == "a")
        .unwrap();
    let repo = s.repository();
    repo.remove_restore_point(&rehydra_core::Id::parse(&old.id).unwrap())
        .unwrap();
    let backend = repo.backend().clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cancel = Cancel::default();
    let rep = std::thread::scope(|sc| {
        let server = sc.spawn(|| {
            s.serve_nbd(
                "latest",
                &RestorePointFilter::default(),
                None,
                &listener,
                "vm",
                None,
                &cancel,
            )
        });
        // wait (at most 10 s) for the presence file, then prune while serving
        let t = std::time::Instant::now();
        while rehydra_core::live_backups(backend.as_ref())
            .unwrap()
            .is_empty()
            && t.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let rep = s.prune(&PruneOptions::default(), &NoProgress);
        cancel.cancel();
        server.join().unwrap().unwrap();
        rep.unwrap()
    });
    assert_eq!((rep.deleted_packs, rep.deferred_plans), (0, 1), "{rep:?}");
    let rep = s.prune(&PruneOptions::default(), &NoProgress).unwrap();
    assert!(rep.deleted_packs > 0, "{rep:?}");
}
