//! Copying a restore point into another repository (a policy's copy target, `rehydra copy`).
//!
//! Chunk ids are keyed per repository, so a copy cannot move sealed chunks as they are:
//! every chunk is read and verified in the source, then hashed, compressed and sealed
//! with the destination's keys. Chunk boundaries stay the source's; content maps are
//! rewritten with the destination's ids. The copy keeps the restore point's time, asset,
//! workload, plugin, tags and consistency, and records where it came from
//! ([`CopiedFrom`]), which makes copying idempotent and incremental:
//!
//! - a restore point already copied is skipped;
//! - the previous copy of the same asset pairs source ids with destination ids (the two
//!   content maps have the same shape), so chunks that copy already holds are neither
//!   read nor written again. Without such a pair every chunk is read once.
//!
//! As with a backup, nothing is committed until the manifest is saved last; a killed
//! copy leaves only unreferenced packs in the destination, which prune removes.

use std::collections::HashMap;
use std::fs::File;

use rayon::prelude::*;

use crate::chunker::Piece;
use crate::contentmap::read_map;
use crate::contentmap::{Extent, MapEvent, MapWriter};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::ChunkIndex;
use crate::lock::Lock;
use crate::manifest::{CopiedFrom, Item, RestorePoint};
use crate::progress::{Cancel, Progress};
use crate::repository::Repository;
use crate::writer::ChunkWriter;

/// Chunks read from the source per batch (they are verified in parallel).
const BATCH: usize = 64;

/// What one copy did.
#[derive(Debug, Clone)]
pub struct CopyResult {
    /// The restore point in the destination.
    pub id: Id,
    /// Its manifest.
    pub restore_point: RestorePoint,
    /// True when the destination already held this copy (nothing was written).
    pub already_copied: bool,
    /// Chunks read from the source.
    pub chunks_read: u64,
    /// Chunks taken from the previous copy without reading them.
    pub chunks_reused: u64,
    /// Chunks new to the destination.
    pub new_chunks: u64,
    /// Bytes written to destination packs (compressed, sealed).
    pub stored_bytes: u64,
}

/// Copy restore point `id` of `src` into `dst`.
///
/// # Errors
/// Same repository on both sides, unknown restore point, a damaged source chunk (nothing
/// is committed), storage failure in the destination, or cancellation.
pub fn copy_restore_point(
    src: &Repository,
    id: &Id,
    dst: &Repository,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<CopyResult> {
    if src.config().id == dst.config().id {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the copy target is the same repository as the source; name another repository",
        ));
    }
    let snap = src.load_restore_point(id)?;
    let origin = CopiedFrom {
        repository: src.config().id,
        restore_point: *id,
    };
    let (dst_snaps, _) = dst.restore_points()?;
    if let Some((did, ds)) = dst_snaps
        .iter()
        .find(|(_, s)| s.copied_from.as_ref() == Some(&origin))
    {
        return Ok(CopyResult {
            id: *did,
            restore_point: ds.clone(),
            already_copied: true,
            chunks_read: 0,
            chunks_reused: 0,
            new_chunks: 0,
            stored_bytes: 0,
        });
    }

    // presence in both, then the indexes: prune relies on this order
    let src_lock = Lock::backup(src.backend().clone())?;
    let dst_lock = Lock::backup(dst.backend().clone())?;
    let (src_index, _) = src.load_index()?;
    let (dst_index, _) = dst.load_index()?;

    let mut known = Known {
        previous: previous_pairs(src, &src_index, dst, &dst_index, &snap, &dst_snaps)?,
        fresh: HashMap::new(),
    };
    let total: u64 = snap.items.iter().map(|i| i.size).sum();
    progress.start("copy", total);
    let mut writer = ChunkWriter::new(dst, &dst_index);
    let params = dst.config().chunker.into();
    let seed = dst.keys().cdc_seed();
    let mut counts = Counts::default();
    let mut items = Vec::with_capacity(snap.items.len());
    for item in &snap.items {
        progress.message(&format!("item {}", item.name));
        let tmp =
            tempfile::tempfile().map_err(|e| Error::io("creating a temporary content map", e))?;
        let mut map = MapWriter::new(tmp);
        for ev in read_map(src, &src_index, item) {
            match ev? {
                MapEvent::Node(n) => map.node(n).map_err(|e| Error::io("content map", e))?,
                MapEvent::Extents(xs) => {
                    for part in xs.chunks(BATCH) {
                        if cancel.is_cancelled() {
                            return Err(Error::new(
                                ErrorKind::Cancelled,
                                "copy cancelled; nothing was committed in the copy target",
                            ));
                        }
                        let out = copy_extents(
                            src,
                            &src_index,
                            &dst_index,
                            &mut writer,
                            &mut known,
                            part,
                            &mut counts,
                        )?;
                        for e in out {
                            progress.inc(e.len());
                            map.extent(e).map_err(|e| Error::io("content map", e))?;
                        }
                    }
                }
            }
        }
        let file: File = map.finish().map_err(|e| Error::io("content map", e))?;
        let ids = crate::archiver::store_map(&mut writer, file, params, seed)?;
        items.push(Item {
            name: item.name.clone(),
            kind: item.kind,
            size: item.size,
            map: ids,
        });
    }
    progress.finish();
    let (_, stats) = writer.finish()?;
    let parent = dst_snaps
        .iter()
        .rev()
        .find(|(_, s)| s.asset == snap.asset && s.workload == snap.workload)
        .map(|(id, _)| *id);
    let copy = RestorePoint {
        items,
        parent,
        copied_from: Some(origin),
        ..snap
    };
    let new_id = dst.save_restore_point(&copy)?;
    drop(dst_lock);
    drop(src_lock);
    Ok(CopyResult {
        id: new_id,
        restore_point: copy,
        already_copied: false,
        chunks_read: counts.read,
        chunks_reused: counts.reused,
        new_chunks: stats.new_chunks,
        stored_bytes: stats.stored_bytes,
    })
}

/// Source id → destination id.
struct Known {
    /// From the previous copy; each is checked to still be in the destination's index.
    previous: HashMap<Id, Id>,
    /// Written by this copy (the writer holds them even before its index is durable).
    fresh: HashMap<Id, Id>,
}

#[derive(Default)]
struct Counts {
    read: u64,
    reused: u64,
}

/// Destination extents for a run of source extents: known chunks by their pairing,
/// the rest read (verified) from the source and written to the destination.
fn copy_extents(
    src: &Repository,
    src_index: &ChunkIndex,
    dst_index: &ChunkIndex,
    writer: &mut ChunkWriter<'_>,
    known: &mut Known,
    part: &[Extent],
    counts: &mut Counts,
) -> Result<Vec<Extent>> {
    let mut out: Vec<Option<Extent>> = Vec::with_capacity(part.len());
    let mut wanted: Vec<(usize, Id)> = Vec::new();
    for (i, e) in part.iter().enumerate() {
        match e {
            Extent::Zero(n) => out.push(Some(Extent::Zero(*n))),
            Extent::Data(id, len) => {
                let reuse = match (known.fresh.get(id), known.previous.get(id)) {
                    (Some(d), _) => Some(*d),
                    (None, Some(d)) if dst_index.contains(d)? => {
                        counts.reused += 1;
                        Some(*d)
                    }
                    _ => None,
                };
                match reuse {
                    Some(d) => out.push(Some(Extent::Data(d, *len))),
                    None => {
                        out.push(None);
                        wanted.push((i, *id));
                    }
                }
            }
        }
    }
    if wanted.is_empty() {
        return Ok(out.into_iter().flatten().collect());
    }
    let data: Vec<Result<Vec<u8>>> = wanted
        .par_iter()
        .map(|(_, id)| src.read_chunk(src_index, id))
        .collect();
    let mut pieces = Vec::with_capacity(data.len());
    for d in data {
        pieces.push(Piece::Data(d?));
    }
    counts.read += pieces.len() as u64;
    let written = writer.write(pieces)?;
    for ((i, sid), e) in wanted.into_iter().zip(written) {
        if let Extent::Data(did, _) = e {
            known.fresh.insert(sid, did);
        }
        out[i] = Some(e);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Source id → destination id pairs from the previous copy of the same asset, by walking
/// both content maps side by side. Only pairs whose shapes agree are taken.
fn previous_pairs(
    src: &Repository,
    src_index: &ChunkIndex,
    dst: &Repository,
    dst_index: &ChunkIndex,
    snap: &RestorePoint,
    dst_snaps: &[(Id, RestorePoint)],
) -> Result<HashMap<Id, Id>> {
    let mut pairs = HashMap::new();
    let src_repo = src.config().id;
    let Some((prev_dst, prev_src_id)) = dst_snaps.iter().rev().find_map(|(_, s)| {
        let from = s.copied_from.as_ref()?;
        (from.repository == src_repo && s.asset == snap.asset && s.workload == snap.workload)
            .then_some((s, from.restore_point))
    }) else {
        return Ok(pairs);
    };
    let Ok(prev_src) = src.load_restore_point(&prev_src_id) else {
        return Ok(pairs); // forgotten in the source since: read everything
    };
    for a in &prev_src.items {
        let Some(b) = prev_dst.items.iter().find(|b| b.name == a.name) else {
            continue;
        };
        let left = flat_data(src, src_index, a)?;
        let right = flat_data(dst, dst_index, b)?;
        // the copy has the source's shape, extent for extent; anything else is not a pair
        if left.len() != right.len() || left.iter().zip(&right).any(|(l, r)| l.1 != r.1) {
            continue;
        }
        for ((s, _), (d, _)) in left.into_iter().zip(right) {
            pairs.insert(s, d);
        }
    }
    Ok(pairs)
}

/// The data chunks (id, length) of an item's content map, in order.
fn flat_data(repo: &Repository, index: &ChunkIndex, item: &Item) -> Result<Vec<(Id, u32)>> {
    let mut ids = Vec::new();
    for ev in read_map(repo, index, item) {
        if let MapEvent::Extents(xs) = ev? {
            ids.extend(xs.into_iter().filter_map(|e| match e {
                Extent::Data(id, len) => Some((id, len)),
                Extent::Zero(_) => None,
            }));
        }
    }
    Ok(ids)
}
