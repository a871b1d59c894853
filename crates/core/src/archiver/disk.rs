//! Disk items: a whole virtual disk (only allocated extents are read), or an earlier
//! restore point's disk with changed-range hints applied.

use std::fs::{self, File};
use std::path::Path;

use super::{ChangedRanges, Run, disk_error, open_disk};
use crate::contentmap::{Extent, MapWriter};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::ItemKind;

impl Run<'_, '_> {
    pub(super) fn disk(
        &mut self,
        path: &Path,
        format: rehydra_disk::Format,
        map: &mut MapWriter<File>,
    ) -> Result<u64> {
        let img = open_disk(path, format, self.confine.as_deref()).map_err(disk_error)?;
        let md = fs::metadata(path)
            .map_err(|e| Error::io(format!("backup source {}", path.display()), e))?;
        let mut node = self.node_of("", &md);
        node.size = img.virtual_size();
        map.node(node).map_err(|e| Error::io("content map", e))?;
        self.progress
            .message(&format!("{} ({})", path.display(), img.format()));
        let mut img = img;
        let size = img.virtual_size();
        let n = self.disk_range(img.as_mut(), 0, size, map)?;
        self.summary.files += 1;
        self.summary.bytes += n;
        Ok(n)
    }

    /// Chunk the virtual disk from `start` to `end`. Unallocated extents go straight into
    /// the map as holes, never read or scanned; chunking stays the same as reading them,
    /// since a zero run always ends a chunk.
    fn disk_range(
        &mut self,
        img: &mut dyn rehydra_disk::DiskImage,
        start: u64,
        end: u64,
        map: &mut MapWriter<File>,
    ) -> Result<u64> {
        let mut n = 0;
        for e in img.spans() {
            let (offset, len, data) = match e {
                rehydra_disk::Span::Zero { offset, len } => (offset, len, false),
                rehydra_disk::Span::Data { offset, len } => (offset, len, true),
            };
            let (a, b) = (offset.max(start), (offset + len).min(end));
            if a >= b {
                continue;
            }
            if data {
                n += self.feed(rehydra_disk::RangeReader::new(img, a, b - a), true, map)?;
            } else {
                map.extent(Extent::Zero(b - a))
                    .map_err(|e| Error::io("content map", e))?;
                self.progress.inc(b - a);
                self.hole_bytes += b - a;
                n += b - a;
            }
        }
        Ok(n)
    }

    /// A disk backed up from changed-range hints: the earlier restore point's content map
    /// is streamed in order; its extents outside the changed ranges are copied (their
    /// chunks are checked to be in the repository), and each run of extents that a range
    /// touches is read again from the image, widened to the old chunk boundaries so the new
    /// chunks line up with the old ones (a hole is only widened to 4 KiB).
    pub(super) fn disk_changed(
        &mut self,
        path: &Path,
        format: rehydra_disk::Format,
        ch: ChangedRanges,
        map: &mut MapWriter<File>,
    ) -> Result<u64> {
        let bad = |m: String| Error::new(ErrorKind::InvalidInput, m);
        let mut img = open_disk(path, format, self.confine.as_deref()).map_err(disk_error)?;
        let size = img.virtual_size();
        let snap = self.repo.load_restore_point(&ch.since)?;
        let item = snap
            .items
            .iter()
            .find(|i| i.name == ch.item && i.kind == ItemKind::Disk)
            .ok_or_else(|| {
                bad(format!(
                    "restore point {} has no disk item `{}`: changed-range hints need the restore point the tracker counted from; back up without hints",
                    ch.since.short(),
                    ch.item
                ))
            })?
            .clone();
        if item.size != size {
            return Err(bad(format!(
                "{} is {size} bytes but was {} in restore point {}: the disk was resized, so changed-range hints do not apply; back up without hints",
                path.display(),
                item.size,
                ch.since.short()
            )));
        }
        // sorted, merged, clipped
        let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(ch.ranges.len());
        let mut sorted = ch.ranges.clone();
        sorted.sort_unstable();
        for (o, l) in sorted {
            if l == 0 {
                continue;
            }
            if o >= size {
                return Err(bad(format!(
                    "changed range {o}+{l} starts beyond the end of {} ({size} bytes)",
                    path.display()
                )));
            }
            let e = o.saturating_add(l).min(size);
            match ranges.last_mut() {
                Some((_, pe)) if o <= *pe => *pe = (*pe).max(e),
                _ => ranges.push((o, e)),
            }
        }
        let md = fs::metadata(path)
            .map_err(|e| Error::io(format!("backup source {}", path.display()), e))?;
        let mut node = self.node_of("", &md);
        node.size = size;
        map.node(node).map_err(|e| Error::io("content map", e))?;
        self.progress.message(&format!(
            "{} ({}, {} changed range(s))",
            path.display(),
            img.format(),
            ranges.len()
        ));
        const ALIGN: u64 = 4096;
        let touches = |a: u64, b: u64, ri: &mut usize| -> bool {
            while *ri < ranges.len() && ranges[*ri].1 <= a {
                *ri += 1;
            }
            *ri < ranges.len() && ranges[*ri].0 < b
        };
        let (mut pos, mut ri, mut n) = (0u64, 0usize, 0u64);
        let mut dirty: Option<(u64, u64)> = None;
        let (repo, index) = (self.repo, self.index);
        for ev in crate::contentmap::read_map(repo, index, &item) {
            let crate::contentmap::MapEvent::Extents(exts) = ev? else {
                continue;
            };
            for e in exts {
                let (a, b) = (pos, pos + e.len());
                pos = b;
                if let Extent::Zero(_) = e {
                    // a hole: only the changed parts (to 4 KiB) are read, the rest stays a hole
                    let mut at = a;
                    while touches(at, b, &mut ri) {
                        let (rs, re) = ranges[ri];
                        let ds = (rs.max(at) / ALIGN * ALIGN).max(at);
                        let de = re.div_ceil(ALIGN).saturating_mul(ALIGN).min(b);
                        if ds > at {
                            n += self.flush_dirty(img.as_mut(), &mut dirty, map)?;
                            self.copy_extent(Extent::Zero(ds - at), map)?;
                            n += ds - at;
                        }
                        dirty = Some(dirty.map_or((ds, de), |(s, _)| (s, de)));
                        at = de;
                        if re > de || at >= b {
                            break;
                        }
                    }
                    if at < b {
                        n += self.flush_dirty(img.as_mut(), &mut dirty, map)?;
                        self.copy_extent(Extent::Zero(b - at), map)?;
                        n += b - at;
                    }
                } else if touches(a, b, &mut ri) {
                    dirty = Some(dirty.map_or((a, b), |(s, _)| (s, b)));
                } else {
                    n += self.flush_dirty(img.as_mut(), &mut dirty, map)?;
                    if let Extent::Data(id, _) = &e
                        && !index.contains(id)?
                    {
                        return Err(Error::new(
                            ErrorKind::Missing,
                            format!(
                                "restore point {} uses chunk {} that the repository no longer has; back up without hints (and run check)",
                                ch.since.short(),
                                id.short()
                            ),
                        ));
                    }
                    self.copy_extent(e, map)?;
                    n += b - a;
                }
            }
        }
        n += self.flush_dirty(img.as_mut(), &mut dirty, map)?;
        if pos != size {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "the content map of `{}` in restore point {} covers {pos} bytes, not {size}",
                    ch.item,
                    ch.since.short()
                ),
            ));
        }
        self.summary.files += 1;
        self.summary.bytes += n;
        Ok(n)
    }

    fn flush_dirty(
        &mut self,
        img: &mut dyn rehydra_disk::DiskImage,
        dirty: &mut Option<(u64, u64)>,
        map: &mut MapWriter<File>,
    ) -> Result<u64> {
        match dirty.take() {
            Some((a, b)) => self.disk_range(img, a, b, map),
            None => Ok(0),
        }
    }

    /// An extent taken unchanged from an earlier restore point.
    pub(super) fn copy_extent(&mut self, e: Extent, map: &mut MapWriter<File>) -> Result<()> {
        let len = e.len();
        if let Extent::Zero(_) = e {
            self.hole_bytes += len;
        }
        self.progress.inc(len);
        map.extent(e).map_err(|e| Error::io("content map", e))
    }
}
