//! What the block-table formats (VHDX, dynamic VHD) have in common: a virtual disk cut in
//! fixed-size blocks, each either stored at a file offset or reading as zeros.

use std::path::Path;

use crate::vhdx::Source;
use crate::{DiskError, Extent, Result};

/// Read exactly `n` bytes at `off` of `src`, refusing ranges past its end.
pub(crate) fn read_bounded<S: Source>(src: &S, path: &Path, off: u64, n: u64) -> Result<Vec<u8>> {
    let len = src.len();
    if off.checked_add(n).is_none_or(|end| end > len) {
        return Err(DiskError::malformed(path, format!("truncated: needs {n} bytes at offset {off}, the file has {len}")));
    }
    let mut b = vec![0u8; n as usize];
    src.read_at(&mut b, off).map_err(|e| DiskError::io(path, e))?;
    Ok(b)
}

/// Per block, the file offset of its data (`None`: reads as zeros).
pub(crate) struct BlockMap {
    pub(crate) block_size: u64,
    pub(crate) virtual_size: u64,
    pub(crate) blocks: Vec<Option<u64>>,
}

impl BlockMap {
    /// A map, refused when two stored blocks overlap in the file.
    pub(crate) fn new(path: &Path, block_size: u64, virtual_size: u64, blocks: Vec<Option<u64>>) -> Result<Self> {
        let mut used: Vec<u64> = blocks.iter().flatten().copied().collect();
        used.sort_unstable();
        if used.windows(2).any(|w| w[1] < w[0] + block_size) {
            return Err(DiskError::malformed(path, "two BAT entries point at overlapping data"));
        }
        Ok(Self { block_size, virtual_size, blocks })
    }

    /// Stored blocks.
    pub(crate) fn allocated(&self) -> u64 {
        self.blocks.iter().flatten().count() as u64
    }

    /// Adjacent blocks of the same kind merged into extents.
    pub(crate) fn extents(&self) -> Vec<Extent> {
        let bs = self.block_size;
        let mut out: Vec<Extent> = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            let offset = i as u64 * bs;
            let len = bs.min(self.virtual_size - offset);
            match (b, out.last_mut()) {
                (Some(_), Some(Extent::Data { len: l, .. })) | (None, Some(Extent::Zero { len: l, .. })) => *l += len,
                (Some(_), _) => out.push(Extent::Data { offset, len }),
                (None, _) => out.push(Extent::Zero { offset, len }),
            }
        }
        out
    }

    /// Read at a virtual offset: stored blocks from `src`, the others as zeros.
    pub(crate) fn read_at<S: Source>(&self, src: &S, path: &Path, offset: u64, buf: &mut [u8]) -> Result<()> {
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.virtual_size) {
            return Err(DiskError::malformed(path, format!("read past the end of the virtual disk (offset {offset})")));
        }
        let bs = self.block_size;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let within = pos % bs;
            let n = ((bs - within) as usize).min(buf.len() - done);
            match self.blocks[(pos / bs) as usize] {
                Some(data) => src.read_at(&mut buf[done..done + n], data + within).map_err(|e| DiskError::io(path, e))?,
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }
}
