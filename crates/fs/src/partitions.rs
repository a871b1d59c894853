//! Partition tables: GPT (both CRC-32s checked, the backup header used when the primary is
//! damaged) and MBR (primary and logical partitions through the EBR chain). A disk with
//! no table but a file system at sector 0 is one volume.

use rehydra_disk::DiskImage;

use crate::{FsError, Result};

/// One partition (or the whole disk when it has no table).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Partition {
    /// 1-based number as the OS numbers it (0: the whole disk).
    pub number: u32,
    /// Byte offset on the disk.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// Partition type: a GPT type GUID or `mbr:0x07`-style MBR type.
    pub kind: String,
    /// GPT partition name (empty for MBR).
    pub name: String,
    /// File system found in it (`ntfs`, `ext4`, or empty).
    pub filesystem: String,
}

fn le16(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn le32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn le64(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

fn guid_text(g: &[u8]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{}",
        le32(g, 0),
        le16(g, 4),
        le16(g, 6),
        g[8],
        g[9],
        g[10..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

fn read(disk: &mut dyn DiskImage, off: u64, n: usize) -> Result<Vec<u8>> {
    if off
        .checked_add(n as u64)
        .is_none_or(|e| e > disk.virtual_size())
    {
        return Err(FsError::Malformed(format!(
            "partition table: {n} bytes at {off} lie past the end of the disk"
        )));
    }
    let mut b = vec![0u8; n];
    disk.read_at(off, &mut b)
        .map_err(|e| FsError::Io(e.to_string()))?;
    Ok(b)
}

/// The file system at `start`, if one we read.
pub fn detect_filesystem(disk: &mut dyn DiskImage, start: u64) -> String {
    let mut b = [0u8; 2048];
    let n = (disk.virtual_size().saturating_sub(start)).min(2048) as usize;
    if n < 1082 || disk.read_at(start, &mut b[..n]).is_err() {
        return String::new();
    }
    if &b[3..11] == b"NTFS    " {
        "ntfs".into()
    } else if le16(&b, 1024 + 56) == 0xEF53 {
        "ext4".into()
    } else {
        String::new()
    }
}

/// Partitions of `disk`, in table order.
///
/// # Errors
/// A table whose checksums fail in both copies, entries outside the disk, an EBR loop.
pub fn partitions(disk: &mut dyn DiskImage) -> Result<Vec<Partition>> {
    let size = disk.virtual_size();
    let mut out = Vec::new();
    if size >= 512 {
        let mbr = read(disk, 0, 512)?;
        let fs_at_zero = !detect_filesystem(disk, 0).is_empty();
        if mbr[510] == 0x55 && mbr[511] == 0xAA && !fs_at_zero {
            let types: Vec<u8> = (0..4).map(|i| mbr[446 + i * 16 + 4]).collect();
            if types.contains(&0xEE) {
                out = gpt(disk)?;
            } else {
                out = mbr_partitions(disk, &mbr)?;
            }
        }
    }
    if out.is_empty() && !detect_filesystem(disk, 0).is_empty() {
        out.push(Partition {
            number: 0,
            start: 0,
            size,
            kind: "whole disk".into(),
            name: String::new(),
            filesystem: String::new(),
        });
    }
    for p in &mut out {
        p.filesystem = detect_filesystem(disk, p.start);
    }
    Ok(out)
}

fn mbr_partitions(disk: &mut dyn DiskImage, mbr: &[u8]) -> Result<Vec<Partition>> {
    let size = disk.virtual_size();
    let mut out = Vec::new();
    let entry = |b: &[u8], i: usize| {
        (
            b[446 + i * 16 + 4],
            u64::from(le32(b, 446 + i * 16 + 8)) * 512,
            u64::from(le32(b, 446 + i * 16 + 12)) * 512,
        )
    };
    let check = |start: u64, len: u64| -> Result<()> {
        if start.checked_add(len).is_none_or(|e| e > size) {
            return Err(FsError::Malformed(format!(
                "MBR partition at {start} (+{len}) lies past the end of the disk ({size} bytes)"
            )));
        }
        Ok(())
    };
    let mut extended = None;
    for i in 0..4 {
        let (t, start, len) = entry(mbr, i);
        if t == 0 || len == 0 {
            continue;
        }
        check(start, len)?;
        if matches!(t, 0x05 | 0x0F | 0x85) {
            extended = Some(start);
            continue;
        }
        out.push(Partition {
            number: i as u32 + 1,
            start,
            size: len,
            kind: format!("mbr:{t:#04x}"),
            name: String::new(),
            filesystem: String::new(),
        });
    }
    // logical partitions: a chain of EBRs, each relative to the extended partition
    if let Some(ext) = extended {
        let mut ebr = ext;
        let mut number = 5;
        for _ in 0..128 {
            let b = read(disk, ebr, 512)?;
            if b[510] != 0x55 || b[511] != 0xAA {
                return Err(FsError::Malformed(format!(
                    "the extended boot record at {ebr} has no signature"
                )));
            }
            let (t, rel, len) = entry(&b, 0);
            if t != 0 && len != 0 {
                check(ebr + rel, len)?;
                out.push(Partition {
                    number,
                    start: ebr + rel,
                    size: len,
                    kind: format!("mbr:{t:#04x}"),
                    name: String::new(),
                    filesystem: String::new(),
                });
                number += 1;
            }
            let (nt, next, _) = entry(&b, 1);
            if nt == 0 || next == 0 {
                return Ok(out);
            }
            ebr = ext + next;
        }
        return Err(FsError::Malformed(
            "the chain of extended boot records is longer than 128 (a loop?)".into(),
        ));
    }
    Ok(out)
}

fn gpt(disk: &mut dyn DiskImage) -> Result<Vec<Partition>> {
    let size = disk.virtual_size();
    let mut why = String::new();
    // primary at LBA 1, backup at the last LBA; 512-byte and 4 KiB sectors
    for sector in [512u64, 4096] {
        if size < sector * 2 {
            continue;
        }
        for lba in [1, size / sector - 1] {
            match gpt_at(disk, sector, lba) {
                Ok(p) => return Ok(p),
                // keep the most telling reason: a damaged header over a missing one
                Err(e) => {
                    let e = e.to_string();
                    if why.is_empty() || !e.contains("signature") {
                        why = e;
                    }
                }
            }
        }
    }
    Err(FsError::Malformed(format!(
        "GPT: no valid header (primary or backup): {why}"
    )))
}

fn gpt_at(disk: &mut dyn DiskImage, sector: u64, lba: u64) -> Result<Vec<Partition>> {
    let size = disk.virtual_size();
    let h = read(disk, lba * sector, 512)?;
    if &h[..8] != b"EFI PART" {
        return Err(FsError::Malformed(format!(
            "no `EFI PART` signature at LBA {lba}"
        )));
    }
    let hsize = le32(&h, 12) as usize;
    if !(92..=512).contains(&hsize) {
        return Err(FsError::Malformed(format!("header size {hsize}")));
    }
    let mut hc = h[..hsize].to_vec();
    hc[16..20].fill(0);
    if crc32fast::hash(&hc) != le32(&h, 16) {
        return Err(FsError::Malformed(format!(
            "header CRC-32 mismatch at LBA {lba}"
        )));
    }
    let (entries_lba, count, esize) = (le64(&h, 72), le32(&h, 80) as u64, le32(&h, 84) as u64);
    if !(128..=4096).contains(&esize) || !esize.is_multiple_of(8) || count > 4096 {
        return Err(FsError::Malformed(format!(
            "{count} entries of {esize} bytes"
        )));
    }
    let table = read(
        disk,
        entries_lba
            .checked_mul(sector)
            .ok_or_else(|| FsError::Malformed("entry table offset".into()))?,
        (count * esize) as usize,
    )?;
    if crc32fast::hash(&table) != le32(&h, 88) {
        return Err(FsError::Malformed(format!(
            "partition entry CRC-32 mismatch (header at LBA {lba})"
        )));
    }
    let mut out = Vec::new();
    for i in 0..count as usize {
        let e = &table[i * esize as usize..(i + 1) * esize as usize];
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let (first, last) = (le64(e, 32), le64(e, 40));
        let (start, end) = (
            first.saturating_mul(sector),
            last.saturating_add(1).saturating_mul(sector),
        );
        if last < first || end > size {
            return Err(FsError::Malformed(format!(
                "GPT partition {} ({first}..{last}) lies outside the disk",
                i + 1
            )));
        }
        let units: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        out.push(Partition {
            number: i as u32 + 1,
            start,
            size: end - start,
            kind: guid_text(&e[..16]),
            name: String::from_utf16_lossy(&units),
            filesystem: String::new(),
        });
    }
    Ok(out)
}
