//! VHDX per MS-VHDX: file identifier, the two headers (CRC-32C, sequence numbers), the
//! region table, the metadata region (block size, sector sizes, virtual size) and the
//! block allocation table (BAT).
//!
//! Every structure is validated before use; a damaged or hostile file gives an error
//! naming the problem, never a panic or a wrong read. A disk that was not closed cleanly
//! (non-empty log) has its log replayed in memory (see [`crate::vhdx_log`]); the file is
//! never written. Differencing disks (AVHDX) expose their sector bitmaps and parent
//! locator; [`crate::chain`] reads them together with their parents.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::blockmap::{Bitmaps, BlockMap, Slot, read_bounded};
use crate::bytes::{le16, le32, le64};
use crate::chain::{Layer, ParentRef};
use crate::vhdx_log::Replayed;
use crate::{DiskError, DiskImage, Result, Span};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const HEADER_SECTION: u64 = MIB;

/// Where bytes come from: a file, or memory (for tests and fuzzing).
pub trait Source: Send {
    /// Total length.
    fn len(&self) -> u64;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Read exactly `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    /// Short read or I/O failure.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl Source for File {
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        crate::read_exact_at(self, buf, offset)
    }
}

impl<T: Source + ?Sized> Source for Box<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        (**self).read_at(buf, offset)
    }
}

impl Source for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        let end = start
            .checked_add(buf.len())
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        let src = self
            .get(start..end)
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

use guids::*;

/// GUIDs of regions and metadata items (shared with the writer), as MS-VHDX writes them.
pub(crate) mod guids {
    /// A GUID constant in its on-disk byte order.
    const fn guid(s: &str) -> [u8; 16] {
        match crate::chain::guid_bytes(s.as_bytes()) {
            Some(g) => g,
            None => panic!("not a GUID"),
        }
    }
    pub(crate) const BAT_REGION: [u8; 16] = guid("2DC27766-F623-4200-9D64-115E9BFD4A08");
    pub(crate) const METADATA_REGION: [u8; 16] = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E");
    pub(crate) const FILE_PARAMETERS: [u8; 16] = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B");
    pub(crate) const VIRTUAL_DISK_SIZE: [u8; 16] = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8");
    pub(crate) const VIRTUAL_DISK_ID: [u8; 16] = guid("BECA12AB-B2E6-4523-93EF-C309E000C746");
    pub(crate) const LOGICAL_SECTOR_SIZE: [u8; 16] = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F");
    pub(crate) const PHYSICAL_SECTOR_SIZE: [u8; 16] = guid("CDA348C7-445D-4471-9CC9-E9885251C556");
    pub(crate) const PARENT_LOCATOR: [u8; 16] = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C");
    /// Locator type of a VHDX parent locator.
    pub(crate) const PARENT_LOCATOR_TYPE: [u8; 16] = guid("B04AEFB7-D19E-4A81-B789-25B8E9445913");
}

/// Payload block states (BAT entry bits 0-2).
const NOT_PRESENT: u64 = 0;
const UNDEFINED: u64 = 1;
const ZERO: u64 = 2;
const UNMAPPED: u64 = 3;
const FULLY_PRESENT: u64 = 6;
const PARTIALLY_PRESENT: u64 = 7;
/// Sector bitmap block state: present.
const SB_BLOCK_PRESENT: u64 = 6;

/// CRC-32C of `data` with the 4-byte checksum field at `at` taken as zero.
pub(crate) fn crc_with_hole(data: &[u8], at: usize) -> u32 {
    let c = crc32c::crc32c(&data[..at]);
    let c = crc32c::crc32c_append(c, &[0u8; 4]);
    crc32c::crc32c_append(c, &data[at + 4..])
}

/// A region table entry: GUID, file offset, length, required.
type Region = ([u8; 16], u64, u32, bool);

/// The facts parsed from a VHDX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhdxInfo {
    /// Virtual disk size.
    pub virtual_size: u64,
    /// Payload block size.
    pub block_size: u32,
    /// Logical sector size (512 or 4096).
    pub logical_sector_size: u32,
    /// Physical sector size (512 or 4096).
    pub physical_sector_size: u32,
    /// Sequence number of the header in use.
    pub header_sequence: u64,
    /// Payload blocks stored in the file.
    pub allocated_blocks: u64,
    /// A differencing disk (AVHDX).
    pub differencing: bool,
    /// Log entries replayed in memory when opening (0: the disk was closed cleanly).
    pub replayed_log_entries: usize,
    /// The header's DataWriteGuid (what a child's `parent_linkage` names).
    pub data_write_guid: [u8; 16],
}

/// An open VHDX.
pub struct Vhdx<S: Source = File> {
    src: Replayed<S>,
    path: PathBuf,
    info: VhdxInfo,
    map: BlockMap,
    parent: Option<ParentRef>,
}

impl Vhdx<File> {
    /// Open and validate a VHDX file.
    ///
    /// # Errors
    /// [`DiskError::Malformed`] for a damaged or hostile file (including a log that
    /// cannot be replayed), [`DiskError::Unsupported`] for features this build lacks.
    pub fn open(path: &Path) -> Result<Self> {
        let f = File::open(path).map_err(|e| DiskError::io(path, e))?;
        Self::from_source(f, path)
    }
}

impl<S: Source> Vhdx<S> {
    /// Parse and validate from any source; `path` names it in errors.
    ///
    /// # Errors
    /// As [`Vhdx::open`].
    pub fn from_source(src: S, path: &Path) -> Result<Self> {
        let bad = |what: String| DiskError::malformed(path, what);
        let len = src.len();
        let read = |off: u64, n: u64| read_bounded(&src, path, off, n);
        if len < HEADER_SECTION {
            return Err(bad(format!(
                "truncated: {len} bytes, smaller than the 1 MiB VHDX header section"
            )));
        }
        let head = read(0, HEADER_SECTION)?;
        if &head[..8] != b"vhdxfile" {
            return Err(bad(
                "not a VHDX file (the file identifier signature `vhdxfile` is missing)".into(),
            ));
        }

        // headers: the valid one with the highest sequence number wins
        let mut best: Option<(u64, &[u8])> = None;
        for off in [64 * KIB, 128 * KIB] {
            let h = &head[off as usize..(off + 4 * KIB) as usize];
            if &h[..4] == b"head" && le32(h, 4) == crc_with_hole(h, 4) {
                let seq = le64(h, 8);
                if best.is_none_or(|(s, _)| seq > s) {
                    best = Some((seq, h));
                }
            }
        }
        let Some((header_sequence, h)) = best else {
            return Err(bad(
                "both VHDX headers are damaged (bad signature or CRC-32C)".into(),
            ));
        };
        let version = le16(h, 66);
        if version != 1 {
            return Err(DiskError::unsupported(
                path,
                format!("VHDX header version {version} is not supported (only version 1)"),
            ));
        }
        let mut data_write_guid = [0u8; 16];
        data_write_guid.copy_from_slice(&h[32..48]);
        let (log_guid, log_len, log_off) = (&h[48..64], le32(h, 68), le64(h, 72));
        let src = if log_guid.iter().any(|&b| b != 0) {
            Replayed::replay(src, path, log_guid, log_off, u64::from(log_len))?
        } else {
            Replayed::clean(src)
        };
        let len = src.len();
        let head = read_bounded(&src, path, 0, HEADER_SECTION)?;
        let read = |off: u64, n: u64| read_bounded(&src, path, off, n);
        // region table (two copies; the first valid one is used)
        let mut regions: Option<Vec<Region>> = None;
        for off in [192 * KIB, 256 * KIB] {
            let r = &head[off as usize..(off + 64 * KIB) as usize];
            if &r[..4] != b"regi" || le32(r, 4) != crc_with_hole(r, 4) {
                continue;
            }
            let count = le32(r, 8) as usize;
            if count > 2047 {
                return Err(bad(format!(
                    "region table claims {count} entries (at most 2047)"
                )));
            }
            let mut v = Vec::with_capacity(count);
            for i in 0..count {
                let e = &r[16 + i * 32..48 + i * 32];
                let mut g = [0u8; 16];
                g.copy_from_slice(&e[..16]);
                v.push((g, le64(e, 16), le32(e, 24), le32(e, 28) & 1 == 1));
            }
            regions = Some(v);
            break;
        }
        let regions = regions.ok_or_else(|| {
            bad("both region tables are damaged (bad signature or CRC-32C)".into())
        })?;
        let mut bat = None;
        let mut meta = None;
        for (g, off, rlen, required) in &regions {
            if *off < HEADER_SECTION
                || off % MIB != 0
                || *rlen == 0
                || u64::from(*rlen) % MIB != 0
                || off.checked_add(u64::from(*rlen)).is_none_or(|e| e > len)
            {
                return Err(bad(format!(
                    "a region lies outside the file or is misaligned (offset {off}, length {rlen})"
                )));
            }
            if *g == BAT_REGION {
                bat = Some((*off, u64::from(*rlen)));
            } else if *g == METADATA_REGION {
                meta = Some((*off, u64::from(*rlen)));
            } else if *required {
                return Err(DiskError::unsupported(
                    path,
                    "the VHDX has a required region this build does not know",
                ));
            }
        }
        let (bat_off, bat_len) = bat.ok_or_else(|| bad("no BAT region".into()))?;
        let (meta_off, meta_len) = meta.ok_or_else(|| bad("no metadata region".into()))?;
        if bat_off < meta_off + meta_len && meta_off < bat_off + bat_len {
            return Err(bad("the BAT and metadata regions overlap".into()));
        }

        // metadata
        let m = read(meta_off, meta_len.min(16 * MIB))?;
        if &m[..8] != b"metadata" {
            return Err(bad("metadata table signature is missing".into()));
        }
        let count = le16(&m, 10) as usize;
        if count > 2047 || 32 + count * 32 > m.len() {
            return Err(bad(format!("metadata table claims {count} entries")));
        }
        let item = |id: &[u8; 16], want: usize| -> Result<Option<&[u8]>> {
            for i in 0..count {
                let e = &m[32 + i * 32..64 + i * 32];
                if &e[..16] == id {
                    let (o, l) = (le32(e, 16) as usize, le32(e, 20) as usize);
                    if o < 64 * KIB as usize
                        || l < want
                        || o.checked_add(l).is_none_or(|end| end > m.len())
                    {
                        return Err(DiskError::malformed(
                            path,
                            "a metadata item lies outside the metadata region",
                        ));
                    }
                    return Ok(Some(&m[o..o + l]));
                }
            }
            Ok(None)
        };
        for i in 0..count {
            let e = &m[32 + i * 32..64 + i * 32];
            let known = [
                FILE_PARAMETERS,
                VIRTUAL_DISK_SIZE,
                VIRTUAL_DISK_ID,
                LOGICAL_SECTOR_SIZE,
                PHYSICAL_SECTOR_SIZE,
                PARENT_LOCATOR,
            ];
            if le32(e, 24) & 4 != 0 && !known.iter().any(|k| &e[..16] == k) {
                return Err(DiskError::unsupported(
                    path,
                    "the VHDX has a required metadata item this build does not know",
                ));
            }
        }
        let fp = item(&FILE_PARAMETERS, 8)?.ok_or_else(|| bad("no file parameters".into()))?;
        let block_size = le32(fp, 0);
        let differencing = le32(fp, 4) & 2 != 0;
        let parent = if differencing {
            let loc = item(&PARENT_LOCATOR, 20)?
                .ok_or_else(|| bad("a differencing VHDX without a parent locator".into()))?;
            Some(parent_locator(path, loc)?)
        } else {
            None
        };
        if !(MIB..=256 * MIB).contains(&u64::from(block_size)) || !block_size.is_power_of_two() {
            return Err(bad(format!(
                "block size {block_size} is invalid (1 MiB to 256 MiB, a power of two)"
            )));
        }
        let virtual_size = le64(
            item(&VIRTUAL_DISK_SIZE, 8)?.ok_or_else(|| bad("no virtual disk size".into()))?,
            0,
        );
        let logical_sector_size = le32(
            item(&LOGICAL_SECTOR_SIZE, 4)?.ok_or_else(|| bad("no logical sector size".into()))?,
            0,
        );
        let physical_sector_size = le32(
            item(&PHYSICAL_SECTOR_SIZE, 4)?.ok_or_else(|| bad("no physical sector size".into()))?,
            0,
        );
        if ![512, 4096].contains(&logical_sector_size)
            || ![512, 4096].contains(&physical_sector_size)
        {
            return Err(bad(format!(
                "sector sizes {logical_sector_size}/{physical_sector_size} are invalid (512 or 4096)"
            )));
        }
        if virtual_size == 0
            || virtual_size > 64 * 1024 * 1024 * MIB
            || !virtual_size.is_multiple_of(u64::from(logical_sector_size))
        {
            return Err(bad(format!("virtual size {virtual_size} is invalid")));
        }

        // BAT: payload entries interleaved with one sector-bitmap entry per chunk
        let chunk_ratio = ((1u64 << 23) * u64::from(logical_sector_size)) / u64::from(block_size);
        let data_blocks = virtual_size.div_ceil(u64::from(block_size));
        // a differencing disk also has the sector bitmap entry of its last chunk
        let entries = if differencing {
            data_blocks.div_ceil(chunk_ratio) * (chunk_ratio + 1)
        } else {
            data_blocks + (data_blocks - 1) / chunk_ratio
        };
        if entries * 8 > bat_len {
            return Err(bad(format!(
                "the BAT region ({bat_len} bytes) is too small for {entries} entries"
            )));
        }
        let table = read(bat_off, entries * 8)?;
        let mut blocks = Vec::with_capacity(data_blocks as usize);
        let sector_bitmap_bytes = u64::from(block_size) / u64::from(logical_sector_size) / 8;
        let check_range = |what: &str, off: u64, need: u64| -> Result<()> {
            if off < HEADER_SECTION || off.checked_add(need).is_none_or(|end| end > len) {
                return Err(bad(format!(
                    "BAT entry for {what} points outside the file (offset {off})"
                )));
            }
            if off < meta_off + meta_len && meta_off < off + need
                || off < bat_off + bat_len && bat_off < off + need
            {
                return Err(bad(format!(
                    "BAT entry for {what} overlaps the BAT or metadata region"
                )));
            }
            Ok(())
        };
        let absent = |s: u64| {
            if differencing {
                Slot::Absent
            } else if s == ZERO {
                Slot::Zero
            } else {
                Slot::Absent
            }
        };
        for i in 0..data_blocks {
            let e = le64(&table, ((i + i / chunk_ratio) * 8) as usize);
            let state = e & 7;
            let off = (e >> 20) * MIB;
            let need = u64::from(block_size).min(virtual_size - i * u64::from(block_size));
            match state {
                ZERO => blocks.push(Slot::Zero),
                NOT_PRESENT | UNDEFINED | UNMAPPED => blocks.push(absent(state)),
                FULLY_PRESENT => {
                    check_range(&format!("block {i}"), off, need)?;
                    blocks.push(Slot::Full(off));
                }
                PARTIALLY_PRESENT if differencing => {
                    check_range(&format!("block {i}"), off, need)?;
                    let chunk = i / chunk_ratio;
                    let sb = le64(
                        &table,
                        ((chunk * (chunk_ratio + 1) + chunk_ratio) * 8) as usize,
                    );
                    if sb & 7 != SB_BLOCK_PRESENT {
                        return Err(bad(format!(
                            "block {i} is partially present but its sector bitmap block is not"
                        )));
                    }
                    let sb_off = (sb >> 20) * MIB;
                    check_range(&format!("the sector bitmap of chunk {chunk}"), sb_off, MIB)?;
                    blocks.push(Slot::Partial {
                        data: off,
                        bitmap: sb_off + (i % chunk_ratio) * sector_bitmap_bytes,
                    });
                }
                PARTIALLY_PRESENT => {
                    return Err(bad(format!(
                        "block {i} is marked partially present, which only differencing disks may use"
                    )));
                }
                s => {
                    return Err(bad(format!(
                        "BAT entry for block {i} has the invalid state {s}"
                    )));
                }
            }
        }
        let bitmaps = differencing.then_some(Bitmaps {
            sector: u64::from(logical_sector_size),
            msb_first: false,
        });
        let map = BlockMap::new(path, u64::from(block_size), virtual_size, blocks, bitmaps)?;
        let info = VhdxInfo {
            virtual_size,
            block_size,
            logical_sector_size,
            physical_sector_size,
            header_sequence,
            allocated_blocks: map.allocated(),
            differencing,
            replayed_log_entries: src.entries(),
            data_write_guid,
        };
        Ok(Self {
            src,
            path: path.to_path_buf(),
            info,
            map,
            parent,
        })
    }

    /// What was parsed.
    pub fn info(&self) -> &VhdxInfo {
        &self.info
    }
}

impl<S: Source> DiskImage for Vhdx<S> {
    fn format(&self) -> &'static str {
        "vhdx"
    }

    fn virtual_size(&self) -> u64 {
        self.info.virtual_size
    }

    fn spans(&self) -> Vec<Span> {
        self.map.spans()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.map.read_at(&self.src, &self.path, offset, buf)
    }
}

impl<S: Source + 'static> Layer for Vhdx<S> {
    fn parts(&mut self) -> (&mut BlockMap, &dyn Source, &Path) {
        (&mut self.map, &self.src, &self.path)
    }
    fn map_ref(&self) -> &BlockMap {
        &self.map
    }
    fn identity(&self) -> [u8; 16] {
        self.info.data_write_guid
    }
    fn parent(&self) -> Option<&ParentRef> {
        self.parent.as_ref()
    }
}

/// Parse a parent locator item: the linkage GUIDs and the recorded paths, in the order
/// MS-VHDX says to try them (relative, volume, absolute).
fn parent_locator(path: &Path, loc: &[u8]) -> Result<ParentRef> {
    let bad = |w: &str| DiskError::malformed(path, format!("parent locator: {w}"));
    if loc[..16] != PARENT_LOCATOR_TYPE {
        return Err(DiskError::unsupported(
            path,
            "the parent locator is not of the VHDX type",
        ));
    }
    let count = le16(loc, 18) as usize;
    if 20 + count * 12 > loc.len() {
        return Err(bad("more entries than the item holds"));
    }
    let text = |off: u32, n: u16| -> Result<String> {
        let (o, n) = (off as usize, n as usize);
        let b = loc
            .get(o..o.checked_add(n).ok_or_else(|| bad("entry out of range"))?)
            .ok_or_else(|| bad("entry out of range"))?;
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).map_err(|_| bad("entry is not UTF-16"))
    };
    let mut kv = Vec::with_capacity(count);
    for i in 0..count {
        let e = &loc[20 + i * 12..32 + i * 12];
        kv.push((
            text(le32(e, 0), le16(e, 8))?,
            text(le32(e, 4), le16(e, 10))?,
        ));
    }
    let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let mut linkage = Vec::new();
    for k in ["parent_linkage", "parent_linkage2"] {
        if let Some(v) = get(k) {
            linkage.push(
                crate::chain::parse_guid(&v)
                    .ok_or_else(|| bad(&format!("{k} `{v}` is not a GUID")))?,
            );
        }
    }
    if linkage.is_empty() {
        return Err(bad("no parent_linkage"));
    }
    let paths: Vec<String> = ["relative_path", "volume_path", "absolute_win32_path"]
        .iter()
        .filter_map(|k| get(k))
        .collect();
    if paths.is_empty() {
        return Err(bad(
            "no parent path (relative_path, volume_path or absolute_win32_path)",
        ));
    }
    Ok(ParentRef { paths, linkage })
}
