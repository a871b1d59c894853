//! VHD reading checked against qemu-img (format `vpc`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{qemu_raw, read_all, run};
use rehydra_disk::vhd::Vhd;
use rehydra_disk::{DiskImage, Format, Span, open};

fn make_vhd(dir: &Path, subformat: &str, size: &str, writes: &[(u64, u64, u8)]) -> PathBuf {
    let p = dir.join(format!("{subformat}.vhd"));
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            &format!("subformat={subformat}"),
        ])
        .arg(&p)
        .arg(size));
    for (off, len, pat) in writes {
        run(Command::new("qemu-io")
            .args(["-f", "vpc", "-c", &format!("write -q -P {pat} {off} {len}")])
            .arg(&p));
    }
    p
}

#[test]
fn dynamic_vhd_matches_qemu_and_skips_unallocated_blocks() {
    let d = tempfile::tempdir().unwrap();
    let p = make_vhd(
        d.path(),
        "dynamic",
        "64M",
        &[
            (0, 4096, 0x11),
            (10 << 20, 1 << 20, 0x22),
            (40 << 20, 8192, 0x33),
        ],
    );
    let v = Vhd::open(&p).unwrap();
    let data: u64 = v
        .spans()
        .iter()
        .map(|e| {
            if let Span::Data { len, .. } = e {
                *len
            } else {
                0
            }
        })
        .sum();
    assert!(
        data <= 4 * (2 << 20),
        "only the written 2 MiB blocks are read: {data}"
    );
    let ours = read_all(open(&p, Format::Auto).unwrap());
    assert!(
        ours == qemu_raw(&p, "vpc"),
        "virtual content differs from qemu-img's"
    );
}

#[test]
fn fixed_vhd_matches_qemu() {
    let d = tempfile::tempdir().unwrap();
    let p = make_vhd(d.path(), "fixed", "8M", &[(1 << 20, 65536, 0x5a)]);
    assert!(read_all(open(&p, Format::Auto).unwrap()) == qemu_raw(&p, "vpc"));
}

#[test]
fn damaged_vhd_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = make_vhd(d.path(), "dynamic", "16M", &[(0, 4096, 1)]);
    let good = std::fs::read(&p).unwrap();
    let n = good.len();
    let write = |name: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        let q = d.path().join(name);
        std::fs::write(&q, b).unwrap();
        q
    };
    let msg = |q: &Path| match Vhd::open(q) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{} must be refused", q.display()),
    };
    assert!(msg(&write("footer", &|b| b[n - 512 + 40] ^= 1)).contains("checksum"));
    assert!(msg(&write("cookie", &|b| b[n - 512] = b'X')).contains("not a VHD"));
    assert!(msg(&write("tiny", &|b| b.truncate(100))).contains("truncated"));
    // the dynamic header sits at offset 512 for qemu-made images
    assert!(msg(&write("hdr", &|b| b[512 + 100] ^= 1)).contains("dynamic header"));
}
