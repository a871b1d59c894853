#![no_main]
//! VHDX images from arbitrary bytes: never panic; reads stay inside the virtual disk.
//! Header and region-table CRCs are recomputed after mutation, so inputs reach the region
//! table, metadata and BAT parsing instead of stopping at the checksums. `scripts/test.sh`
//! seeds the corpus with a small image made by qemu-img.
use libfuzzer_sys::fuzz_target;
use rehydra_disk::vhdx::Vhdx;
use rehydra_disk::DiskImage;

fn reseal(img: &mut [u8], at: usize, len: usize, sig: &[u8]) {
    if img.len() >= at + len && &img[at..at + sig.len()] == sig {
        img[at + 4..at + 8].fill(0);
        let c = crc32c::crc32c(&img[at..at + len]);
        img[at + 4..at + 8].copy_from_slice(&c.to_le_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut img = data.to_vec();
    if img.len() < (1 << 20) + 4096 {
        img.resize((1 << 20) + 4096, 0);
    }
    for at in [64 << 10, 128 << 10] {
        reseal(&mut img, at, 4096, b"head");
    }
    for at in [192 << 10, 256 << 10] {
        reseal(&mut img, at, 64 << 10, b"regi");
    }
    if let Ok(mut v) = Vhdx::from_source(img, std::path::Path::new("fuzz.vhdx")) {
        let size = v.virtual_size();
        let ext = v.spans();
        assert_eq!(ext.iter().map(|e| match e { rehydra_disk::Span::Data { len, .. } | rehydra_disk::Span::Zero { len, .. } => *len }).sum::<u64>(), size);
        let mut buf = vec![0u8; 64 << 10];
        let n = size.min(buf.len() as u64) as usize;
        let _ = v.read_at(0, &mut buf[..n]);
        let _ = v.read_at(size - n as u64, &mut buf[..n]);
    }
});
