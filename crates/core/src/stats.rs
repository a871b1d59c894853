//! Repository statistics: sizes, deduplication, the local index.

use serde::Serialize;

use crate::backend::FileKind;
use crate::contentmap::{Extent, MapEvent, read_map};
use crate::error::{Error, Result};
use crate::index::runs::RunMap;
use crate::repository::Repository;

/// Repository statistics.
#[derive(Debug, Clone, Serialize)]
pub struct RepoStats {
    /// Repository id.
    pub id: String,
    /// Location.
    pub location: String,
    /// Format version.
    pub version: u32,
    /// Restore points.
    pub restore_points: usize,
    /// Packs.
    pub packs: usize,
    /// Bytes in packs.
    pub pack_bytes: u64,
    /// Index files.
    pub index_files: usize,
    /// Distinct chunks referenced by restore points.
    pub chunks: u64,
    /// Plaintext bytes of those chunks.
    pub unique_bytes: u64,
    /// Logical bytes over all restore points.
    pub logical_bytes: u64,
    /// Zero bytes over all restore points (holes, never stored).
    pub zero_bytes: u64,
    /// logical / pack bytes.
    pub reduction_ratio: f64,
    /// Chunk-index entries on disk and in memory.
    pub index: crate::index::IndexStats,
}

/// Sizes, deduplication and the local index of a repository. The distinct chunks are
/// counted in a [`RunMap`] on local disk, so memory does not grow with the repository.
///
/// # Errors
/// Listing or reading the repository failed, or a content map is damaged.
pub fn stats(repo: &Repository) -> Result<RepoStats> {
    let b = repo.backend();
    let packs = b.list(FileKind::Pack)?;
    let index_files = b.list(FileKind::Index)?.len();
    let (idx, _) = repo.load_index()?;
    let (snaps, _) = repo.restore_points()?;
    let mut seen = RunMap::<0>::temporary(64 * 1024)
        .map_err(|e| Error::io("temporary folder for stats", e))?;
    let mut chunks = 0u64;
    let (mut unique, mut logical, mut zero) = (0u64, 0u64, 0u64);
    for (_, snap) in &snaps {
        for item in &snap.items {
            for ev in read_map(repo, &idx, item) {
                if let MapEvent::Extents(xs) = ev? {
                    for x in xs {
                        logical += x.len();
                        match x {
                            Extent::Data(id, len) => {
                                let io = |e| Error::io("stats' chunk set in a temporary folder", e);
                                if seen.get(&id).map_err(io)?.is_none() {
                                    chunks += 1;
                                    unique += u64::from(len);
                                    if seen.insert(id, []) {
                                        seen.spill().map_err(io)?;
                                    }
                                }
                            }
                            Extent::Zero(n) => zero += n,
                        }
                    }
                }
            }
        }
    }
    let pack_bytes: u64 = packs.iter().map(|p| p.size).sum();
    Ok(RepoStats {
        id: repo.config().id.to_hex(),
        location: b.location(),
        version: repo.config().version,
        restore_points: snaps.len(),
        packs: packs.len(),
        pack_bytes,
        index_files,
        chunks,
        unique_bytes: unique,
        logical_bytes: logical,
        zero_bytes: zero,
        reduction_ratio: if pack_bytes == 0 {
            0.0
        } else {
            logical as f64 / pack_bytes as f64
        },
        index: idx.stats(),
    })
}
