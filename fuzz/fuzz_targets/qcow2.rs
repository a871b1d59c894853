#![no_main]
//! qcow2 images from arbitrary bytes: never panic, never allocate without bound; reads
//! stay inside the virtual disk (compressed clusters included).
use libfuzzer_sys::fuzz_target;
use rehydra_disk::qcow2::Qcow2;
use rehydra_disk::DiskImage;

fuzz_target!(|data: &[u8]| {
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
});
