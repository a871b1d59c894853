//! VHDX written by us, checked by qemu-img (check and compare) and read back by us.

use std::process::Command;

use crate::common::run;
use rehydra_disk::DiskImage;
use rehydra_disk::vhdx::Vhdx;
use rehydra_disk::vhdx_write::VhdxWriter;

#[test]
fn written_vhdx_passes_qemu_img_check_and_compare() {
    let d = tempfile::tempdir().unwrap();
    let size = 150u64 << 20; // five 32 MiB blocks, the last one partial
    let mut raw = vec![0u8; size as usize];
    let p = d.path().join("out.vhdx");
    let f = std::fs::OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    let mut w = VhdxWriter::new(f, &p, size, 32 << 20).unwrap();
    for (off, len, v) in [
        (0u64, 4096usize, 1u8),
        (5 << 20, 100_000, 2),
        ((64 << 20) - 10, 20, 3),
        (size - 512, 512, 4),
    ] {
        let data: Vec<u8> = (0..len).map(|i| v.wrapping_add(i as u8)).collect();
        raw[off as usize..off as usize + len].copy_from_slice(&data);
        w.write_at(off, &data).unwrap();
    }
    w.finish().unwrap().sync_all().unwrap();
    std::fs::write(d.path().join("ref.raw"), &raw).unwrap();
    run(Command::new("qemu-img")
        .args(["check", "-q", "-f", "vhdx"])
        .arg(&p));
    run(Command::new("qemu-img")
        .args(["compare", "-q", "-f", "vhdx", "-F", "raw"])
        .arg(&p)
        .arg(d.path().join("ref.raw")));
    let info = run(Command::new("qemu-img")
        .args(["info", "-f", "vhdx"])
        .arg(&p));
    assert!(info.contains("virtual size: 150 MiB"), "{info}");
    // read back by our own reader: blocks 0, 1, 2 (the write at 64 MiB - 10 spans 1 and 2)
    // and 4 are allocated; block 3 was never written and stays a hole
    let mut v = Vhdx::open(&p).unwrap();
    assert_eq!(v.info().allocated_blocks, 4);
    let mut buf = vec![0u8; 512];
    v.read_at(size - 512, &mut buf).unwrap();
    assert_eq!(&buf[..], &raw[(size - 512) as usize..]);
}
