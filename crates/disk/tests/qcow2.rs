//! qcow2 images made by qemu-img/qemu-io, read by us and compared with `qemu-img convert`.

use std::path::{Path, PathBuf};
use std::process::Command;

use rehydra_disk::{Extent, Format};

fn run(cmd: &mut Command) {
    let o = cmd
        .output()
        .expect("qemu-utils must be installed (scripts/setup.sh)");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn io(img: &Path, cmds: &[&str]) {
    let mut c = Command::new("qemu-io");
    c.args(["-f", "qcow2"]);
    for x in cmds {
        c.args(["-c", x]);
    }
    run(c.arg(img));
}

fn read_all(p: &Path) -> Vec<u8> {
    let mut img = rehydra_disk::open(p, Format::Auto).unwrap();
    assert_eq!(img.format(), "qcow2");
    let mut buf = vec![0u8; img.virtual_size() as usize];
    img.read_at(0, &mut buf).unwrap();
    for e in img.extents() {
        if let Extent::Zero { offset, len } = e {
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
        .extents()
        .iter()
        .map(|e| {
            if let Extent::Data { len, .. } = e {
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
