//! VHDX reading checked against qemu-img, the independent implementation.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{qemu_raw, read_all, run};
use rehydra_disk::vhdx::Vhdx;
use rehydra_disk::{DiskError, DiskImage, Format, Span, open};

/// A VHDX made by qemu-img with data written by qemu-io at several offsets.
fn make_vhdx(dir: &Path, subformat: &str, size: &str, writes: &[(&str, &str, u8)]) -> PathBuf {
    let p = dir.join(format!("{subformat}.vhdx"));
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "vhdx",
            "-o",
            &format!("subformat={subformat},block_size=1M"),
        ])
        .arg(&p)
        .arg(size));
    for (off, len, pat) in writes {
        run(Command::new("qemu-io")
            .args([
                "-f",
                "vhdx",
                "-c",
                &format!("write -q -P {pat} {off} {len}"),
            ])
            .arg(&p));
    }
    p
}

#[test]
fn dynamic_vhdx_matches_qemu_and_skips_unallocated_blocks() {
    let d = tempfile::tempdir().unwrap();
    let p = make_vhdx(
        d.path(),
        "dynamic",
        "64M",
        &[
            ("0", "4k", 0x11),
            ("5M", "1M", 0x22),
            ("5767168", "8k", 0x33),
            ("63M", "1M", 0x44),
        ],
    );
    let v = Vhdx::open(&p).unwrap();
    assert_eq!(v.info().virtual_size, 64 << 20);
    assert_eq!(v.info().allocated_blocks, 3);
    let ext = v.spans();
    let data: u64 = ext
        .iter()
        .map(|e| {
            if let Span::Data { len, .. } = e {
                *len
            } else {
                0
            }
        })
        .sum();
    assert_eq!(
        data,
        3 << 20,
        "only the three written 1 MiB blocks are read: {ext:?}"
    );
    let ours = read_all(open(&p, Format::Auto).unwrap());
    assert!(
        ours == qemu_raw(&p, "vhdx"),
        "virtual content differs from qemu-img's"
    );
}

#[test]
fn fixed_vhdx_and_odd_size_match_qemu() {
    let d = tempfile::tempdir().unwrap();
    let p = make_vhdx(
        d.path(),
        "fixed",
        "10M",
        &[("1M", "64k", 0x5a), ("9961472", "512k", 0x7e)],
    );
    let ours = read_all(open(&p, Format::Auto).unwrap());
    assert!(ours == qemu_raw(&p, "vhdx"));
}

fn corrupt(src: &Path, dst: &Path, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut b = std::fs::read(src).unwrap();
    f(&mut b);
    std::fs::write(dst, b).unwrap();
    dst.to_path_buf()
}

fn err(p: &Path) -> DiskError {
    match Vhdx::open(p) {
        Err(e) => e,
        Ok(_) => panic!("{} must be refused", p.display()),
    }
}

#[test]
fn hostile_and_damaged_images_are_refused_with_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let p = make_vhdx(d.path(), "dynamic", "16M", &[("2M", "1M", 0x42)]);
    let good = std::fs::read(&p).unwrap();

    let t = corrupt(&p, &d.path().join("trunc"), |b| b.truncate(300 * 1024));
    assert!(err(&t).to_string().contains("truncated"), "{}", err(&t));

    let s = corrupt(&p, &d.path().join("sig"), |b| b[0] = b'X');
    assert!(err(&s).to_string().contains("not a VHDX"));

    // both headers' CRC broken
    let h = corrupt(&p, &d.path().join("hdr"), |b| {
        b[64 * 1024 + 100] ^= 1;
        b[128 * 1024 + 100] ^= 1;
    });
    assert!(err(&h).to_string().contains("headers are damaged"));

    // one header broken: the other one is used
    let one = corrupt(&p, &d.path().join("one"), |b| b[64 * 1024 + 100] ^= 1);
    Vhdx::open(&one).unwrap();

    // a log GUID with no valid entry in the log: nothing to replay (as qemu decides)
    let set_log = |b: &mut Vec<u8>, log_offset: Option<u64>| {
        for off in [64 * 1024usize, 128 * 1024] {
            b[off + 48] = 0xaa;
            if let Some(o) = log_offset {
                b[off + 72..off + 80].copy_from_slice(&o.to_le_bytes());
            }
            b[off + 4..off + 8].fill(0);
            let c = crc32c::crc32c(&b[off..off + 4096]);
            b[off + 4..off + 8].copy_from_slice(&c.to_le_bytes());
        }
    };
    let log = corrupt(&p, &d.path().join("log"), |b| set_log(b, None));
    assert!(
        read_all(open(&log, Format::Auto).unwrap()) == read_all(open(&p, Format::Auto).unwrap())
    );
    // a log region outside the file is refused, not misread
    let log = corrupt(&p, &d.path().join("log2"), |b| set_log(b, Some(1 << 40)));
    assert!(err(&log).to_string().contains("log"), "{}", err(&log));

    // BAT entry pointing past the end of the file
    let v = Vhdx::open(&p).unwrap();
    drop(v);
    let bat_off = find_bat(&good);
    let b2 = corrupt(&p, &d.path().join("bat"), |b| {
        let e = (1u64 << 44) | 6; // state 6 (present) at an absurd MiB offset
        b[bat_off + 2 * 8..bat_off + 3 * 8].copy_from_slice(&e.to_le_bytes());
    });
    assert!(
        err(&b2).to_string().contains("outside the file"),
        "{}",
        err(&b2)
    );

    // two BAT entries pointing at the same data
    let dup = corrupt(&p, &d.path().join("dup"), |b| {
        let e = u64::from_le_bytes(b[bat_off + 2 * 8..bat_off + 3 * 8].try_into().unwrap());
        b[bat_off + 3 * 8..bat_off + 4 * 8].copy_from_slice(&e.to_le_bytes());
    });
    assert!(
        err(&dup).to_string().contains("overlapping"),
        "{}",
        err(&dup)
    );
}

/// File offset of the BAT, from the region table (test helper, independent of the parser).
fn find_bat(b: &[u8]) -> usize {
    let r = 192 * 1024;
    let count = u32::from_le_bytes(b[r + 8..r + 12].try_into().unwrap()) as usize;
    for i in 0..count {
        let e = &b[r + 16 + i * 32..r + 48 + i * 32];
        if e[..4] == [0x66, 0x77, 0xC2, 0x2D] {
            return u64::from_le_bytes(e[16..24].try_into().unwrap()) as usize;
        }
    }
    panic!("no BAT region")
}

#[test]
fn formats_are_detected_and_anything_else_is_raw() {
    let d = tempfile::tempdir().unwrap();
    let q = d.path().join("x.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&q)
        .arg("1M"));
    assert_eq!(open(&q, Format::Auto).unwrap().format(), "qcow2");
    let r = d.path().join("x.raw");
    std::fs::write(&r, vec![7u8; 10_000]).unwrap();
    assert_eq!(read_all(open(&r, Format::Auto).unwrap()), vec![7u8; 10_000]);
}
