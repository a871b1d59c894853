//! Differences between two restore points.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::contentmap::{Extent, MapEvent, NodeKind, read_map};
use crate::error::Result;
use crate::id::Id;
use crate::manifest::RestorePoint;
use crate::repository::Repository;

/// One changed path.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DiffEntry {
    /// `+` added, `-` removed, `M` content changed, `T` type changed, `U` metadata only.
    pub change: String,
    /// `item:path`.
    pub path: String,
}

/// The differences.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    /// First restore point.
    pub from: String,
    /// Second.
    pub to: String,
    /// Changes, sorted by path.
    pub changes: Vec<DiffEntry>,
    /// Added.
    pub added: usize,
    /// Removed.
    pub removed: usize,
    /// Modified.
    pub modified: usize,
}

/// What a path is and holds, for comparing.
#[derive(PartialEq, Eq)]
struct Sig {
    kind: NodeKind,
    size: u64,
    mode: u32,
    mtime: i64,
    target: Option<String>,
    content: blake3::Hash,
}

/// Every path of a restore point with what identifies its content (the chunk ids of
/// its extents, hashed), without reading data.
fn signatures(
    repo: &Repository,
    idx: &crate::index::ChunkIndex,
    snap: &RestorePoint,
) -> Result<BTreeMap<String, Sig>> {
    let mut out = BTreeMap::new();
    for item in &snap.items {
        let mut cur: Option<(String, Sig, blake3::Hasher)> = None;
        let flush = |cur: &mut Option<(String, Sig, blake3::Hasher)>,
                     out: &mut BTreeMap<String, Sig>| {
            if let Some((p, mut sig, h)) = cur.take() {
                sig.content = h.finalize();
                out.insert(p, sig);
            }
        };
        for ev in read_map(repo, idx, item) {
            match ev? {
                MapEvent::Node(n) => {
                    flush(&mut cur, &mut out);
                    let path = if n.path.is_empty() {
                        item.name.clone()
                    } else {
                        format!("{}:{}", item.name, n.path)
                    };
                    cur = Some((
                        path,
                        Sig {
                            kind: n.kind,
                            size: n.size,
                            mode: n.mode,
                            mtime: n.mtime_ns,
                            target: n.target,
                            content: blake3::hash(b""),
                        },
                        blake3::Hasher::new(),
                    ));
                }
                MapEvent::Extents(xs) => {
                    if let Some((_, _, h)) = cur.as_mut() {
                        for x in xs {
                            match x {
                                Extent::Data(id, len) => {
                                    h.update(id.as_bytes());
                                    h.update(&len.to_le_bytes());
                                }
                                Extent::Zero(n) => {
                                    h.update(&[0u8; 32]);
                                    h.update(&n.to_le_bytes());
                                }
                            }
                        }
                    }
                }
            }
        }
        flush(&mut cur, &mut out);
    }
    Ok(out)
}

/// What changed from restore point `a` to `b` (paths as `item:path`), from their content
/// maps alone.
///
/// # Errors
/// A content map cannot be read or is damaged.
pub fn diff(repo: &Repository, a: (&Id, &RestorePoint), b: (&Id, &RestorePoint)) -> Result<DiffReport> {
    let (idx, _) = repo.load_index()?;
    let sa = signatures(repo, &idx, a.1)?;
    let sb = signatures(repo, &idx, b.1)?;
    let mut changes = Vec::new();
    let (mut added, mut removed, mut modified) = (0, 0, 0);
    for (p, x) in &sa {
        match sb.get(p) {
            None => {
                removed += 1;
                changes.push(DiffEntry {
                    change: "-".into(),
                    path: p.clone(),
                });
            }
            Some(y) if x.kind != y.kind => {
                modified += 1;
                changes.push(DiffEntry {
                    change: "T".into(),
                    path: p.clone(),
                });
            }
            Some(y) if x.content != y.content || x.size != y.size || x.target != y.target => {
                modified += 1;
                changes.push(DiffEntry {
                    change: "M".into(),
                    path: p.clone(),
                });
            }
            Some(y) if x.mode != y.mode || x.mtime != y.mtime => changes.push(DiffEntry {
                change: "U".into(),
                path: p.clone(),
            }),
            Some(_) => {}
        }
    }
    for p in sb.keys().filter(|p| !sa.contains_key(*p)) {
        added += 1;
        changes.push(DiffEntry {
            change: "+".into(),
            path: p.clone(),
        });
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(DiffReport {
        from: a.0.to_hex(),
        to: b.0.to_hex(),
        changes,
        added,
        removed,
        modified,
    })
}
