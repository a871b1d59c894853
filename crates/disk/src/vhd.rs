//! VHD (Virtual PC / Hyper-V gen 1 format): fixed and dynamic disks.
//!
//! Layout: a 512-byte footer at the end of the file (a copy at offset 0 for dynamic
//! disks); dynamic disks add a 1024-byte "cxsparse" header and a block allocation table of
//! big-endian sector offsets, each block being a sector bitmap followed by the data.
//! Footer and header checksums are verified; every offset is checked against the file.
//! Differencing VHDs are refused with a clear error (not implemented yet).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::blockmap::{BlockMap, read_bounded};
use crate::vhdx::Source;
use crate::{DiskError, DiskImage, Extent, Result};

fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn be64(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_be_bytes(a)
}

/// One's complement of the byte sum, with the checksum field (4 bytes at `at`) as zero.
fn checksum(b: &[u8], at: usize) -> u32 {
    let sum: u32 = b.iter().enumerate().filter(|(i, _)| !(at..at + 4).contains(i)).fold(0u32, |s, (_, &x)| s.wrapping_add(u32::from(x)));
    !sum
}

const FIXED: u32 = 2;
const DYNAMIC: u32 = 3;
const DIFFERENCING: u32 = 4;

/// An open VHD.
pub struct Vhd<S: Source = File> {
    src: S,
    path: PathBuf,
    size: u64,
    /// Dynamic disks: where each block's data is (`None` for fixed disks).
    map: Option<BlockMap>,
}

impl Vhd<File> {
    /// Open and validate a VHD file.
    ///
    /// # Errors
    /// [`DiskError::Malformed`] for a damaged or hostile file; [`DiskError::Unsupported`]
    /// for a differencing disk.
    pub fn open(path: &Path) -> Result<Self> {
        let f = File::open(path).map_err(|e| DiskError::io(path, e))?;
        Self::from_source(f, path)
    }
}

impl<S: Source> Vhd<S> {
    /// Parse and validate from any source; `path` names it in errors.
    ///
    /// # Errors
    /// As [`Vhd::open`].
    pub fn from_source(src: S, path: &Path) -> Result<Self> {
        let bad = |what: String| DiskError::malformed(path, what);
        let len = src.len();
        let read = |off: u64, n: u64| read_bounded(&src, path, off, n);
        if len < 512 {
            return Err(bad(format!("truncated: {len} bytes, smaller than a VHD footer")));
        }
        let footer = read(len - 512, 512)?;
        if &footer[..8] != b"conectix" {
            return Err(bad("not a VHD file (the footer cookie `conectix` is missing)".into()));
        }
        if be32(&footer, 64) != checksum(&footer, 64) {
            return Err(bad("the VHD footer checksum is wrong (damaged footer)".into()));
        }
        let current_size = be64(&footer, 48);
        // Virtual PC and qemu's own images size the disk by CHS geometry; Hyper-V and
        // others by current_size. For images qemu-img creates both agree.
        let chs = u64::from(be32(&footer, 56) >> 16) * u64::from(footer[58]) * u64::from(footer[59]) * 512;
        let size = match &footer[28..32] {
            b"vpc " | b"qemu" if chs != 0 && chs <= current_size => chs,
            _ => current_size,
        };
        if size == 0 || size > 2040 << 30 || size % 512 != 0 {
            return Err(bad(format!("virtual size {size} is invalid (a VHD holds at most 2040 GiB, in whole sectors)")));
        }
        let disk_type = be32(&footer, 60);
        match disk_type {
            FIXED => {
                if len - 512 < size {
                    return Err(bad(format!("truncated: a fixed VHD of {size} bytes needs {} bytes before its footer, the file has {}", size, len - 512)));
                }
                Ok(Self { src, path: path.to_path_buf(), size, map: None })
            }
            DIFFERENCING => Err(DiskError::unsupported(path, "differencing VHD chains are not read by this build yet: merge the chain first (Hyper-V Edit Disk, or `qemu-img convert`)")),
            DYNAMIC => {
                let hdr_off = be64(&footer, 16);
                let h = read(hdr_off, 1024)?;
                if &h[..8] != b"cxsparse" {
                    return Err(bad("dynamic header cookie `cxsparse` is missing".into()));
                }
                if be32(&h, 36) != checksum(&h, 36) {
                    return Err(bad("the dynamic header checksum is wrong (damaged header)".into()));
                }
                let bat_off = be64(&h, 16);
                let entries = u64::from(be32(&h, 28));
                let block = u64::from(be32(&h, 32));
                if !block.is_power_of_two() || !(512..=256 << 20).contains(&block) {
                    return Err(bad(format!("block size {block} is invalid")));
                }
                let needed = size.div_ceil(block);
                if entries < needed {
                    return Err(bad(format!("the BAT has {entries} entries, {needed} are needed for the virtual size")));
                }
                let bat = read(bat_off, needed * 4)?;
                let bitmap = (block / 512).div_ceil(8).div_ceil(512) * 512;
                let mut blocks = Vec::with_capacity(needed as usize);
                for i in 0..needed {
                    let e = be32(&bat, (i * 4) as usize);
                    if e == u32::MAX {
                        blocks.push(None);
                        continue;
                    }
                    let data = u64::from(e) * 512 + bitmap;
                    let want = block.min(size - i * block);
                    if data.checked_add(want).is_none_or(|end| end > len - 512) {
                        return Err(bad(format!("BAT entry for block {i} points outside the file")));
                    }
                    blocks.push(Some(data));
                }
                // dynamic disks: allocated blocks are read whole (their sector bitmap only
                // matters for differencing disks); unallocated blocks read as zeros
                let map = BlockMap::new(path, block, size, blocks)?;
                Ok(Self { src, path: path.to_path_buf(), size, map: Some(map) })
            }
            t => Err(bad(format!("disk type {t} is invalid (2 fixed, 3 dynamic, 4 differencing)"))),
        }
    }
}

impl<S: Source> DiskImage for Vhd<S> {
    fn format(&self) -> &'static str {
        "vhd"
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn extents(&self) -> Vec<Extent> {
        match &self.map {
            Some(m) => m.extents(),
            None => vec![Extent::Data { offset: 0, len: self.size }],
        }
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        match &self.map {
            Some(m) => m.read_at(&self.src, &self.path, offset, buf),
            None => {
                if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.size) {
                    return Err(DiskError::malformed(&self.path, format!("read past the end of the virtual disk (offset {offset})")));
                }
                self.src.read_at(buf, offset).map_err(|e| DiskError::io(&self.path, e))
            }
        }
    }
}
