#![no_main]
//! VHDX images from arbitrary bytes: never panic; reads stay inside the virtual disk.
use libfuzzer_sys::fuzz_target;
use rehydra_disk::vhdx::Vhdx;
use rehydra_disk::DiskImage;

fuzz_target!(|data: &[u8]| {
    // the header section is 1 MiB: let short inputs describe its start and pad with zeros
    let mut img = data.to_vec();
    if img.len() < (1 << 20) + 4096 {
        img.resize((1 << 20) + 4096, 0);
    }
    if let Ok(mut v) = Vhdx::from_source(img, std::path::Path::new("fuzz.vhdx")) {
        let size = v.virtual_size();
        let _ = v.extents();
        let mut buf = [0u8; 4096];
        let _ = v.read_at(0, &mut buf[..(size.min(4096)) as usize]);
    }
});
