#![no_main]
//! VHD images from arbitrary bytes: never panic; reads stay inside the virtual disk.
//! The footer and dynamic-header checksums are re-sealed so inputs reach the BAT.
use libfuzzer_sys::fuzz_target;
use rehydra_disk::vhd::Vhd;
use rehydra_disk::DiskImage;

fn reseal(b: &mut [u8], start: usize, len: usize, at: usize) {
    if b.len() >= start + len {
        b[start + at..start + at + 4].fill(0);
        let sum = b[start..start + len].iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)));
        b[start + at..start + at + 4].copy_from_slice(&(!sum).to_be_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut img = data.to_vec();
    if img.len() >= 512 {
        let n = img.len();
        reseal(&mut img, n - 512, 512, 64);
        if &img[..8] == b"conectix" {
            reseal(&mut img, 512, 1024, 36);
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
});
