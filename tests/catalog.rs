use std::fs;

use rehydra_api::{BackupOptions, Cancel, NoProgress, RestorePointFilter, Source, SourceItem};
use rehydra_integration_tests::{TestRepo, random_bytes};

#[test]
fn catalog_deleted_then_rebuilt() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::write(src.join("f"), random_bytes(10_000, 1)).unwrap();
    let s = r.open();
    for _ in 0..3 {
        s.backup(
            vec![SourceItem {
                name: "f".into(),
                source: Source::Path(src.clone()),
            }],
            &BackupOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    }
    let before = s.catalog_restore_points().unwrap();
    assert_eq!(before.len(), 3);
    assert!(
        s.catalog_runs(10)
            .unwrap()
            .iter()
            .all(|r| r.status == rehydra_api::JobStatus::Succeeded)
    );
    let db = r.ctx.catalog.clone().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let s = r.open();
    assert!(s.catalog_restore_points().unwrap().is_empty());
    assert_eq!(s.catalog_rebuild().unwrap(), 3);
    assert_eq!(s.catalog_restore_points().unwrap(), before);
    // deleting the index cache loses nothing either
    fs::remove_dir_all(r.ctx.cache_dir.clone().unwrap()).unwrap();
    assert_eq!(
        r.open()
            .restore_points(&RestorePointFilter::default())
            .unwrap()
            .len(),
        3
    );
}
