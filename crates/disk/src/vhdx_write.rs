//! Writing a dynamic or differencing VHDX: payload blocks are allocated as data arrives
//! (holes stay unallocated), the BAT, metadata, region tables and both headers are written
//! at the end. A differencing disk (AVHDX) records which 512-byte sectors it holds in
//! sector bitmaps; blocks written only in part are marked partially present, the rest is
//! read from the parent, which the parent locator names (linkage GUID, relative and
//! absolute path).
//!
//! Layout: identifier at 0, headers at 64 and 128 KiB, region tables at 192 and 256 KiB,
//! an empty 1 MiB log at 1 MiB, metadata at 2 MiB, the BAT at 3 MiB, then 1 MiB-aligned
//! payload blocks in the order they were first written.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::{DiskError, Result, write_all_at};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const LOG_OFFSET: u64 = MIB;
const META_OFFSET: u64 = 2 * MIB;
const BAT_OFFSET: u64 = 3 * MIB;
const FULLY_PRESENT: u64 = 6;
const PARTIALLY_PRESENT: u64 = 7;
const SB_BLOCK_PRESENT: u64 = 6;
const SECTOR: u64 = 512;

fn put16(b: &mut [u8], i: usize, v: u16) {
    b[i..i + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], i: usize, v: u32) {
    b[i..i + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], i: usize, v: u64) {
    b[i..i + 8].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn random_guid() -> [u8; 16] {
    let mut g: [u8; 16] = rand::random();
    g[7] = (g[7] & 0x0f) | 0x40; // version 4
    g[8] = (g[8] & 0x3f) | 0x80;
    g
}

fn seal_crc(b: &mut [u8]) {
    b[4..8].fill(0);
    let c = crc32c::crc32c(b);
    b[4..8].copy_from_slice(&c.to_le_bytes());
}

/// A dynamic VHDX being written.
pub struct VhdxWriter {
    file: File,
    path: PathBuf,
    virtual_size: u64,
    block_size: u64,
    blocks: Vec<Option<u64>>,
    next_free: u64,
    bat_len: u64,
    /// Differencing disks: the parent, and per block the sectors written (bit 0 first).
    parent: Option<ParentLink>,
    written: Vec<Vec<u8>>,
}

/// How a differencing disk names its parent.
struct ParentLink {
    linkage: [u8; 16],
    relative: String,
    absolute: String,
}

impl VhdxWriter {
    /// Start writing `path` (created or truncated by the caller as `file`) for a virtual
    /// disk of `virtual_size` bytes with `block_size` payload blocks (1-256 MiB, a power of two).
    ///
    /// # Errors
    /// Invalid sizes.
    pub fn new(file: File, path: &Path, virtual_size: u64, block_size: u32) -> Result<Self> {
        let bs = u64::from(block_size);
        if !block_size.is_power_of_two() || !(MIB..=256 * MIB).contains(&bs) {
            return Err(DiskError::unsupported(
                path,
                format!("block size {block_size} is not valid for VHDX"),
            ));
        }
        if virtual_size == 0
            || !virtual_size.is_multiple_of(512)
            || virtual_size > 64 * 1024 * 1024 * MIB
        {
            return Err(DiskError::unsupported(
                path,
                format!(
                    "a VHDX cannot hold a virtual disk of {virtual_size} bytes (whole 512-byte sectors, at most 64 TiB)"
                ),
            ));
        }
        let blocks = virtual_size.div_ceil(bs);
        let chunk_ratio = ((1u64 << 23) * 512) / bs;
        // room for every chunk's sector bitmap entry, as a differencing disk needs
        let entries = blocks.div_ceil(chunk_ratio) * (chunk_ratio + 1);
        let bat_len = (entries * 8).div_ceil(MIB) * MIB;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            virtual_size,
            block_size: bs,
            blocks: vec![None; blocks as usize],
            next_free: BAT_OFFSET + bat_len,
            bat_len,
            parent: None,
            written: Vec::new(),
        })
    }

    /// Start a differencing disk (AVHDX) over `parent` (a VHDX), recording it as
    /// `relative` (to the child's folder, as Hyper-V writes `.\\parent.vhdx`) and by its
    /// absolute path. Writes must be whole 512-byte sectors.
    ///
    /// # Errors
    /// A parent that is not a readable VHDX; invalid sizes.
    pub fn differencing(
        file: File,
        path: &Path,
        parent: &Path,
        relative: &str,
        block_size: u32,
    ) -> Result<Self> {
        let p = crate::vhdx::Vhdx::open(parent)?;
        let size = crate::DiskImage::virtual_size(&p);
        let mut w = Self::new(file, path, size, block_size)?;
        let abs = std::fs::canonicalize(parent).map_err(|e| DiskError::io(parent, e))?;
        w.parent = Some(ParentLink {
            linkage: p.info().data_write_guid,
            relative: relative.to_string(),
            absolute: abs.display().to_string(),
        });
        w.written = vec![Vec::new(); w.blocks.len()];
        Ok(w)
    }

    fn io(&self, e: std::io::Error) -> DiskError {
        DiskError::io(&self.path, e)
    }

    /// Write `data` at virtual offset `offset`, allocating blocks as needed.
    ///
    /// # Errors
    /// A write past the virtual size, or I/O failure.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|e| e > self.virtual_size)
        {
            return Err(DiskError::malformed(
                &self.path,
                format!("write past the end of the virtual disk (offset {offset})"),
            ));
        }
        if self.parent.is_some()
            && (!offset.is_multiple_of(SECTOR) || !(data.len() as u64).is_multiple_of(SECTOR))
        {
            return Err(DiskError::unsupported(
                &self.path,
                "writes to a differencing disk must be whole 512-byte sectors",
            ));
        }
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let b = (pos / self.block_size) as usize;
            let within = pos % self.block_size;
            let n = ((self.block_size - within) as usize).min(data.len() - done);
            if self.parent.is_some() {
                let bits = &mut self.written[b];
                if bits.is_empty() {
                    bits.resize((self.block_size / SECTOR / 8) as usize, 0);
                }
                for s in within / SECTOR..(within + n as u64) / SECTOR {
                    bits[(s / 8) as usize] |= 1 << (s % 8);
                }
            }
            let base = match self.blocks[b] {
                Some(o) => o,
                None => {
                    let o = self.next_free;
                    self.next_free += self.block_size;
                    self.blocks[b] = Some(o);
                    o
                }
            };
            write_all_at(&self.file, &data[done..done + n], base + within)
                .map_err(|e| self.io(e))?;
            done += n;
        }
        Ok(())
    }

    /// Write the metadata, BAT, region tables and headers; returns the file (not yet synced).
    ///
    /// # Errors
    /// I/O failure.
    pub fn finish(mut self) -> Result<File> {
        use crate::vhdx::guids::*;
        let chunk_ratio = ((1u64 << 23) * 512) / self.block_size;
        // differencing: one sector bitmap block (1 MiB) per chunk that has a partial block
        let mut bitmaps: Vec<(u64, u64)> = Vec::new(); // (chunk, file offset)
        if self.parent.is_some() {
            for (i, bits) in self.written.iter().enumerate() {
                let chunk = i as u64 / chunk_ratio;
                let partial = !bits.is_empty() && bits.iter().any(|&b| b != 0xff);
                if partial && bitmaps.last().is_none_or(|(c, _)| *c != chunk) {
                    bitmaps.push((chunk, self.next_free));
                    self.next_free += MIB;
                }
            }
        }
        let io = |e| DiskError::io(&self.path, e);
        self.file.set_len(self.next_free).map_err(io)?;
        for (chunk, off) in &bitmaps {
            let mut sb = vec![0u8; MIB as usize];
            let per = (self.block_size / SECTOR / 8) as usize;
            for k in 0..chunk_ratio as usize {
                if let Some(bits) = self
                    .written
                    .get(*chunk as usize * chunk_ratio as usize + k)
                    .filter(|b| !b.is_empty())
                {
                    sb[k * per..(k + 1) * per].copy_from_slice(bits);
                }
            }
            write_all_at(&self.file, &sb, *off).map_err(io)?;
        }
        // file identifier
        let mut ident = vec![0u8; 64 * KIB as usize];
        ident[..8].copy_from_slice(b"vhdxfile");
        for (i, c) in "rehydra".encode_utf16().enumerate() {
            put16(&mut ident, 8 + i * 2, c);
        }
        write_all_at(&self.file, &ident, 0).map_err(io)?;
        // headers (both valid; the second has the higher sequence number)
        let (fw, dw) = (random_guid(), random_guid());
        for (k, off) in [(1u64, 64 * KIB), (2u64, 128 * KIB)] {
            let mut h = vec![0u8; 4 * KIB as usize];
            h[..4].copy_from_slice(b"head");
            put64(&mut h, 8, k);
            h[16..32].copy_from_slice(&fw);
            h[32..48].copy_from_slice(&dw);
            put16(&mut h, 64, 0); // log version
            put16(&mut h, 66, 1); // version
            put32(&mut h, 68, MIB as u32); // log length
            put64(&mut h, 72, LOG_OFFSET);
            seal_crc(&mut h);
            write_all_at(&self.file, &h, off).map_err(io)?;
        }
        // region tables
        let mut r = vec![0u8; 64 * KIB as usize];
        r[..4].copy_from_slice(b"regi");
        put32(&mut r, 8, 2);
        r[16..32].copy_from_slice(&BAT_REGION);
        put64(&mut r, 32, BAT_OFFSET);
        put32(&mut r, 40, self.bat_len as u32);
        put32(&mut r, 44, 1);
        r[48..64].copy_from_slice(&METADATA_REGION);
        put64(&mut r, 64, META_OFFSET);
        put32(&mut r, 72, MIB as u32);
        put32(&mut r, 76, 1);
        seal_crc(&mut r);
        for off in [192 * KIB, 256 * KIB] {
            write_all_at(&self.file, &r, off).map_err(io)?;
        }
        // metadata: table, then items at 64 KiB
        let mut m = vec![0u8; MIB as usize];
        m[..8].copy_from_slice(b"metadata");
        let locator = self.parent.as_ref().map(parent_locator);
        let mut items: Vec<(&[u8; 16], u32, u32, u32)> = vec![
            (&FILE_PARAMETERS, 0, 8, 4),
            (&VIRTUAL_DISK_SIZE, 8, 8, 6),
            (&VIRTUAL_DISK_ID, 16, 16, 6),
            (&LOGICAL_SECTOR_SIZE, 32, 4, 6),
            (&PHYSICAL_SECTOR_SIZE, 36, 4, 6),
        ];
        if let Some(l) = &locator {
            items.push((&PARENT_LOCATOR, 64, l.len() as u32, 4));
        }
        put16(&mut m, 10, items.len() as u16);
        for (i, (g, off, len, flags)) in items.iter().enumerate() {
            let e = 32 + i * 32;
            m[e..e + 16].copy_from_slice(*g);
            put32(&mut m, e + 16, 64 * KIB as u32 + off);
            put32(&mut m, e + 20, *len);
            put32(&mut m, e + 24, *flags);
        }
        let d = 64 * KIB as usize;
        put32(&mut m, d, self.block_size as u32);
        put32(&mut m, d + 4, if self.parent.is_some() { 2 } else { 0 }); // HasParent
        put64(&mut m, d + 8, self.virtual_size);
        m[d + 16..d + 32].copy_from_slice(&random_guid());
        put32(&mut m, d + 32, 512);
        put32(&mut m, d + 36, 4096);
        if let Some(l) = &locator {
            m[d + 64..d + 64 + l.len()].copy_from_slice(l);
        }
        write_all_at(&self.file, &m, META_OFFSET).map_err(io)?;
        // BAT
        let mut bat = vec![0u8; self.bat_len as usize];
        for (i, b) in self.blocks.iter().enumerate() {
            if let Some(off) = b {
                let partial = self
                    .written
                    .get(i)
                    .is_some_and(|bits| bits.iter().any(|&b| b != 0xff));
                let state = if partial {
                    PARTIALLY_PRESENT
                } else {
                    FULLY_PRESENT
                };
                let i = i as u64;
                put64(
                    &mut bat,
                    ((i + i / chunk_ratio) * 8) as usize,
                    state | ((off / MIB) << 20),
                );
            }
        }
        for (chunk, off) in &bitmaps {
            put64(
                &mut bat,
                ((chunk * (chunk_ratio + 1) + chunk_ratio) * 8) as usize,
                SB_BLOCK_PRESENT | ((off / MIB) << 20),
            );
        }
        write_all_at(&self.file, &bat, BAT_OFFSET).map_err(io)?;
        Ok(self.file)
    }
}

/// The parent locator item: VHDX locator type, then key/value pairs in UTF-16LE.
fn parent_locator(p: &ParentLink) -> Vec<u8> {
    let kv = [
        ("parent_linkage", crate::chain::format_guid(&p.linkage)),
        ("relative_path", p.relative.clone()),
        ("absolute_win32_path", p.absolute.clone()),
    ];
    let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let mut out = vec![0u8; 20 + kv.len() * 12];
    out[..16].copy_from_slice(&crate::vhdx::guids::PARENT_LOCATOR_TYPE);
    put16(&mut out, 18, kv.len() as u16);
    for (i, (k, v)) in kv.iter().enumerate() {
        let (k, v) = (utf16(k), utf16(v));
        let e = 20 + i * 12;
        let at = out.len() as u32;
        put32(&mut out, e, at);
        put16(&mut out, e + 8, k.len() as u16);
        out.extend_from_slice(&k);
        let at = out.len() as u32;
        put32(&mut out, e + 4, at);
        put16(&mut out, e + 10, v.len() as u16);
        out.extend_from_slice(&v);
    }
    out
}
