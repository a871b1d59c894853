use std::sync::Arc;

use rand::{RngCore, SeedableRng};

use super::*;
use crate::archiver::{BackupOptions, Source, SourceItem, backup};
use crate::backend::LocalBackend;
use crate::check::{CheckOptions, check};
use crate::keys::KdfParams;
use crate::progress::{Cancel, NoProgress};
use crate::repository::{InitOptions, OpenOptions};
use crate::restorer::{RestoreOptions, restore};

fn repo(dir: &std::path::Path) -> Repository {
    let backend = Arc::new(LocalBackend::new(dir.join("repo")));
    backend.create_layout().unwrap();
    let opts = InitOptions {
        kdf: KdfParams::insecure_for_tests(),
        pack_size: 1 << 20,
        ..InitOptions::default()
    };
    Repository::init(backend, b"pw", opts, OpenOptions::default()).unwrap()
}

fn back_up(repo: &Repository, src: &std::path::Path) -> Id {
    let items = vec![SourceItem {
        name: "src".into(),
        source: Source::Path(src.to_path_buf()),
    }];
    backup(
        repo,
        items,
        &BackupOptions::default(),
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap()
    .id
}

/// A backup's presence file last written two hours ago (the machine slept, or the
/// clock moved forward) by a process of this host that still runs keeps prune off.
#[test]
fn an_old_presence_file_of_a_live_process_defers_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("x"), vec![7u8; 1 << 20]).unwrap();
    let a = back_up(&repo, &src);
    repo.remove_restore_point(&a).unwrap();
    let mut info = Lock::backup(repo.backend().clone()).unwrap().info(); // this process
    info.refreshed = chrono::Utc::now() - chrono::Duration::hours(2);
    info.started = info.refreshed;
    let json = serde_json::to_vec(&info).unwrap();
    repo.backend()
        .create(FileKind::Lock, &Id::random().to_hex(), &json)
        .unwrap();
    let rep = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert_eq!((rep.deleted_packs, rep.deferred_plans), (0, 1), "{rep:?}");
    assert_eq!(
        crate::lock::list_locks(repo.backend().as_ref())
            .unwrap()
            .len(),
        1
    );
}

/// A restore point saved after phase 2 read the new manifests (its backup loaded the
/// index before the plan's index files went) defers the deletion.
#[test]
fn restore_point_saved_during_phase_2_defers_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut data = vec![0u8; 2 << 20];
    rand::rngs::StdRng::seed_from_u64(8).fill_bytes(&mut data);
    std::fs::write(src.join("x"), &data).unwrap();
    let a = back_up(&repo, &src);
    repo.remove_restore_point(&a).unwrap();
    let Planned {
        _lock, used, seen, ..
    } = plan(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    let b = back_up(&repo, &src); // not accounted: as if saved after `account_new`
    let name = repo.backend().list(FileKind::PrunePlan).unwrap()[0]
        .name
        .clone();
    let mut rep = PruneReport::default();
    assert!(!execute_plan(&repo, &name, &used, &seen, &mut rep).unwrap());
    assert_eq!(
        (rep.deleted_packs, rep.deleted_index_files),
        (0, 1),
        "{rep:?}"
    );
    drop(_lock);
    let opts = CheckOptions {
        read_data: true,
        subset: None,
    };
    let report = check(&repo, &opts, &NoProgress).unwrap();
    assert!(report.ok(), "{report:?}");
    // the next prune sees B and keeps what it uses
    prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert!(check(&repo, &opts, &NoProgress).unwrap().ok());
    let dst = dir.path().join("dst");
    let snap = repo.load_restore_point(&b).unwrap();
    let opts = RestoreOptions::default();
    restore(&repo, &snap, &dst, &opts, &NoProgress, &Cancel::default()).unwrap();
    assert!(std::fs::read(dst.join("x")).unwrap() == data);
}

/// Runs a whole prune when check starts reading pack data.
struct PruneMidway<'r> {
    repo: &'r Repository,
    report: std::sync::Mutex<Option<PruneReport>>,
}

impl Progress for PruneMidway<'_> {
    fn start(&self, phase: &str, _total: u64) {
        if phase == "read data" {
            let rep = prune(self.repo, &PruneOptions::default(), &NoProgress).unwrap();
            *self.report.lock().unwrap() = Some(rep);
        }
    }
}

/// `check --read-data` announces itself like a backup: a prune meanwhile deletes no
/// pack that check is about to read (which check would report as damage).
#[test]
fn prune_waits_for_a_running_check() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut data = vec![0u8; 2 << 20];
    rand::rngs::StdRng::seed_from_u64(6).fill_bytes(&mut data);
    std::fs::write(src.join("x"), &data).unwrap();
    let a = back_up(&repo, &src);
    std::fs::write(src.join("x"), b"other").unwrap();
    back_up(&repo, &src);
    repo.remove_restore_point(&a).unwrap();
    let midway = PruneMidway {
        repo: &repo,
        report: std::sync::Mutex::new(None),
    };
    let opts = CheckOptions {
        read_data: true,
        subset: None,
    };
    let report = check(&repo, &opts, &midway).unwrap();
    let pruned = midway.report.lock().unwrap().take().unwrap();
    assert!(report.ok(), "prune {pruned:?}; check {report:?}");
    assert_eq!((pruned.deleted_packs, pruned.deferred_plans), (0, 1));
    let later = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert!(later.deleted_packs > 0, "{later:?}");
}

/// A backup that starts after phase 1 read the manifests, deduplicates against chunks
/// of packs the plan deletes, and commits before phase 2, keeps its chunks.
#[test]
fn restore_point_saved_between_plan_and_execute_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut data = vec![0u8; 3 << 20];
    rand::rngs::StdRng::seed_from_u64(5).fill_bytes(&mut data);
    std::fs::write(src.join("x"), &data).unwrap();
    let a = back_up(&repo, &src);
    repo.remove_restore_point(&a).unwrap(); // forget A
    let planned = plan(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert!(planned.report().unused_packs > 0, "{:?}", planned.report());
    let b = back_up(&repo, &src); // same data: only references A's chunks
    let rep = execute(&repo, planned, &NoProgress).unwrap();
    let opts = CheckOptions {
        read_data: true,
        subset: None,
    };
    let report = check(&repo, &opts, &NoProgress).unwrap();
    assert!(report.ok(), "prune {rep:?}; check {report:?}");
    let dst = dir.path().join("dst");
    let snap = repo.load_restore_point(&b).unwrap();
    let opts = RestoreOptions::default();
    restore(&repo, &snap, &dst, &opts, &NoProgress, &Cancel::default()).unwrap();
    assert!(std::fs::read(dst.join("x")).unwrap() == data);
}

/// A cancel that comes while the last packs are stored (the whole source read) is
/// honoured: no restore point is saved, and prune removes what was stored.
#[test]
fn a_cancel_during_the_last_uploads_saves_no_restore_point() {
    /// Cancels when the read phase ends, just before the writer stores its last packs.
    struct CancelAtFinish<'a>(&'a Cancel);
    impl crate::progress::Progress for CancelAtFinish<'_> {
        fn finish(&self) {
            self.0.cancel();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut data = vec![0u8; 3 << 20];
    rand::rngs::StdRng::seed_from_u64(9).fill_bytes(&mut data);
    std::fs::write(src.join("x"), &data).unwrap();
    let cancel = Cancel::default();
    let items = vec![SourceItem {
        name: "src".into(),
        source: Source::Path(src.clone()),
    }];
    let e = backup(
        &repo,
        items,
        &BackupOptions::default(),
        &CancelAtFinish(&cancel),
        &cancel,
    )
    .unwrap_err();
    assert_eq!(e.kind(), crate::error::ErrorKind::Cancelled, "{e}");
    let (points, bad) = repo.restore_points().unwrap();
    assert!(points.is_empty() && bad.is_empty());
    assert!(!repo.backend().list(FileKind::Pack).unwrap().is_empty());
    let rep = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert!(rep.deleted_packs > 0, "{rep:?}");
    assert!(repo.backend().list(FileKind::Pack).unwrap().is_empty());
}
