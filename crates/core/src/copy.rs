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
//! The pairing is kept in a [`RunMap`] in a temporary folder (a bounded part in memory,
//! the rest in sorted runs on local disk), so a copy's memory does not grow with the
//! number of chunks; both content maps are streamed, never held whole.
//!
//! As with a backup, nothing is committed until the manifest is saved last; a killed
//! copy leaves only unreferenced packs in the destination, which prune removes.

use std::fs::File;

use rayon::prelude::*;

use crate::chunker::Piece;
use crate::contentmap::read_map;
use crate::contentmap::{Extent, MapEvent, MapWriter};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::ChunkIndex;
use crate::index::runs::RunMap;
use crate::lock::Lock;
use crate::manifest::{CopiedFrom, Item, RestorePoint};
use crate::progress::{Cancel, Progress};
use crate::repository::Repository;
use crate::writer::ChunkWriter;

/// Chunks read from the source per batch (they are verified in parallel).
const BATCH: usize = 64;
/// Pairs held in memory before they are spilled (about 6 MiB).
const PAIRS_SPILL: usize = 64 * 1024;

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

    let mut known = Pairs::new()?;
    previous_pairs(
        &mut known, src, &src_index, dst, &dst_index, &snap, &dst_snaps,
    )?;
    let total: u64 = snap.items.iter().map(|i| i.size).sum();
    progress.start("copy", total);
    let mut writer = ChunkWriter::for_job(dst, &dst_index, Some(cancel));
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
                            return Err(cancelled());
                        }
                        let out = copy_extents(
                            src,
                            &src_index,
                            &mut writer,
                            &mut known,
                            part,
                            &mut counts,
                            cancel,
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
    let finished = writer.finish();
    // the last packs may take long to store (a limited upload): a cancel that came
    // meanwhile is honoured, as the copy is not saved yet
    if cancel.is_cancelled() {
        return Err(cancelled());
    }
    let (_, stats) = finished?;
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

/// Source id → destination id, with where the pair came from.
struct Pairs {
    map: RunMap<33>,
}

/// A pair from the previous copy: its destination chunk must be checked to still exist.
const FROM_PREVIOUS: u8 = 0;
/// A pair written by this copy.
const FROM_THIS_COPY: u8 = 1;

impl Pairs {
    fn new() -> Result<Self> {
        let map = RunMap::temporary(PAIRS_SPILL)
            .map_err(|e| Error::io("temporary folder for a copy", e))?;
        Ok(Self { map })
    }

    fn insert(&mut self, src: Id, dst: Id, from: u8) -> Result<()> {
        let mut v = [0u8; 33];
        v[..32].copy_from_slice(dst.as_bytes());
        v[32] = from;
        if self.map.insert(src, v) {
            self.map
                .spill()
                .map_err(|e| Error::io("spilling a copy's chunk pairs to a temporary folder", e))?;
        }
        Ok(())
    }

    fn get(&self, src: &Id) -> Result<Option<(Id, u8)>> {
        let v = self
            .map
            .get(src)
            .map_err(|e| Error::io("reading a copy's chunk pairs", e))?;
        Ok(v.map(|v| (Id(v[..32].try_into().expect("32 bytes")), v[32])))
    }
}

/// The error of a cancelled copy.
fn cancelled() -> Error {
    Error::new(
        ErrorKind::Cancelled,
        "copy cancelled; nothing was committed in the copy target",
    )
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
    writer: &mut ChunkWriter<'_>,
    known: &mut Pairs,
    part: &[Extent],
    counts: &mut Counts,
    cancel: &Cancel,
) -> Result<Vec<Extent>> {
    let mut out: Vec<Option<Extent>> = Vec::with_capacity(part.len());
    let mut wanted: Vec<(usize, Id)> = Vec::new();
    for (i, e) in part.iter().enumerate() {
        match e {
            Extent::Zero(n) => out.push(Some(Extent::Zero(*n))),
            Extent::Data(id, len) => {
                let reuse = match known.get(id)? {
                    Some((d, FROM_THIS_COPY)) => Some(d),
                    Some((d, _)) if writer.contains(&d)? => {
                        counts.reused += 1;
                        Some(d)
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
        .map(|(_, id)| {
            // a pooled thread: the job's flag for this read only
            let _heeding = crate::backend::heed_cancel(cancel.shared());
            src.read_chunk(src_index, id)
        })
        .collect();
    let mut pieces = Vec::with_capacity(data.len());
    for d in data {
        pieces.push(Piece::Data(d?));
    }
    counts.read += pieces.len() as u64;
    let written = writer.write(pieces)?;
    for ((i, sid), e) in wanted.into_iter().zip(written) {
        if let Extent::Data(did, _) = e {
            known.insert(sid, did, FROM_THIS_COPY)?;
        }
        out[i] = Some(e);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Source id → destination id pairs from the previous copy of the same asset, by walking
/// both content maps side by side. Only items whose shapes agree extent for extent give
/// pairs: a first pass compares the shapes, a second takes the pairs (the maps are
/// streamed twice rather than held).
fn previous_pairs(
    pairs: &mut Pairs,
    src: &Repository,
    src_index: &ChunkIndex,
    dst: &Repository,
    dst_index: &ChunkIndex,
    snap: &RestorePoint,
    dst_snaps: &[(Id, RestorePoint)],
) -> Result<()> {
    let src_repo = src.config().id;
    let Some((prev_dst, prev_src_id)) = dst_snaps.iter().rev().find_map(|(_, s)| {
        let from = s.copied_from.as_ref()?;
        (from.repository == src_repo && s.asset == snap.asset && s.workload == snap.workload)
            .then_some((s, from.restore_point))
    }) else {
        return Ok(());
    };
    let Ok(prev_src) = src.load_restore_point(&prev_src_id) else {
        return Ok(()); // forgotten in the source since: read everything
    };
    for a in &prev_src.items {
        let Some(b) = prev_dst.items.iter().find(|b| b.name == a.name) else {
            continue;
        };
        let walk = |take: &mut dyn FnMut(Id, Id) -> Result<()>| -> Result<bool> {
            let mut left = data_extents(src, src_index, a);
            let mut right = data_extents(dst, dst_index, b);
            loop {
                match (left.next().transpose()?, right.next().transpose()?) {
                    (None, None) => return Ok(true),
                    (Some((s, ls)), Some((d, ld))) if ls == ld => take(s, d)?,
                    // the copy has the source's shape, extent for extent; else no pairs
                    _ => return Ok(false),
                }
            }
        };
        if walk(&mut |_, _| Ok(()))? {
            walk(&mut |s, d| pairs.insert(s, d, FROM_PREVIOUS))?;
        }
    }
    Ok(())
}

/// The data chunks (id, length) of an item's content map, in order, as they are read.
fn data_extents<'a>(
    repo: &'a Repository,
    index: &'a ChunkIndex,
    item: &'a Item,
) -> impl Iterator<Item = Result<(Id, u32)>> + 'a {
    read_map(repo, index, item).flat_map(|ev| match ev {
        Ok(MapEvent::Extents(xs)) => xs
            .into_iter()
            .filter_map(|e| match e {
                Extent::Data(id, len) => Some(Ok((id, len))),
                Extent::Zero(_) => None,
            })
            .collect(),
        Ok(MapEvent::Node(_)) => Vec::new(),
        Err(e) => vec![Err(e)],
    })
}
