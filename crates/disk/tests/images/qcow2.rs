//! qcow2 images made by qemu-img/qemu-io, read by us and compared with `qemu-img convert`.

use std::path::{Path, PathBuf};
use std::process::Command;

use rehydra_disk::{Format, Span};

use rehydra_test_support::run;

fn io(img: &Path, cmds: &[&str]) {
    let mut c = Command::new("qemu-io");
    c.args(["-f", "qcow2"]);
    for x in cmds {
        c.args(["-c", x]);
    }
    run(c.arg(img));
}

fn read_all(p: &Path) -> Vec<u8> {
    assert_eq!(rehydra_disk::open(p, Format::Auto).unwrap().format(), "qcow2");
    crate::common::read_path(p)
}

fn qemu_raw(p: &Path) -> Vec<u8> {
    let out = p.with_extension("raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(p)
        .arg(&out));
    std::fs::read(out).unwrap()
}

fn data_bytes(p: &Path) -> u64 {
    rehydra_disk::open(p, Format::Auto)
        .unwrap()
        .spans()
        .iter()
        .map(|e| {
            if let Span::Data { len, .. } = e {
                *len
            } else {
                0
            }
        })
        .sum()
}

fn make(d: &Path, name: &str, opts: &str, size: &str) -> PathBuf {
    let p = d.join(name);
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-o", opts])
        .arg(&p)
        .arg(size));
    p
}

#[test]
fn qcow2_v3_v2_compressed_and_zero_clusters_match_qemu() {
    let d = tempfile::tempdir().unwrap();
    let a = make(d.path(), "a.qcow2", "cluster_size=65536", "64M");
    io(
        &a,
        &[
            "write -P 0x11 0 100k",
            "write -P 0x22 10M 1M",
            "write -P 0x33 63M 1M",
            "write -z 10M 64k",
        ],
    );
    assert!(read_all(&a) == qemu_raw(&a));
    assert!(
        data_bytes(&a) < 4 << 20,
        "only allocated clusters are data: {}",
        data_bytes(&a)
    );
    // version 2 (compat 0.10), small clusters
    let b = make(d.path(), "b.qcow2", "compat=0.10,cluster_size=4096", "8M");
    io(&b, &["write -P 0x44 4096 8192", "write -P 0x55 7M 64k"]);
    assert!(read_all(&b) == qemu_raw(&b));
    // compressed clusters, deflate and zstd
    for (name, extra) in [
        ("z.qcow2", vec![]),
        ("zs.qcow2", vec!["-o", "compression_type=zstd"]),
    ] {
        let src = d.path().join(format!("{name}.src.raw"));
        let mut bytes = vec![0u8; 4 << 20];
        for (i, b) in bytes.iter_mut().enumerate().take(3 << 20) {
            *b = (i / 1000 % 251) as u8;
        }
        std::fs::write(&src, &bytes).unwrap();
        let z = d.path().join(name);
        run(Command::new("qemu-img")
            .args(["convert", "-c", "-f", "raw", "-O", "qcow2"])
            .args(&extra)
            .arg(&src)
            .arg(&z));
        assert!(read_all(&z) == bytes, "{name}");
    }
}

#[test]
fn qcow2_backing_chain_reads_as_the_merged_disk() {
    let d = tempfile::tempdir().unwrap();
    let base = make(d.path(), "base.qcow2", "cluster_size=65536", "32M");
    io(&base, &["write -P 0x61 0 4M", "write -P 0x62 20M 2M"]);
    let raw_base = d.path().join("raw-base.img");
    std::fs::write(&raw_base, vec![0x7au8; 1 << 20]).unwrap();
    let mid = d.path().join("mid.qcow2");
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "base.qcow2",
            "-F",
            "qcow2",
        ])
        .arg(&mid));
    io(&mid, &["write -P 0x71 1M 64k", "write -z 20M 64k"]);
    let top = d.path().join("top.qcow2");
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "mid.qcow2",
            "-F",
            "qcow2",
        ])
        .arg(&top));
    io(&top, &["write -P 0x81 3M 4k", "write -P 0x82 30M 64k"]);
    assert!(read_all(&top) == qemu_raw(&top));
    // a chain whose base is a raw file smaller than the image
    let over_raw = d.path().join("over-raw.qcow2");
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "raw-base.img",
            "-F",
            "raw",
        ])
        .arg(&over_raw)
        .arg("4M"));
    io(&over_raw, &["write -P 0x91 2M 4k"]);
    assert!(read_all(&over_raw) == qemu_raw(&over_raw));
    // a missing backing file is named
    std::fs::remove_file(&base).unwrap();
    let e = rehydra_disk::open(&top, Format::Auto)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("mid.qcow2") && e.contains("base.qcow2") && e.contains("not found"),
        "{e}"
    );
}

fn patch(src: &Path, dst: &Path, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut b = std::fs::read(src).unwrap();
    f(&mut b);
    std::fs::write(dst, b).unwrap();
    dst.to_path_buf()
}

fn err(p: &Path) -> String {
    match rehydra_disk::open(p, Format::Qcow2) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{} must be refused", p.display()),
    }
}

#[test]
fn hostile_qcow2_is_refused_with_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let a = make(d.path(), "a.qcow2", "cluster_size=65536", "16M");
    io(&a, &["write -P 0x11 0 64k"]);
    let t = patch(&a, &d.path().join("t"), |b| b.truncate(60));
    assert!(err(&t).contains("truncated"), "{}", err(&t));
    let m = patch(&a, &d.path().join("m"), |b| b[0] = b'X');
    assert!(err(&m).contains("not a qcow2"), "{}", err(&m));
    let enc = patch(&a, &d.path().join("enc"), |b| b[35] = 2);
    assert!(err(&enc).contains("encrypted"), "{}", err(&enc));
    let corrupt = patch(&a, &d.path().join("c"), |b| b[79] |= 2);
    assert!(
        err(&corrupt).contains("marked corrupt"),
        "{}",
        err(&corrupt)
    );
    let cb = patch(&a, &d.path().join("cb"), |b| b[23] = 40);
    assert!(err(&cb).contains("cluster size"), "{}", err(&cb));
    // L1 table pointing past the end of the file
    let l1 = patch(&a, &d.path().join("l1"), |b| {
        b[40..48].copy_from_slice(&(1u64 << 40).to_be_bytes())
    });
    assert!(err(&l1).contains("L1 table"), "{}", err(&l1));
    // an L1 entry pointing past the end of the file
    let l1e = patch(&a, &d.path().join("l1e"), |b| {
        let off = u64::from_be_bytes(b[40..48].try_into().unwrap()) as usize;
        b[off..off + 8].copy_from_slice(&((1u64 << 63) | (1u64 << 40)).to_be_bytes());
    });
    assert!(err(&l1e).contains("L1 entry 0"), "{}", err(&l1e));
    // a backing file that is the image itself
    let lp = d.path().join("loop.qcow2");
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "qcow2",
            "-u",
            "-b",
            "loop.qcow2",
            "-F",
            "qcow2",
        ])
        .arg(&lp)
        .arg("1M"));
    assert!(err(&lp).contains("loops"), "{}", err(&lp));
}

/// `img`'s backing-format header extension made unknown (so ignored), as in an image
/// written without `-F`.
fn strip_backing_format(img: &Path, dst: &Path) -> PathBuf {
    patch(img, dst, |b| {
        let at = b[..65536]
            .windows(4)
            .position(|w| w == [0xe2, 0x79, 0x2a, 0xca])
            .expect("a backing format extension");
        b[at..at + 4].copy_from_slice(&[0x0b, 0xad, 0xca, 0xfe]);
    })
}

fn over(d: &Path, name: &str, backing: &str, fmt: &str) -> PathBuf {
    let p = d.join(name);
    run(Command::new("qemu-img")
        .args([
            "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", fmt,
        ])
        .arg(&p)
        .arg("2M"));
    p
}

#[test]
fn a_raw_backing_file_needs_an_explicit_backing_format() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("base.raw"), vec![0x7au8; 1 << 20]).unwrap();
    // named raw: used
    let named = over(d.path(), "named.qcow2", "base.raw", "raw");
    assert_eq!(read_all(&named)[..1 << 20], vec![0x7au8; 1 << 20][..]);
    // no backing format, probed as raw: refused, with the way out
    let unnamed = strip_backing_format(&named, &d.path().join("unnamed.qcow2"));
    let e = err(&unnamed);
    assert!(
        e.contains("unnamed.qcow2")
            && e.contains("base.raw")
            && e.contains("has no backing format")
            && e.contains("qemu-img rebase -F raw"),
        "{e}"
    );
    // a named format the file does not have
    let wrong = over(d.path(), "wrong.qcow2", "base.raw", "qcow2");
    let e = err(&wrong);
    assert!(
        e.contains("base.raw") && e.contains("is a raw image, not qcow2"),
        "{e}"
    );
    let vmdk = over(d.path(), "vmdk.qcow2", "base.raw", "vmdk");
    let e = err(&vmdk);
    assert!(e.contains("vmdk") && e.contains("base.raw"), "{e}");
    // without a backing format, a backing file that probes as a format (not raw) is used,
    // as qemu does
    let base = make(d.path(), "base.qcow2", "cluster_size=65536", "2M");
    io(&base, &["write -P 0x61 0 64k"]);
    let top = over(d.path(), "top.qcow2", "base.qcow2", "qcow2");
    let probed = strip_backing_format(&top, &d.path().join("probed.qcow2"));
    assert_eq!(read_all(&probed)[..65536], vec![0x61u8; 65536][..]);
}

/// An in-memory image that counts the bytes read from it.
struct Counting {
    data: Vec<u8>,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl rehydra_disk::vhdx::Source for Counting {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.read
            .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
        rehydra_disk::vhdx::Source::read_at(&self.data, buf, offset)
    }
}

fn be64_at(b: &[u8], i: usize) -> u64 {
    u64::from_be_bytes(b[i..i + 8].try_into().unwrap())
}

#[test]
fn l1_entries_sharing_or_overlapping_tables_are_refused_before_any_repeated_work() {
    let d = tempfile::tempdir().unwrap();
    // 4 TiB of 64 KiB clusters: 8192 L1 entries of 8192 L2 entries each
    let a = make(d.path(), "a.qcow2", "cluster_size=65536", "4T");
    io(&a, &["write -P 0x11 0 64k"]);
    let good = std::fs::read(&a).unwrap();
    let l1_off = be64_at(&good, 40) as usize;
    let l1_size = u32::from_be_bytes(good[36..40].try_into().unwrap()) as usize;
    let l1_0 = be64_at(&good, l1_off);
    let l2_off = (l1_0 & 0x00ff_ffff_ffff_fe00) as usize;
    // every L1 entry names the one L2 table, whose entries all name the one data cluster:
    // a file of a few hundred KiB claiming 4 TiB of data
    let aliased = patch(&a, &d.path().join("aliased.qcow2"), |b| {
        let l2_0 = be64_at(b, l2_off);
        for i in 0..l1_size {
            b[l1_off + i * 8..l1_off + i * 8 + 8].copy_from_slice(&l1_0.to_be_bytes());
        }
        for k in 0..8192 {
            b[l2_off + k * 8..l2_off + k * 8 + 8].copy_from_slice(&l2_0.to_be_bytes());
        }
    });
    let bytes = std::fs::read(&aliased).unwrap();
    let len = bytes.len() as u64;
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let src = Counting {
        data: bytes,
        read: read.clone(),
    };
    let parsed = rehydra_disk::qcow2::Qcow2::parse(src, &aliased);
    if let Ok((q, _)) = &parsed {
        let _ = rehydra_disk::DiskImage::spans(q);
    }
    let n = read.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        n <= len,
        "{n} bytes read from a file of {len} bytes: its L2 table was read again and again"
    );
    let e = parsed.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.contains("L1 entries 0 and 1") && e.contains("same L2 table"),
        "{e}"
    );
    // an L1 entry naming the L1 table itself, or the refcount table
    let rt_off = be64_at(&good, 48);
    for (name, target, what) in [
        ("self.qcow2", l1_off as u64, "the L1 table"),
        ("rc.qcow2", rt_off, "the refcount table"),
    ] {
        let p = patch(&a, &d.path().join(name), |b| {
            b[l1_off + 8..l1_off + 16].copy_from_slice(&(target | 1 << 63).to_be_bytes())
        });
        let e = err(&p);
        assert!(
            e.contains("L1 entry 1") && e.contains(&format!("overlaps {what}")),
            "{e}"
        );
    }
}
