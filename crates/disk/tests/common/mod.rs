//! Helpers for the disk-format tests: run qemu tools, read images back.
//! Each test binary uses a subset of them.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use rehydra_disk::{DiskImage, Format, Span, VirtualReader};

pub use rehydra_test_support::run_text as run;

/// The virtual disk of `p` as qemu-img decodes it (`fmt`: a qemu format name).
pub fn qemu_raw(p: &Path, fmt: &str) -> Vec<u8> {
    let raw = p.with_extension("raw");
    run(Command::new("qemu-img")
        .args(["convert", "-f", fmt, "-O", "raw"])
        .arg(p)
        .arg(&raw));
    std::fs::read(raw).unwrap()
}

/// The virtual disk of `img` as we decode it.
pub fn read_all(img: Box<dyn DiskImage>) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut VirtualReader::new(img), &mut out).unwrap();
    out
}

/// The whole virtual disk of the image at `p` through our reader, its spans checked:
/// zero spans read as zeros.
pub fn read_path(p: &Path) -> Vec<u8> {
    let mut img = rehydra_disk::open(p, Format::Auto).unwrap();
    let mut buf = vec![0u8; img.virtual_size() as usize];
    img.read_at(0, &mut buf).unwrap();
    for e in img.spans() {
        if let Span::Zero { offset, len } = e {
            assert!(
                buf[offset as usize..(offset + len) as usize]
                    .iter()
                    .all(|&b| b == 0),
                "zero extent at {offset} holds data"
            );
        }
    }
    buf
}
