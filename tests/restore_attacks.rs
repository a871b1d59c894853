//! The engine's restore played against: a target folder a user replaced with a link, a
//! content map written by a hostile host (a link and then a path through it, paths out of
//! order), an item named `..`, a setuid file of a user, a manifest stored again under
//! another name. Nothing may be written outside the target, nothing may gain privileges.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rehydra_api::{
    BackupOptions, Cancel, Code, NoProgress, RestoreOptions, RestorePointFilter, Source, SourceItem,
};
use rehydra_core::Id;
use rehydra_core::internals::Piece;
use rehydra_core::{Extent, MapWriter, Node, NodeKind};
use rehydra_core::{Item, ItemKind, PluginRef, RestorePoint, Summary};
use rehydra_core::internals::ChunkWriter;
use rehydra_integration_tests::TestRepo;

/// An item of a hand-made restore point: name, kind, nodes with their bytes.
type HostileItem<'a> = (&'a str, ItemKind, Vec<(Node, Vec<u8>)>);

/// Write a restore point whose items hold exactly `nodes` (with their bytes), as a host
/// holding the key could: the engine's own writer, a content map of our choosing.
fn hostile_point(r: &TestRepo, items: Vec<HostileItem<'_>>) -> Id {
    let s = r.open();
    let repo = s.repository();
    let (index, _) = repo.load_index().unwrap();
    let mut w = ChunkWriter::new(repo, &index);
    let mut out = Vec::new();
    for (name, kind, nodes) in items {
        let mut map = MapWriter::new(Vec::new());
        let mut size = 0;
        for (mut n, data) in nodes {
            n.size = data.len() as u64;
            size += n.size;
            map.node(n).unwrap();
            if !data.is_empty() {
                for e in w.write(vec![Piece::Data(data)]).unwrap() {
                    map.extent(e).unwrap();
                }
            }
        }
        let bytes = map.finish().unwrap();
        let ids = w
            .write(vec![Piece::Data(bytes)])
            .unwrap()
            .into_iter()
            .filter_map(|e| match e {
                Extent::Data(id, _) => Some(id),
                Extent::Zero(_) => None,
            })
            .collect();
        out.push(Item {
            name: name.into(),
            kind,
            size,
            map: ids,
        });
    }
    w.finish().unwrap();
    repo.save_restore_point(&RestorePoint {
        version: 1,
        id: None,
        time: chrono::Utc::now(),
        workload: "files".into(),
        asset: "hostile".into(),
        plugin: PluginRef {
            id: "builtin".into(),
            version: "0".into(),
        },
        consistency: "crash".into(),
        hostname: "elsewhere".into(),
        items: out,
        parent: None,
        tags: vec![],
        summary: Summary::default(),
        copied_from: None,
    })
    .unwrap()
}

fn node(path: &str, kind: NodeKind) -> Node {
    Node {
        path: path.into(),
        kind,
        mode: if kind == NodeKind::Dir { 0o755 } else { 0o644 },
        ..Node::default()
    }
}

fn restore(
    r: &TestRepo,
    id: &Id,
    target: &Path,
    overwrite: bool,
) -> rehydra_api::Result<rehydra_api::RestoreSummary> {
    r.open().restore(
        &id.to_hex(),
        &RestorePointFilter::default(),
        target,
        &RestoreOptions {
            overwrite,
            ..RestoreOptions::default()
        },
        &NoProgress,
        &Cancel::default(),
    )
}

fn empty(p: &Path) -> bool {
    fs::read_dir(p).unwrap().next().is_none()
}

#[test]
fn a_folder_replaced_by_a_link_is_not_written_through() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    fs::write(src.join("docs/cron"), b"* * * * * root evil").unwrap();
    let s = r.open();
    let b = s
        .backup(
            vec![SourceItem {
                name: "home".into(),
                source: Source::Path(src.clone()),
            }],
            &BackupOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    let outside = r.scratch("etc");
    let dst = r.scratch("dst");
    std::os::unix::fs::symlink(&outside, dst.join("docs")).unwrap();
    for overwrite in [false, true] {
        let e = restore(
            &r,
            &Id::parse(&b.restore_point.id).unwrap(),
            &dst,
            overwrite,
        )
        .unwrap_err();
        assert_eq!(e.code, Code::InvalidInput, "{}", e.message);
        assert!(e.message.contains("symbolic link"), "{}", e.message);
    }
    assert!(empty(&outside), "nothing written where the link points");
}

#[test]
fn a_map_through_its_own_link_is_refused() {
    let r = TestRepo::new();
    let outside = r.scratch("etc");
    let mut link = node("a", NodeKind::Symlink);
    link.target = Some(outside.display().to_string());
    let id = hostile_point(
        &r,
        vec![(
            "tree",
            ItemKind::Tree,
            vec![
                (node("", NodeKind::Dir), vec![]),
                (link, vec![]),
                (node("a/cron.d", NodeKind::Dir), vec![]),
                (node("a/cron.d/x", NodeKind::File), b"evil".to_vec()),
            ],
        )],
    );
    let dst = r.dir.path().join("dst");
    let e = restore(&r, &id, &dst, true).unwrap_err();
    assert_eq!(e.code, Code::Corrupt, "{}", e.message);
    assert!(e.message.contains("below a link"), "{}", e.message);
    assert!(empty(&outside));
    assert!(
        !dst.exists(),
        "refused while planning: nothing written at all"
    );
}

#[test]
fn maps_out_of_order_or_with_dots_are_refused() {
    let r = TestRepo::new();
    for nodes in [
        vec![
            node("", NodeKind::Dir),
            node("b", NodeKind::File),
            node("a", NodeKind::File),
        ],
        vec![
            node("", NodeKind::Dir),
            node("a", NodeKind::File),
            node("a", NodeKind::File),
        ],
        vec![
            node("", NodeKind::Dir),
            node("..", NodeKind::Dir),
            node("../x", NodeKind::File),
        ],
        vec![node("", NodeKind::Dir), node("/etc", NodeKind::File)],
    ] {
        let id = hostile_point(
            &r,
            vec![(
                "tree",
                ItemKind::Tree,
                nodes.into_iter().map(|n| (n, vec![])).collect(),
            )],
        );
        let dst = r.dir.path().join("dst-order");
        let e = restore(&r, &id, &dst, true).unwrap_err();
        assert_eq!(e.code, Code::Corrupt, "{}", e.message);
        assert!(!dst.exists());
    }
}

#[test]
fn an_item_named_dot_dot_stays_inside() {
    let r = TestRepo::new();
    let mut f = node("", NodeKind::File);
    f.mode = 0o644;
    let id = hostile_point(
        &r,
        vec![
            (
                "..",
                ItemKind::Stream,
                vec![(f.clone(), b"escaped".to_vec())],
            ),
            ("ok", ItemKind::Stream, vec![(f, b"fine".to_vec())]),
        ],
    );
    let parent = r.scratch("parent");
    let dst = parent.join("dst");
    fs::create_dir(&dst).unwrap();
    let e = restore(&r, &id, &dst, true).unwrap_err();
    assert_eq!(e.code, Code::InvalidInput, "{}", e.message);
    assert_eq!(
        fs::read_dir(&parent).unwrap().count(),
        1,
        "only dst in its parent"
    );
    assert!(empty(&dst));
}

/// Owners are recorded; as root they come back with the file, and a set-ID bit survives
/// only with its owner (a point made before owners were recorded loses the bit).
#[test]
fn setuid_files_keep_their_owner_or_lose_the_bit() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    let shell = src.join("myshell");
    fs::write(&shell, b"#!/bin/sh\n").unwrap();
    fs::set_permissions(&shell, fs::Permissions::from_mode(0o4755)).unwrap();
    let root = rehydra_target::running_as_root();
    if root {
        std::os::unix::fs::chown(&shell, Some(4321), Some(4321)).unwrap();
        fs::set_permissions(&shell, fs::Permissions::from_mode(0o4755)).unwrap();
    }
    let s = r.open();
    let b = s
        .backup(
            vec![SourceItem {
                name: "home".into(),
                source: Source::Path(src.clone()),
            }],
            &BackupOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    let dst = r.scratch("dst");
    restore(&r, &Id::parse(&b.restore_point.id).unwrap(), &dst, false).unwrap();
    let md = fs::metadata(dst.join("myshell")).unwrap();
    if root {
        assert_eq!((md.uid(), md.gid()), (4321, 4321), "owner restored");
        assert_eq!(md.mode() & 0o7777, 0o4755);
    } else {
        assert_eq!(
            md.mode() & 0o7777,
            0o755,
            "not root: the set-ID bit is dropped"
        );
    }
    // a restore point without owners (older writers, or another host's map)
    let mut f = node("", NodeKind::Dir);
    f.mode = 0o755;
    let mut suid = node("sh", NodeKind::File);
    suid.mode = 0o6755;
    let id = hostile_point(
        &r,
        vec![(
            "tree",
            ItemKind::Tree,
            vec![(f, vec![]), (suid, b"x".to_vec())],
        )],
    );
    let dst2 = r.dir.path().join("dst2");
    restore(&r, &id, &dst2, false).unwrap();
    let md = fs::metadata(dst2.join("sh")).unwrap();
    assert_eq!(
        md.mode() & 0o7777,
        0o755,
        "no recorded owner: no set-ID bits"
    );
    if root {
        assert_eq!(md.uid(), 0);
    }
}

/// A manifest copied under another name (by anyone who can write the repository, key or
/// not) is detected and ignored, not listed as a second restore point.
#[test]
fn a_replayed_manifest_is_detected() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::write(src.join("f"), b"data").unwrap();
    let s = r.open();
    let b = s
        .backup(
            vec![SourceItem {
                name: "f".into(),
                source: Source::Path(src.join("f")),
            }],
            &BackupOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    let snaps = r.path().join("snapshots");
    let other = Id::random().to_hex();
    fs::copy(snaps.join(&b.restore_point.id), snaps.join(&other)).unwrap();
    let (ok, bad) = r.open().repository().restore_points().unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0.to_hex(), other);
    assert!(
        bad[0]
            .1
            .to_string()
            .contains("stored again under another name"),
        "{}",
        bad[0].1
    );
}

/// Restoring into folders that exist (the target itself, a folder inside it) never
/// rewrites their owner or mode, whatever the restore point says, unless the admin
/// allowed replacing; the target folder itself never changes.
#[test]
fn existing_folders_keep_their_mode() {
    let r = TestRepo::new();
    let mut root = node("", NodeKind::Dir);
    root.mode = 0o7777;
    let mut sub = node("existing", NodeKind::Dir);
    sub.mode = 0o2777;
    let id = hostile_point(
        &r,
        vec![(
            "tree",
            ItemKind::Tree,
            vec![
                (root, vec![]),
                (sub, vec![]),
                (node("existing/f", NodeKind::File), b"x".to_vec()),
            ],
        )],
    );
    let dst = r.scratch("dst");
    fs::create_dir(dst.join("existing")).unwrap();
    for p in [&dst, &dst.join("existing")] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o700)).unwrap();
    }
    restore(&r, &id, &dst, false).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&dst), 0o700, "the target keeps its mode");
    assert_eq!(
        mode(&dst.join("existing")),
        0o700,
        "an existing folder keeps its mode"
    );
    // with consent, folders inside the target take the restore point's mode (never set-ID
    // bits without their owner); the target itself still does not
    restore(&r, &id, &dst, true).unwrap();
    assert_eq!(mode(&dst), 0o700);
    assert_eq!(mode(&dst.join("existing")), 0o777);
}

/// A file node holds exactly the bytes it records: more data than recorded (or data in
/// a node that records none) stops the restore at once instead of filling the disk.
#[test]
fn a_file_holds_no_more_than_it_records() {
    let r = TestRepo::new();
    let big = vec![7u8; 4 << 20];
    for recorded in [0u64, 10] {
        let s = r.open();
        let repo = s.repository();
        let (index, _) = repo.load_index().unwrap();
        let mut w = ChunkWriter::new(repo, &index);
        let mut map = MapWriter::new(Vec::new());
        map.node(node("", NodeKind::Dir)).unwrap();
        let mut f = node("f", NodeKind::File);
        f.size = recorded;
        map.node(f).unwrap();
        for e in w.write(vec![Piece::Data(big.clone())]).unwrap() {
            map.extent(e).unwrap();
        }
        let ids = w
            .write(vec![Piece::Data(map.finish().unwrap())])
            .unwrap()
            .into_iter()
            .filter_map(|e| match e {
                Extent::Data(id, _) => Some(id),
                Extent::Zero(_) => None,
            })
            .collect();
        w.finish().unwrap();
        let id = repo
            .save_restore_point(&RestorePoint {
                version: 1,
                id: None,
                time: chrono::Utc::now(),
                workload: "files".into(),
                asset: "big".into(),
                plugin: PluginRef {
                    id: "builtin".into(),
                    version: "0".into(),
                },
                consistency: "crash".into(),
                hostname: "h".into(),
                items: vec![Item {
                    name: "tree".into(),
                    kind: ItemKind::Tree,
                    size: recorded,
                    map: ids,
                }],
                parent: None,
                tags: vec![],
                summary: Summary::default(),
                copied_from: None,
            })
            .unwrap();
        let dst = r.dir.path().join(format!("dst-{recorded}"));
        let e = restore(&r, &id, &dst, false).unwrap_err();
        assert_eq!(e.code, Code::Corrupt, "{}", e.message);
        assert!(e.message.contains("more data"), "{}", e.message);
        assert!(!dst.join("f").exists(), "no partial file");
    }
}
