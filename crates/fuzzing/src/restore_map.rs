//! A hostile content map restored into a scratch folder.

use rehydra_core::KdfParams;
use rehydra_core::backend::LocalBackend;
use rehydra_core::internals::ChunkWriter;
use rehydra_core::internals::Piece;
use rehydra_core::restorer::{RestoreOptions, restore};
use rehydra_core::{Cancel, NoProgress};
use rehydra_core::{Extent, MapWriter, Node, NodeKind};
use rehydra_core::{InitOptions, OpenOptions, Repository};
use rehydra_core::{Item, ItemKind, PluginRef, RestorePoint, Summary};
use std::path::Path;
fn nodes(data: &[u8], outside: &Path) -> Vec<Node> {
    let text = String::from_utf8_lossy(data);
    let mut out = vec![Node {
        kind: NodeKind::Dir,
        mode: 0o755,
        ..Node::default()
    }];
    for line in text.lines().take(64) {
        let (kind, rest) = match line.split_at_checked(2) {
            Some(("d ", r)) => (NodeKind::Dir, r),
            Some(("f ", r)) => (NodeKind::File, r),
            Some(("l ", r)) => (NodeKind::Symlink, r),
            _ => continue,
        };
        let (path, target) = match rest.split_once('>') {
            Some((p, t)) => (p, Some(t.replace('@', &outside.display().to_string()))),
            None => (rest, None),
        };
        out.push(Node {
            path: path.to_string(),
            kind,
            mode: 0o7777,
            target,
            ..Node::default()
        });
    }
    out
}

fn listing(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A hostile content map restored into a scratch folder: whatever nodes a writer holding the key puts into a map (paths with `..`, absolute paths, links followed by paths through them, duplicates, any order), nothing may be created outside the target.  Input: one node per line, `d PATH`, `f PATH` or `l PATH>TARGET` (link targets may name the `outside` folder with `@`).
pub fn restore_map(data: &[u8]) {
    let sandbox = tempfile::tempdir().unwrap();
    let outside = sandbox.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let backend = std::sync::Arc::new(LocalBackend::new(sandbox.path().join("repo")));
    backend.create_layout().unwrap();
    let repo = Repository::init(
        backend,
        b"pw",
        InitOptions {
            kdf: KdfParams::insecure_for_tests(),
            ..InitOptions::default()
        },
        OpenOptions::default(),
    )
    .unwrap();
    let (index, _) = repo.load_index().unwrap();
    let mut w = ChunkWriter::new(&repo, &index);
    let mut map = MapWriter::new(Vec::new());
    for mut n in nodes(data, &outside) {
        let file = n.kind == NodeKind::File;
        n.size = if file { 1 } else { 0 };
        map.node(n).unwrap();
        if file {
            for e in w.write(vec![Piece::Data(b"x".to_vec())]).unwrap() {
                map.extent(e).unwrap();
            }
        }
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
    drop(index);
    let snap = RestorePoint {
        version: 1,
        id: None,
        time: chrono::Utc::now(),
        workload: "fuzz".into(),
        asset: "fuzz".into(),
        plugin: PluginRef {
            id: "builtin".into(),
            version: "0".into(),
        },
        consistency: "crash".into(),
        hostname: "fuzz".into(),
        items: vec![Item {
            name: "tree".into(),
            kind: ItemKind::Tree,
            size: 0,
            map: ids,
        }],
        parent: None,
        tags: vec![],
        summary: Summary::default(),
        copied_from: None,
    };
    let target = sandbox.path().join("target");
    for overwrite in [false, true] {
        let _ = restore(
            &repo,
            &snap,
            &target,
            &RestoreOptions {
                overwrite,
                ..RestoreOptions::default()
            },
            &NoProgress,
            &Cancel::default(),
        );
        assert!(
            listing(&outside).is_empty(),
            "something was created outside the target"
        );
        let top = listing(sandbox.path());
        assert!(
            top.iter()
                .all(|n| ["outside", "repo", "target"].contains(&n.as_str())),
            "something was created beside the target: {top:?}"
        );
    }
}
