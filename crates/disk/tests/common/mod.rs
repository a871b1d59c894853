//! Helpers for the disk-format tests: run qemu tools, read images back.
//! Each test binary uses a subset of them.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use rehydra_disk::{DiskImage, VirtualReader};

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
