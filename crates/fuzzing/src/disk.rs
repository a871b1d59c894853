//! Disk image and partition table parsers: a guest, or whoever wrote the image file, controls every byte.

use rehydra_disk::qcow2::Qcow2;
use rehydra_disk::vhd::Vhd;
use rehydra_disk::vhdx::Vhdx;
use rehydra_disk::{DiskImage, Span};
/// VHDX header and region table: recompute the CRC-32C so mutations get past it.
fn reseal_vhdx(img: &mut [u8], at: usize, len: usize, sig: &[u8]) {
    if img.len() >= at + len && &img[at..at + sig.len()] == sig {
        img[at + 4..at + 8].fill(0);
        let c = crc32c::crc32c(&img[at..at + len]);
        img[at + 4..at + 8].copy_from_slice(&c.to_le_bytes());
    }
}

/// VHD footer and dynamic header: recompute the one's-complement checksum.
fn reseal_vhd(b: &mut [u8], start: usize, len: usize, at: usize) {
    if b.len() >= start + len {
        b[start + at..start + at + 4].fill(0);
        let sum = b[start..start + len]
            .iter()
            .fold(0u32, |s, &x| s.wrapping_add(u32::from(x)));
        b[start + at..start + at + 4].copy_from_slice(&(!sum).to_be_bytes());
    }
}

/// A disk held in memory.
struct Mem(Vec<u8>);

impl DiskImage for Mem {
    fn format(&self) -> &'static str {
        "memory"
    }
    fn virtual_size(&self) -> u64 {
        self.0.len() as u64
    }
    fn spans(&self) -> Vec<Span> {
        vec![Span::Data {
            offset: 0,
            len: self.0.len() as u64,
        }]
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> rehydra_disk::Result<()> {
        let s = offset as usize;
        match self.0.get(s..s + buf.len()) {
            Some(b) => {
                buf.copy_from_slice(b);
                Ok(())
            }
            None => Err(rehydra_disk::DiskError::Io {
                path: "fuzz".into(),
                source: std::io::ErrorKind::UnexpectedEof.into(),
            }),
        }
    }
}

fn reseal_gpt(b: &mut [u8]) {
    if b.len() < 1024 || &b[512..520] != b"EFI PART" {
        return;
    }
    let le32 = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (lba, count, size) = (
        u64::from_le_bytes(b[512 + 72..512 + 80].try_into().unwrap()),
        le32(b, 512 + 80) as usize,
        le32(b, 512 + 84) as usize,
    );
    if let Some(t) = (lba as usize)
        .checked_mul(512)
        .and_then(|s| b.get(s..s.checked_add(count.checked_mul(size)?)?))
    {
        let c = crc32fast::hash(t);
        b[512 + 88..512 + 92].copy_from_slice(&c.to_le_bytes());
    }
    let hs = (le32(b, 512 + 12) as usize).clamp(92, 512);
    b[512 + 16..512 + 20].fill(0);
    let c = crc32fast::hash(&b[512..512 + hs]);
    b[512 + 16..512 + 20].copy_from_slice(&c.to_le_bytes());
}

/// VHDX images from arbitrary bytes: never panic; reads stay inside the virtual disk. Header and region-table CRCs are recomputed after mutation, so inputs reach the region table, metadata and BAT parsing instead of stopping at the checksums. `scripts/test.sh` seeds the corpus with a small image made by qemu-img.
pub fn vhdx(data: &[u8]) {
    let mut img = data.to_vec();
    if img.len() < (1 << 20) + 4096 {
        img.resize((1 << 20) + 4096, 0);
    }
    for at in [64 << 10, 128 << 10] {
        reseal_vhdx(&mut img, at, 4096, b"head");
    }
    for at in [192 << 10, 256 << 10] {
        reseal_vhdx(&mut img, at, 64 << 10, b"regi");
    }
    if let Ok(mut v) = Vhdx::from_source(img, std::path::Path::new("fuzz.vhdx")) {
        let size = v.virtual_size();
        let ext = v.spans();
        assert_eq!(
            ext.iter()
                .map(|e| match e {
                    rehydra_disk::Span::Data { len, .. } | rehydra_disk::Span::Zero { len, .. } =>
                        *len,
                })
                .sum::<u64>(),
            size
        );
        let mut buf = vec![0u8; 64 << 10];
        let n = size.min(buf.len() as u64) as usize;
        let _ = v.read_at(0, &mut buf[..n]);
        let _ = v.read_at(size - n as u64, &mut buf[..n]);
    }
}

/// VHD images from arbitrary bytes: never panic; reads stay inside the virtual disk. The footer and dynamic-header checksums are re-sealed so inputs reach the BAT.
pub fn vhd(data: &[u8]) {
    let mut img = data.to_vec();
    if img.len() >= 512 {
        let n = img.len();
        reseal_vhd(&mut img, n - 512, 512, 64);
        if &img[..8] == b"conectix" {
            reseal_vhd(&mut img, 512, 1024, 36);
        }
    }
    if let Ok(mut v) = Vhd::from_source(img, std::path::Path::new("fuzz.vhd")) {
        let size = v.virtual_size();
        let _ = v.spans();
        let mut buf = vec![0u8; 4096];
        let n = size.min(4096) as usize;
        let _ = v.read_at(0, &mut buf[..n]);
        let _ = v.read_at(size - n as u64, &mut buf[..n]);
    }
}

/// qcow2 images from arbitrary bytes: never panic, never allocate without bound; reads stay inside the virtual disk (compressed clusters included).
pub fn qcow2(data: &[u8]) {
    if let Ok((mut q, _backing)) = Qcow2::parse(data.to_vec(), std::path::Path::new("fuzz.qcow2")) {
        let size = q.virtual_size();
        // the extent walk is bounded by the L2 tables in the input, not the claimed size
        let _ = q.spans();
        let mut buf = vec![0u8; 8192];
        let n = size.min(8192) as usize;
        let _ = q.read_at(0, &mut buf[..n]);
        let _ = q.read_at(size - n as u64, &mut buf[..n]);
        let _ = q.read_at(size / 2 - (size / 2).min(n as u64), &mut buf[..n]);
    }
}

/// GPT and MBR partition tables from arbitrary bytes: never panic; every partition lies inside the disk. The GPT CRCs are re-sealed so inputs get past them.
pub fn partitions(data: &[u8]) {
    let mut b = data.to_vec();
    reseal_gpt(&mut b);
    let mut disk = Mem(b);
    if let Ok(parts) = rehydra_fs::partitions(&mut disk) {
        for p in parts {
            assert!(p.start + p.size <= disk.virtual_size());
        }
    }
}
