use std::fs;

use rehydra_api::{
    BackupOptions, Cancel, CheckOptions, Code, Context, NoProgress, RestoreOptions,
    RestorePointFilter, Source, SourceItem,
};
use rehydra_integration_tests::{PW, TestRepo, files_in, random_bytes};

fn setup() -> (TestRepo, std::path::PathBuf) {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::write(src.join("a.bin"), random_bytes(3 << 20, 1)).unwrap();
    let s = r.open();
    s.backup(
        vec![SourceItem {
            name: "a".into(),
            source: Source::Path(src.clone()),
        }],
        &BackupOptions::default(),
        &NoProgress,
        &Cancel::default(),
    )
    .unwrap();
    (r, src)
}

fn flip(path: &std::path::Path, at: usize) {
    let mut b = fs::read(path).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x40;
    fs::write(path, b).unwrap();
}

#[test]
fn bit_flip_in_pack_is_found_by_check_and_restore() {
    let (r, _) = setup();
    let packs = files_in(&r.path().join("packs"));
    assert!(packs.len() >= 2);
    flip(&packs[0], 1000);
    let s = r.open();
    assert!(
        s.check(&CheckOptions::default(), &NoProgress).unwrap().ok(),
        "structure alone cannot see a flipped bit"
    );
    let rep = s
        .check(
            &CheckOptions {
                read_data: true,
                subset: None,
            },
            &NoProgress,
        )
        .unwrap();
    assert!(!rep.ok());
    assert_eq!(rep.damaged_restore_points.len(), 1, "{:?}", rep.errors);
    let dst = r.dir.path().join("dst");
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
    assert_eq!(e.code, Code::Corrupt, "{}", e.message);
    // no half-written file under a real name
    assert!(!dst.join("a.bin").exists());
}

#[test]
fn bit_flip_in_index_is_found() {
    let (r, _) = setup();
    let idx = files_in(&r.path().join("index"));
    flip(&idx[0], 100);
    let s = r.open();
    let rep = s.check(&CheckOptions::default(), &NoProgress).unwrap();
    assert!(
        rep.errors.iter().any(|e| e.contains("index file")),
        "{:?}",
        rep.errors
    );
    // without a warm cache, restore cannot find the chunks and says so
    let cold = rehydra_api::open(
        &Context {
            catalog: None,
            cache_dir: None,
            ..Default::default()
        },
        &r.location(),
        PW,
    )
    .unwrap();
    let e = cold
        .restore(
            "latest",
            &RestorePointFilter::default(),
            &r.dir.path().join("dst"),
            &RestoreOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap_err();
    assert!(matches!(e.code, Code::Missing | Code::Corrupt), "{e:?}");
}

#[test]
fn missing_pack_names_the_affected_restore_points() {
    let (r, _) = setup();
    let packs = files_in(&r.path().join("packs"));
    fs::remove_file(&packs[0]).unwrap();
    let rep = r
        .open()
        .check(&CheckOptions::default(), &NoProgress)
        .unwrap();
    assert!(!rep.ok());
    assert_eq!(rep.damaged_restore_points.len(), 1);
}

#[test]
fn truncated_pack_and_manifest_are_reported() {
    let (r, _) = setup();
    let packs = files_in(&r.path().join("packs"));
    let b = fs::read(&packs[1]).unwrap();
    fs::write(&packs[1], &b[..b.len() / 2]).unwrap();
    let rep = r
        .open()
        .check(
            &CheckOptions {
                read_data: true,
                subset: None,
            },
            &NoProgress,
        )
        .unwrap();
    assert!(!rep.ok());
    let snaps = files_in(&r.path().join("snapshots"));
    flip(&snaps[0], 40);
    let rep = r
        .open()
        .check(&CheckOptions::default(), &NoProgress)
        .unwrap();
    assert!(
        rep.errors.iter().any(|e| e.contains("restore point")),
        "{:?}",
        rep.errors
    );
}

#[test]
fn not_a_repository_and_newer_format() {
    let r = TestRepo::new();
    let ctx = r.ctx.clone();
    let empty = r.scratch("empty");
    assert_eq!(
        rehydra_api::open(&ctx, &empty.display().to_string(), PW)
            .err()
            .unwrap()
            .code,
        Code::NotARepository
    );
    assert_eq!(
        rehydra_api::open(&ctx, "/definitely/not/here", PW)
            .err()
            .unwrap()
            .code,
        Code::NotARepository
    );
    let cfg = r.path().join("config");
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"version\": 1", "\"version\": 2");
    fs::write(&cfg, text).unwrap();
    assert_eq!(
        rehydra_api::open(&ctx, &r.location(), PW)
            .err()
            .unwrap()
            .code,
        Code::UnsupportedVersion
    );
    fs::write(&cfg, b"{\"hello\": 1}").unwrap();
    assert_eq!(
        rehydra_api::open(&ctx, &r.location(), PW)
            .err()
            .unwrap()
            .code,
        Code::NotARepository
    );
}
