//! VHD (Virtual PC / Hyper-V gen 1 format): fixed and dynamic disks.
//!
//! Layout: a 512-byte footer at the end of the file (a copy at offset 0 for dynamic
//! disks); dynamic disks add a 1024-byte "cxsparse" header and a block allocation table of
//! big-endian sector offsets, each block being a sector bitmap followed by the data.
//! Footer and header checksums are verified; every offset is checked against the file.
//! Differencing VHDs keep their sector bitmaps (bit 7 of each byte is the first sector)
//! and parent locators (`W2ru` relative, `W2ku` absolute, `MacX` URL); [`crate::chain`]
//! reads them with their parents.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::blockmap::{Bitmaps, BlockMap, Slot, read_bounded};
use crate::bytes::{be32, be64};
use crate::chain::{Layer, ParentRef};
use crate::vhdx::Source;
use crate::{DiskError, DiskImage, Result, Span};

/// One's complement of the byte sum, with the checksum field (4 bytes at `at`) as zero.
fn checksum(b: &[u8], at: usize) -> u32 {
    let sum: u32 = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !(at..at + 4).contains(i))
        .fold(0u32, |s, (_, &x)| s.wrapping_add(u32::from(x)));
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
    /// Where each block's data is (a fixed disk is one block at offset 0).
    map: BlockMap,
    unique_id: [u8; 16],
    timestamp: u32,
    parent: Option<ParentRef>,
}

impl Vhd<File> {
    /// Open and validate a VHD file.
    ///
    /// # Errors
    /// [`DiskError::Malformed`] for a damaged or hostile file.
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
            return Err(bad(format!(
                "truncated: {len} bytes, smaller than a VHD footer"
            )));
        }
        let footer = read(len - 512, 512)?;
        if &footer[..8] != b"conectix" {
            return Err(bad(
                "not a VHD file (the footer cookie `conectix` is missing)".into(),
            ));
        }
        if be32(&footer, 64) != checksum(&footer, 64) {
            return Err(bad(
                "the VHD footer checksum is wrong (damaged footer)".into()
            ));
        }
        let current_size = be64(&footer, 48);
        // Virtual PC and qemu's own images size the disk by CHS geometry; Hyper-V and
        // others by current_size. For images qemu-img creates both agree.
        let chs = u64::from(be32(&footer, 56) >> 16)
            * u64::from(footer[58])
            * u64::from(footer[59])
            * 512;
        let size = match &footer[28..32] {
            b"vpc " | b"qemu" if chs != 0 && chs <= current_size => chs,
            _ => current_size,
        };
        if size == 0 || size > 2040 << 30 || size % 512 != 0 {
            return Err(bad(format!(
                "virtual size {size} is invalid (a VHD holds at most 2040 GiB, in whole sectors)"
            )));
        }
        let disk_type = be32(&footer, 60);
        let mut unique_id = [0u8; 16];
        unique_id.copy_from_slice(&footer[68..84]);
        let timestamp = be32(&footer, 24);
        let (map, parent) = match disk_type {
            FIXED => {
                if len - 512 < size {
                    return Err(bad(format!(
                        "truncated: a fixed VHD of {size} bytes needs {} bytes before its footer, the file has {}",
                        size,
                        len - 512
                    )));
                }
                let map = BlockMap::new(path, size, size, vec![Slot::Full(0)], None)?;
                (map, None)
            }
            DYNAMIC | DIFFERENCING => {
                let differencing = disk_type == DIFFERENCING;
                let hdr_off = be64(&footer, 16);
                let h = read(hdr_off, 1024)?;
                if &h[..8] != b"cxsparse" {
                    return Err(bad("dynamic header cookie `cxsparse` is missing".into()));
                }
                if be32(&h, 36) != checksum(&h, 36) {
                    return Err(bad(
                        "the dynamic header checksum is wrong (damaged header)".into()
                    ));
                }
                let bat_off = be64(&h, 16);
                let entries = u64::from(be32(&h, 28));
                let block = u64::from(be32(&h, 32));
                if !block.is_power_of_two() || !(512..=256 << 20).contains(&block) {
                    return Err(bad(format!("block size {block} is invalid")));
                }
                let needed = size.div_ceil(block);
                if entries < needed {
                    return Err(bad(format!(
                        "the BAT has {entries} entries, {needed} are needed for the virtual size"
                    )));
                }
                let bat = read(bat_off, needed * 4)?;
                let bitmap = (block / 512).div_ceil(8).div_ceil(512) * 512;
                let mut blocks = Vec::with_capacity(needed as usize);
                for i in 0..needed {
                    let e = be32(&bat, (i * 4) as usize);
                    if e == u32::MAX {
                        blocks.push(Slot::Absent);
                        continue;
                    }
                    let data = u64::from(e) * 512 + bitmap;
                    let want = block.min(size - i * block);
                    if data.checked_add(want).is_none_or(|end| end > len - 512)
                        || u64::from(e) * 512 < 512
                    {
                        return Err(bad(format!(
                            "BAT entry for block {i} points outside the file"
                        )));
                    }
                    // dynamic disks: allocated blocks are read whole; differencing disks
                    // take the sectors whose bitmap bit is clear from the parent
                    blocks.push(if differencing {
                        Slot::Partial {
                            data,
                            bitmap: u64::from(e) * 512,
                        }
                    } else {
                        Slot::Full(data)
                    });
                }
                let bitmaps = differencing.then_some(Bitmaps {
                    sector: 512,
                    msb_first: true,
                });
                let map = BlockMap::new(path, block, size, blocks, bitmaps)?;
                let parent = if differencing {
                    Some(parent_locators(&src, path, &h)?)
                } else {
                    None
                };
                (map, parent)
            }
            t => {
                return Err(bad(format!(
                    "disk type {t} is invalid (2 fixed, 3 dynamic, 4 differencing)"
                )));
            }
        };
        Ok(Self {
            src,
            path: path.to_path_buf(),
            size,
            map,
            unique_id,
            timestamp,
            parent,
        })
    }
}

impl<S: Source> Vhd<S> {
    /// The footer's unique id (what a child's parent id names) and time stamp.
    pub fn identity_and_timestamp(&self) -> ([u8; 16], u32) {
        (self.unique_id, self.timestamp)
    }
}

impl<S: Source> DiskImage for Vhd<S> {
    fn format(&self) -> &'static str {
        "vhd"
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn spans(&self) -> Vec<Span> {
        self.map.spans()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.map.read_at(&self.src, &self.path, offset, buf)
    }
}

impl<S: Source + 'static> Layer for Vhd<S> {
    fn parts(&mut self) -> (&mut BlockMap, &dyn Source, &Path) {
        (&mut self.map, &self.src, &self.path)
    }
    fn map_ref(&self) -> &BlockMap {
        &self.map
    }
    fn identity(&self) -> [u8; 16] {
        self.unique_id
    }
    fn parent(&self) -> Option<&ParentRef> {
        self.parent.as_ref()
    }
}

/// The parent of a differencing VHD: unique id from the dynamic header `h`, paths from
/// its locator entries (relative first).
fn parent_locators<S: Source>(src: &S, path: &Path, h: &[u8]) -> Result<ParentRef> {
    let mut linkage = [0u8; 16];
    linkage.copy_from_slice(&h[40..56]);
    let mut rel = Vec::new();
    let mut abs = Vec::new();
    for i in 0..8 {
        let e = &h[576 + i * 24..600 + i * 24];
        let (code, len, off) = (&e[..4], be32(e, 8) as u64, be64(e, 16));
        if code == [0u8; 4] || len == 0 {
            continue;
        }
        if len > 64 * 1024 {
            return Err(DiskError::malformed(
                path,
                format!("parent locator {i} claims {len} bytes"),
            ));
        }
        let data = read_bounded(src, path, off, len)?;
        let utf16 = || {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).map_err(|_| {
                DiskError::malformed(path, format!("parent locator {i} is not UTF-16"))
            })
        };
        match code {
            b"W2ru" => rel.push(utf16()?),
            b"W2ku" => abs.push(utf16()?),
            b"MacX" => abs.push(
                String::from_utf8_lossy(&data)
                    .trim_start_matches("file://")
                    .to_string(),
            ),
            _ => {}
        }
    }
    let paths: Vec<String> = rel
        .into_iter()
        .chain(abs)
        .map(|p| p.trim_end_matches('\0').to_string())
        .collect();
    if paths.is_empty() {
        return Err(DiskError::malformed(
            path,
            "a differencing VHD without a usable parent locator (W2ru, W2ku or MacX)",
        ));
    }
    Ok(ParentRef {
        paths,
        linkage: vec![linkage],
    })
}
