//! What the block-table formats (VHDX, dynamic VHD) have in common: a virtual disk cut in
//! fixed-size blocks, each stored at a file offset, reading as zeros, or — in a
//! differencing disk — taken from the parent, whole or sector by sector (sector bitmap).

use std::path::Path;

use crate::vhdx::Source;
use crate::{DiskError, Result, Span};

/// Read exactly `n` bytes at `off` of `src`, refusing ranges past its end.
pub(crate) fn read_bounded<S: Source + ?Sized>(
    src: &S,
    path: &Path,
    off: u64,
    n: u64,
) -> Result<Vec<u8>> {
    let len = src.len();
    if off.checked_add(n).is_none_or(|end| end > len) {
        return Err(DiskError::malformed(
            path,
            format!("truncated: needs {n} bytes at offset {off}, the file has {len}"),
        ));
    }
    let mut b = vec![0u8; n as usize];
    src.read_at(&mut b, off)
        .map_err(|e| DiskError::io(path, e))?;
    Ok(b)
}

/// The error of a read that goes past the end of the virtual disk.
fn past_end(path: &Path, offset: u64) -> DiskError {
    DiskError::malformed(
        path,
        format!("read past the end of the virtual disk (offset {offset})"),
    )
}

/// Refuse a read of `len` bytes at `offset` that does not end within a virtual disk of
/// `size` bytes.
pub(crate) fn check_read(path: &Path, size: u64, offset: u64, len: usize) -> Result<()> {
    if offset.checked_add(len as u64).is_none_or(|end| end > size) {
        return Err(past_end(path, offset));
    }
    Ok(())
}

/// One block of a block-table image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Not stored: zeros in a base disk, the parent's data in a differencing disk.
    Absent,
    /// Explicitly zero (also in a differencing disk).
    Zero,
    /// Stored whole at this file offset.
    Full(u64),
    /// Stored at `data`; only the sectors whose bit is set in the bitmap at file offset
    /// `bitmap` are this layer's, the others come from the parent.
    Partial {
        /// File offset of the block's data.
        data: u64,
        /// File offset of the block's sector bitmap.
        bitmap: u64,
    },
}

/// Where a run of the virtual disk comes from, as one layer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    /// This file, at this offset.
    Data(u64),
    /// Zeros.
    Zero,
    /// The parent disk, same virtual offset.
    Parent,
}

/// How a differencing layer's sector bitmaps are laid out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bitmaps {
    /// Bytes covered by one bit.
    pub(crate) sector: u64,
    /// Bit 7 of each byte is the first sector (VHD); otherwise bit 0 (VHDX).
    pub(crate) msb_first: bool,
}

/// Per block, where its data is.
pub(crate) struct BlockMap {
    pub(crate) block_size: u64,
    pub(crate) virtual_size: u64,
    pub(crate) blocks: Vec<Slot>,
    /// `Some` for a differencing disk.
    pub(crate) bitmaps: Option<Bitmaps>,
    /// The last sector bitmap read (block index, bytes).
    cache: Option<(usize, Vec<u8>)>,
}

impl BlockMap {
    /// A map, refused when two stored blocks overlap in the file.
    pub(crate) fn new(
        path: &Path,
        block_size: u64,
        virtual_size: u64,
        blocks: Vec<Slot>,
        bitmaps: Option<Bitmaps>,
    ) -> Result<Self> {
        let mut used: Vec<u64> = blocks
            .iter()
            .filter_map(|s| match s {
                Slot::Full(d) | Slot::Partial { data: d, .. } => Some(*d),
                _ => None,
            })
            .collect();
        used.sort_unstable();
        if used.windows(2).any(|w| w[1] < w[0] + block_size) {
            return Err(DiskError::malformed(
                path,
                "two BAT entries point at overlapping data",
            ));
        }
        if bitmaps.is_none() && blocks.iter().any(|s| matches!(s, Slot::Partial { .. })) {
            return Err(DiskError::malformed(
                path,
                "a block is partially present, which only differencing disks may use",
            ));
        }
        Ok(Self {
            block_size,
            virtual_size,
            blocks,
            bitmaps,
            cache: None,
        })
    }

    /// Stored blocks.
    pub(crate) fn allocated(&self) -> u64 {
        self.blocks
            .iter()
            .filter(|s| matches!(s, Slot::Full(_) | Slot::Partial { .. }))
            .count() as u64
    }

    /// Adjacent blocks of the same kind merged into spans (a single, non-differencing
    /// image; chains combine layers in [`crate::chain`]).
    pub(crate) fn spans(&self) -> Vec<Span> {
        let mut out: Vec<Span> = Vec::new();
        for (i, s) in self.blocks.iter().enumerate() {
            let offset = i as u64 * self.block_size;
            push_span(
                &mut out,
                offset,
                self.block_size.min(self.virtual_size - offset),
                matches!(s, Slot::Full(_) | Slot::Partial { .. }),
            );
        }
        out
    }

    /// Where the run starting at virtual `offset` comes from and how long it is (at most
    /// `max` bytes, never past the block).
    pub(crate) fn resolve<S: Source + ?Sized>(
        &mut self,
        src: &S,
        path: &Path,
        offset: u64,
        max: u64,
    ) -> Result<(Run, u64)> {
        let bs = self.block_size;
        let b = (offset / bs) as usize;
        let within = offset % bs;
        let n = (bs - within)
            .min(max)
            .min(self.virtual_size.saturating_sub(offset));
        let absent = if self.bitmaps.is_some() {
            Run::Parent
        } else {
            Run::Zero
        };
        Ok(match self.blocks.get(b).copied() {
            None => return Err(past_end(path, offset)),
            Some(Slot::Absent) => (absent, n),
            Some(Slot::Zero) => (Run::Zero, n),
            Some(Slot::Full(d)) => (Run::Data(d + within), n),
            Some(Slot::Partial { data, bitmap }) => {
                let Some(bm) = self.bitmaps else {
                    return Err(DiskError::malformed(path, "partial block in a base disk"));
                };
                if self.cache.as_ref().is_none_or(|(i, _)| *i != b) {
                    let bytes = read_bounded(src, path, bitmap, (bs / bm.sector).div_ceil(8))?;
                    self.cache = Some((b, bytes));
                }
                let bits = self
                    .cache
                    .as_ref()
                    .map(|(_, v)| v.as_slice())
                    .unwrap_or_default();
                let bit = |sector: u64| {
                    let byte = bits[(sector / 8) as usize];
                    let k = sector % 8;
                    if bm.msb_first {
                        byte >> (7 - k) & 1 == 1
                    } else {
                        byte >> k & 1 == 1
                    }
                };
                let first = within / bm.sector;
                let here = bit(first);
                let mut end = (first + 1) * bm.sector;
                while end < within + n && bit(end / bm.sector) == here {
                    end += bm.sector;
                }
                let len = (end - within).min(n);
                (
                    if here {
                        Run::Data(data + within)
                    } else {
                        Run::Parent
                    },
                    len,
                )
            }
        })
    }

    /// Read at a virtual offset of a single image: stored data from `src`, the rest as
    /// zeros (a differencing disk must be read through its chain).
    pub(crate) fn read_at<S: Source + ?Sized>(
        &mut self,
        src: &S,
        path: &Path,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        check_read(path, self.virtual_size, offset, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (run, n) = self.resolve(src, path, pos, (buf.len() - done) as u64)?;
            let n = n as usize;
            match run {
                Run::Data(d) => src
                    .read_at(&mut buf[done..done + n], d)
                    .map_err(|e| DiskError::io(path, e))?,
                Run::Zero | Run::Parent => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }
}

/// Append a run to spans, merging with the previous one of the same kind.
pub fn push_span(out: &mut Vec<Span>, offset: u64, len: u64, data: bool) {
    match (data, out.last_mut()) {
        (true, Some(Span::Data { len: l, .. })) | (false, Some(Span::Zero { len: l, .. })) => {
            *l += len
        }
        (true, _) => out.push(Span::Data { offset, len }),
        (false, _) => out.push(Span::Zero { offset, len }),
    }
}
