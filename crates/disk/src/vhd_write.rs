//! Writing a dynamic or differencing VHD.
//!
//! Layout: footer copy at 0, dynamic header at 512, BAT at 1536 (padded to a sector), the
//! parent locators of a differencing disk, then 2 MiB blocks (a 512-byte sector bitmap,
//! bit 7 first, followed by the data) in the order they were first written, and the footer.
//! The size is recorded as `current_size` with the creator `win ` (as Windows writes it),
//! which tells readers such as qemu to use it rather than the CHS geometry, so the virtual
//! disk keeps its exact byte count.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::{DiskError, Result, write_all_at};

const SECTOR: u64 = 512;
const BLOCK: u64 = 2 << 20;
const BITMAP: u64 = 512;
const BAT_OFFSET: u64 = 1536;
const MAX_SIZE: u64 = 2040 << 30;
/// Seconds from the Unix epoch to 2000-01-01, the VHD epoch.
const VHD_EPOCH: u64 = 946_684_800;

fn checksum(b: &[u8]) -> u32 {
    !b.iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)))
}

/// CHS geometry per the VHD specification (Appendix: CHS calculation).
fn geometry(size: u64) -> (u16, u8, u8) {
    let total = (size / SECTOR).min(65535 * 16 * 255);
    let (spt, heads, cyl_x_heads);
    if total >= 65535 * 16 * 63 {
        spt = 255;
        heads = 16;
        cyl_x_heads = total / spt;
    } else {
        let mut s = 17;
        let mut c = total / s;
        let mut h = c.div_ceil(1024).max(4);
        if c >= h * 1024 || h > 16 {
            s = 31;
            h = 16;
            c = total / s;
        }
        if c >= h * 1024 {
            s = 63;
            h = 16;
            c = total / s;
        }
        spt = s;
        heads = h;
        cyl_x_heads = c;
    }
    ((cyl_x_heads / heads) as u16, heads as u8, spt as u8)
}

/// How a differencing VHD names its parent.
struct Parent {
    unique_id: [u8; 16],
    timestamp: u32,
    name: String,
    relative: String,
    absolute: String,
}

/// A dynamic or differencing VHD being written.
pub struct VhdWriter {
    file: File,
    path: PathBuf,
    size: u64,
    /// Per block: the file offset of its bitmap sector, and the sectors written (bit 7 first).
    blocks: Vec<Option<(u64, Vec<u8>)>>,
    next_free: u64,
    data_start: u64,
    parent: Option<Parent>,
    unique_id: [u8; 16],
}

impl VhdWriter {
    /// Start a dynamic VHD of `size` bytes (whole sectors, at most 2040 GiB).
    ///
    /// # Errors
    /// Invalid size.
    pub fn new(file: File, path: &Path, size: u64) -> Result<Self> {
        if size == 0 || !size.is_multiple_of(SECTOR) || size > MAX_SIZE {
            return Err(DiskError::unsupported(
                path,
                format!(
                    "a VHD cannot hold a virtual disk of {size} bytes (whole 512-byte sectors, at most 2040 GiB)"
                ),
            ));
        }
        let entries = size.div_ceil(BLOCK);
        let data_start = (BAT_OFFSET + entries * 4).div_ceil(SECTOR) * SECTOR;
        let unique_id = crate::vhdx_write::random_guid();
        Ok(Self {
            file,
            path: path.to_path_buf(),
            size,
            blocks: vec![None; entries as usize],
            next_free: data_start,
            data_start,
            parent: None,
            unique_id,
        })
    }

    /// Start a differencing VHD over `parent` (a VHD), recorded as `relative` (to the
    /// child's folder) and by its absolute path.
    ///
    /// # Errors
    /// A parent that is not a readable VHD.
    pub fn differencing(file: File, path: &Path, parent: &Path, relative: &str) -> Result<Self> {
        let p = crate::vhd::Vhd::open(parent)?;
        let mut w = Self::new(file, path, crate::DiskImage::virtual_size(&p))?;
        let abs = std::fs::canonicalize(parent).map_err(|e| DiskError::io(parent, e))?;
        let name = abs
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (unique_id, timestamp) = p.identity_and_timestamp();
        w.parent = Some(Parent {
            unique_id,
            timestamp,
            name,
            relative: relative.to_string(),
            absolute: abs.display().to_string(),
        });
        // room for two locators (relative, absolute), one 512-byte sector each or more
        let need = |s: &str| {
            (s.encode_utf16().count() as u64 * 2)
                .div_ceil(SECTOR)
                .max(1)
                * SECTOR
        };
        if let Some(p) = &w.parent {
            w.next_free += need(&p.relative) + need(&p.absolute);
        }
        Ok(w)
    }

    /// Write whole sectors at virtual `offset`.
    ///
    /// # Errors
    /// Unaligned or out-of-range writes; I/O failure.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        if !offset.is_multiple_of(SECTOR)
            || !(data.len() as u64).is_multiple_of(SECTOR)
            || offset
                .checked_add(data.len() as u64)
                .is_none_or(|e| e > self.size)
        {
            return Err(DiskError::unsupported(
                &self.path,
                format!(
                    "VHD writes must be whole sectors inside the disk (offset {offset}, {} bytes)",
                    data.len()
                ),
            ));
        }
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let b = (pos / BLOCK) as usize;
            let within = pos % BLOCK;
            let n = ((BLOCK - within) as usize).min(data.len() - done);
            if self.blocks[b].is_none() {
                self.blocks[b] = Some((self.next_free, vec![0u8; BITMAP as usize]));
                self.next_free += BITMAP + BLOCK;
            }
            let Some((at, bits)) = self.blocks[b].as_mut() else {
                unreachable!("allocated above")
            };
            for s in within / SECTOR..(within + n as u64) / SECTOR {
                bits[(s / 8) as usize] |= 0x80 >> (s % 8);
            }
            let at = *at;
            write_all_at(&self.file, &data[done..done + n], at + BITMAP + within)
                .map_err(|e| DiskError::io(&self.path, e))?;
            done += n;
        }
        Ok(())
    }

    /// Write bitmaps, BAT, header, locators and both footers; returns the file (not synced).
    ///
    /// # Errors
    /// I/O failure.
    pub fn finish(self) -> Result<File> {
        let io = |e| DiskError::io(&self.path, e);
        let differencing = self.parent.is_some();
        // a dynamic disk's blocks are whole (all bits set); a differencing disk's say which
        // sectors are its own
        let mut bat = vec![0xffu8; (self.data_start - BAT_OFFSET) as usize];
        for (i, b) in self.blocks.iter().enumerate() {
            if let Some((at, bits)) = b {
                let bitmap = if differencing {
                    bits.clone()
                } else {
                    vec![0xff; BITMAP as usize]
                };
                write_all_at(&self.file, &bitmap, *at).map_err(io)?;
                bat[i * 4..i * 4 + 4].copy_from_slice(&((at / SECTOR) as u32).to_be_bytes());
            }
        }
        let end = self
            .blocks
            .iter()
            .flatten()
            .map(|(at, _)| at + BITMAP + BLOCK)
            .max()
            .unwrap_or(self.next_free)
            .max(self.next_free);
        write_all_at(&self.file, &bat, BAT_OFFSET).map_err(io)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let timestamp = u32::try_from(now.saturating_sub(VHD_EPOCH)).unwrap_or(0);
        // dynamic header
        let mut h = vec![0u8; 1024];
        h[..8].copy_from_slice(b"cxsparse");
        h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        h[16..24].copy_from_slice(&BAT_OFFSET.to_be_bytes());
        h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        h[28..32].copy_from_slice(&(self.blocks.len() as u32).to_be_bytes());
        h[32..36].copy_from_slice(&(BLOCK as u32).to_be_bytes());
        if let Some(p) = &self.parent {
            h[40..56].copy_from_slice(&p.unique_id);
            h[56..60].copy_from_slice(&p.timestamp.to_be_bytes());
            for (i, u) in p.name.encode_utf16().take(256).enumerate() {
                h[64 + i * 2..66 + i * 2].copy_from_slice(&u.to_be_bytes());
            }
            let mut off = self.data_start;
            for (k, (code, text)) in [(b"W2ru", &p.relative), (b"W2ku", &p.absolute)]
                .into_iter()
                .enumerate()
            {
                let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
                let space = (bytes.len() as u64).div_ceil(SECTOR).max(1) * SECTOR;
                let e = 576 + k * 24;
                h[e..e + 4].copy_from_slice(code);
                h[e + 4..e + 8].copy_from_slice(&((space / SECTOR) as u32).to_be_bytes());
                h[e + 8..e + 12].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
                h[e + 16..e + 24].copy_from_slice(&off.to_be_bytes());
                write_all_at(&self.file, &bytes, off).map_err(io)?;
                off += space;
            }
        }
        let c = checksum(&h);
        h[36..40].copy_from_slice(&c.to_be_bytes());
        write_all_at(&self.file, &h, 512).map_err(io)?;
        // footer, at the start and the end
        let mut f = vec![0u8; 512];
        f[..8].copy_from_slice(b"conectix");
        f[8..12].copy_from_slice(&2u32.to_be_bytes());
        f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        f[16..24].copy_from_slice(&512u64.to_be_bytes());
        f[24..28].copy_from_slice(&timestamp.to_be_bytes());
        f[28..32].copy_from_slice(b"win ");
        f[32..36].copy_from_slice(&0x000a_0000u32.to_be_bytes());
        f[36..40].copy_from_slice(b"Wi2k");
        f[40..48].copy_from_slice(&self.size.to_be_bytes());
        f[48..56].copy_from_slice(&self.size.to_be_bytes());
        let (cyl, heads, spt) = geometry(self.size);
        f[56..58].copy_from_slice(&cyl.to_be_bytes());
        f[58] = heads;
        f[59] = spt;
        f[60..64].copy_from_slice(&(if differencing { 4u32 } else { 3u32 }).to_be_bytes());
        f[68..84].copy_from_slice(&self.unique_id);
        let c = checksum(&f);
        f[64..68].copy_from_slice(&c.to_be_bytes());
        write_all_at(&self.file, &f, 0).map_err(io)?;
        write_all_at(&self.file, &f, end).map_err(io)?;
        self.file.set_len(end + 512).map_err(io)?;
        Ok(self.file)
    }
}
