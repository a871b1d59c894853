#![no_main]
//! GPT and MBR partition tables from arbitrary bytes: never panic; every partition lies
//! inside the disk. The GPT CRCs are re-sealed so inputs get past them.
use libfuzzer_sys::fuzz_target;
use rehydra_disk::{DiskImage, Span};

struct Mem(Vec<u8>);

impl DiskImage for Mem {
    fn format(&self) -> &'static str {
        "memory"
    }
    fn virtual_size(&self) -> u64 {
        self.0.len() as u64
    }
    fn spans(&self) -> Vec<Span> {
        vec![Span::Data { offset: 0, len: self.0.len() as u64 }]
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> rehydra_disk::Result<()> {
        let s = offset as usize;
        match self.0.get(s..s + buf.len()) {
            Some(b) => {
                buf.copy_from_slice(b);
                Ok(())
            }
            None => Err(rehydra_disk::DiskError::Io { path: "fuzz".into(), source: std::io::ErrorKind::UnexpectedEof.into() }),
        }
    }
}

fn reseal_gpt(b: &mut [u8]) {
    if b.len() < 1024 || &b[512..520] != b"EFI PART" {
        return;
    }
    let le32 = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (lba, count, size) = (u64::from_le_bytes(b[512 + 72..512 + 80].try_into().unwrap()), le32(b, 512 + 80) as usize, le32(b, 512 + 84) as usize);
    if let Some(t) = (lba as usize).checked_mul(512).and_then(|s| b.get(s..s.checked_add(count.checked_mul(size)?)?)) {
        let c = crc32fast::hash(t);
        b[512 + 88..512 + 92].copy_from_slice(&c.to_le_bytes());
    }
    let hs = (le32(b, 512 + 12) as usize).clamp(92, 512);
    b[512 + 16..512 + 20].fill(0);
    let c = crc32fast::hash(&b[512..512 + hs]);
    b[512 + 16..512 + 20].copy_from_slice(&c.to_le_bytes());
}

fuzz_target!(|data: &[u8]| {
    let mut b = data.to_vec();
    reseal_gpt(&mut b);
    let mut disk = Mem(b);
    if let Ok(parts) = rehydra_fs::partitions(&mut disk) {
        for p in parts {
            assert!(p.start + p.size <= disk.virtual_size());
        }
    }
});
