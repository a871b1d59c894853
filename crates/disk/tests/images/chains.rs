//! Differencing chains, the VHD writer and VHDX log replay, each checked against an
//! independent implementation: libvhdi (Debian `python3-libvhdi`) reads the chains we
//! write, qemu-img reads our VHDs and replays the logs we read.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use rehydra_disk::vhd_write::VhdWriter;
use rehydra_disk::vhdx_write::VhdxWriter;
use rehydra_disk::{Format, Span};

const MIB: u64 = 1 << 20;

use rehydra_test_support::run;

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

use crate::common::read_path as read_all;

/// A Python with libvhdi's bindings: `REHYDRA_PYTHON`, else the venv scripts/setup.sh
/// makes (a current `libvhdi-python` from PyPI; Debian 12's 2021 build cannot open VHDX
/// differencing chains), else the system's.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("REHYDRA_PYTHON") {
        return p.into();
    }
    let venv = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/rehydra/venv/bin/python"))
        .filter(|p| p.exists());
    venv.unwrap_or_else(|| "/usr/bin/python3".into())
}

/// The whole virtual disk through libvhdi, parents attached child-last.
fn libvhdi_read(chain: &[&Path]) -> Vec<u8> {
    let script = r#"
import sys, pyvhdi
files = []
for p in sys.argv[1:]:
    f = pyvhdi.file(); f.open(p)
    if files: f.set_parent(files[-1])
    files.append(f)
top = files[-1]
size = top.get_media_size(); off = 0
out = sys.stdout.buffer
while off < size:
    n = min(1 << 20, size - off)
    out.write(top.read_buffer_at_offset(n, off)); off += n
"#;
    run(Command::new(python()).arg("-c").arg(script).args(chain))
}

/// `None` when equal, else the first differing offset and both lengths.
fn diff(a: &[u8], b: &[u8]) -> Option<(usize, usize, usize)> {
    if a == b {
        return None;
    }
    Some((
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
        a.len(),
        b.len(),
    ))
}

fn qemu_raw(path: &Path, fmt: &str, out: &Path) -> Vec<u8> {
    run(Command::new("qemu-img")
        .args(["convert", "-f", fmt, "-O", "raw"])
        .arg(path)
        .arg(out));
    std::fs::read(out).unwrap()
}

fn create(path: &Path) -> File {
    File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap()
}

#[test]
fn vhdx_differencing_chain_reads_as_the_merged_disk_here_and_in_libvhdi() {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("base.vhdx");
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "vhdx",
            "-o",
            "subformat=dynamic,block_size=1M",
        ])
        .arg(&base)
        .arg("64M"));
    let p0 = d.path().join("p0");
    std::fs::write(&p0, pattern(3 * MIB as usize, 1)).unwrap();
    run(Command::new("qemu-io")
        .args([
            "-f",
            "vhdx",
            "-c",
            &format!("write -q -s {} 0 3M", p0.display()),
        ])
        .arg(&base));
    let mut expect = qemu_raw(&base, "vhdx", &d.path().join("base.raw"));

    // first child: single sectors, a partial block over the parent's data, a whole block
    // of its own; recorded the way Hyper-V records it (.\parent)
    let c1 = d.path().join("base_1.avhdx");
    let mut w = VhdxWriter::differencing(create(&c1), &c1, &base, r".\base.vhdx", 1 << 20).unwrap();
    let writes1: Vec<(u64, Vec<u8>)> = vec![
        (3 * 512, pattern(512, 2)),
        (MIB + 4096, pattern(8192, 3)),
        (20 * MIB, pattern(MIB as usize, 4)),
        (63 * MIB + 512, pattern(1024, 5)),
    ];
    for (off, data) in &writes1 {
        w.write_at(*off, data).unwrap();
        expect[*off as usize..*off as usize + data.len()].copy_from_slice(data);
    }
    w.finish().unwrap().sync_all().unwrap();
    // second child over the first
    let c2 = d.path().join("base_2.avhdx");
    let mut w = VhdxWriter::differencing(create(&c2), &c2, &c1, "base_1.avhdx", 2 << 20).unwrap();
    for (off, data) in [
        (3 * 512 + 512, pattern(512, 6)),
        (20 * MIB + 7 * 512, pattern(4096, 7)),
        (40 * MIB, pattern(2048, 8)),
    ] {
        w.write_at(off, &data).unwrap();
        expect[off as usize..off as usize + data.len()].copy_from_slice(&data);
    }
    w.finish().unwrap().sync_all().unwrap();

    assert_eq!(
        diff(&read_all(&c2), &expect),
        None,
        "our chain reader gives the merged disk"
    );
    assert_eq!(
        diff(&libvhdi_read(&[&base, &c1, &c2]), &expect),
        None,
        "libvhdi reads our differencing disks the same way"
    );
    let chain = rehydra_disk::open(&c2, Format::Auto).unwrap();
    assert!(
        chain.spans().iter().any(|e| matches!(e, Span::Zero { .. })),
        "unallocated space in every layer stays a hole"
    );

    // a parent that was replaced is refused, never read
    let keep = d.path().join("base.keep");
    std::fs::rename(&base, &keep).unwrap();
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vhdx"])
        .arg(&base)
        .arg("64M"));
    let e = rehydra_disk::open(&c2, Format::Auto)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("base_1.avhdx") && e.contains("does not match"),
        "{e}"
    );
    // a missing parent names what was looked for
    std::fs::remove_file(&base).unwrap();
    let e = rehydra_disk::open(&c2, Format::Auto)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("parent disk was not found") && e.contains(r".\base.vhdx"),
        "{e}"
    );
    // found by name next to the child when the recorded paths do not exist here
    std::fs::rename(&keep, &base).unwrap();
    let moved = tempfile::tempdir().unwrap();
    for f in ["base.vhdx", "base_1.avhdx", "base_2.avhdx"] {
        std::fs::copy(d.path().join(f), moved.path().join(f)).unwrap();
    }
    std::fs::remove_file(&base).unwrap();
    assert!(
        read_all(&moved.path().join("base_2.avhdx")) == expect,
        "a copied chain folder still reads"
    );
}

#[test]
fn differencing_chain_loops_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("base.vhdx");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vhdx"])
        .arg(&base)
        .arg("8M"));
    // a child that names itself as its parent, with its own identity as the linkage
    let c = d.path().join("self.avhdx");
    let w = VhdxWriter::differencing(create(&c), &c, &base, "self.avhdx", 1 << 20).unwrap();
    w.finish().unwrap().sync_all().unwrap();
    let base_guid = rehydra_disk::vhdx::Vhdx::open(&base)
        .unwrap()
        .info()
        .data_write_guid;
    let mut bytes = std::fs::read(&c).unwrap();
    for h in [64 * 1024usize, 128 * 1024] {
        bytes[h + 32..h + 48].copy_from_slice(&base_guid);
        bytes[h + 4..h + 8].fill(0);
        let crc = crc32c::crc32c(&bytes[h..h + 4096]);
        bytes[h + 4..h + 8].copy_from_slice(&crc.to_le_bytes());
    }
    std::fs::write(&c, bytes).unwrap();
    std::fs::remove_file(&base).unwrap();
    let e = rehydra_disk::open(&c, Format::Auto)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("loops back"), "{e}");
}

#[test]
fn vhd_writer_and_differencing_vhd_agree_with_qemu_and_libvhdi() {
    let d = tempfile::tempdir().unwrap();
    let size = 24 * MIB + 512 * 7;
    let mut expect = vec![0u8; size as usize];
    // a dynamic VHD written by us: qemu-img reads the same disk
    let base = d.path().join("base.vhd");
    let mut w = VhdWriter::new(create(&base), &base, size).unwrap();
    for (off, data) in [
        (0u64, pattern(MIB as usize, 11)),
        (5 * MIB + 512, pattern(3 * MIB as usize, 12)),
        (size - 1024, pattern(1024, 13)),
    ] {
        w.write_at(off, &data).unwrap();
        expect[off as usize..off as usize + data.len()].copy_from_slice(&data);
    }
    w.finish().unwrap().sync_all().unwrap();
    assert!(
        qemu_raw(&base, "vpc", &d.path().join("base.raw")) == expect,
        "qemu-img reads our VHD"
    );
    assert!(read_all(&base) == expect);
    // a differencing VHD over it, written in 4 KiB units as guests write (libvhdi resolves
    // VHD sector bitmaps a byte, i.e. 8 sectors, at a time; ours per sector, which the
    // VHDX chain test checks against libvhdi)
    let child = d.path().join("child.vhd");
    let mut w = VhdWriter::differencing(create(&child), &child, &base, r".\base.vhd").unwrap();
    for (off, data) in [
        (4096u64, pattern(4096, 14)),
        (5 * MIB, pattern(4096, 15)),
        (16 * MIB, pattern(2 * MIB as usize, 16)),
    ] {
        w.write_at(off, &data).unwrap();
        expect[off as usize..off as usize + data.len()].copy_from_slice(&data);
    }
    w.finish().unwrap().sync_all().unwrap();
    assert!(
        read_all(&child) == expect,
        "our chain reader gives the merged disk"
    );
    assert_eq!(
        diff(&libvhdi_read(&[&base, &child]), &expect),
        None,
        "libvhdi reads our differencing VHD the same way"
    );
    let info = String::from_utf8_lossy(&run(Command::new("vhdiinfo").arg(&child))).to_string();
    assert!(
        info.contains("Differential") && info.contains("base.vhd"),
        "{info}"
    );
}

/// Append one log entry (at the start of the log region) that allocates block `block` at
/// the end of the file: the BAT page update, the block's first 4 KiB as data, the rest as
/// a zero descriptor; and mark both headers with the log's GUID.
fn dirty_log(path: &Path, block: u64, page: &[u8]) {
    let mut f = std::fs::read(path).unwrap();
    let le32 = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let le64 = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let reg = 192 * 1024;
    let bat_off = (0..le32(&f, reg + 8) as usize)
        .map(|i| reg + 16 + i * 32)
        .find(|&e| f[e..e + 4] == [0x66, 0x77, 0xC2, 0x2D])
        .map(|e| le64(&f, e + 16))
        .unwrap();
    let h = 64 * 1024;
    let (log_len, log_off) = (u64::from(le32(&f, h + 68)), le64(&f, h + 72));
    let new_block = (f.len() as u64).div_ceil(MIB) * MIB;
    let mut bat_page = f[bat_off as usize..bat_off as usize + 4096].to_vec();
    bat_page[block as usize * 8..block as usize * 8 + 8]
        .copy_from_slice(&(6 | ((new_block / MIB) << 20)).to_le_bytes());
    let guid = [0x5Au8; 16];
    let seq = 0x1_0000_0007u64;
    let mut e = vec![0u8; 3 * 4096];
    e[..4].copy_from_slice(b"loge");
    e[8..12].copy_from_slice(&(3u32 * 4096).to_le_bytes());
    e[16..24].copy_from_slice(&seq.to_le_bytes());
    e[24..28].copy_from_slice(&3u32.to_le_bytes());
    e[32..48].copy_from_slice(&guid);
    e[48..56].copy_from_slice(&(f.len() as u64).to_le_bytes());
    e[56..64].copy_from_slice(&(new_block + MIB).to_le_bytes());
    for (i, (off, data)) in [(bat_off, &bat_page[..]), (new_block, page)]
        .into_iter()
        .enumerate()
    {
        let dsc = 64 + i * 32;
        e[dsc..dsc + 4].copy_from_slice(b"desc");
        e[dsc + 4..dsc + 8].copy_from_slice(&data[4092..]);
        e[dsc + 8..dsc + 16].copy_from_slice(&data[..8]);
        e[dsc + 16..dsc + 24].copy_from_slice(&off.to_le_bytes());
        e[dsc + 24..dsc + 32].copy_from_slice(&seq.to_le_bytes());
        let s = 4096 * (1 + i);
        e[s..s + 4].copy_from_slice(b"data");
        e[s + 4..s + 8].copy_from_slice(&((seq >> 32) as u32).to_le_bytes());
        e[s + 8..s + 4092].copy_from_slice(&data[8..4092]);
        e[s + 4092..s + 4096].copy_from_slice(&(seq as u32).to_le_bytes());
    }
    let z = 64 + 2 * 32;
    e[z..z + 4].copy_from_slice(b"zero");
    e[z + 8..z + 16].copy_from_slice(&(MIB - 4096).to_le_bytes());
    e[z + 16..z + 24].copy_from_slice(&(new_block + 4096).to_le_bytes());
    e[z + 24..z + 32].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&e);
    e[4..8].copy_from_slice(&crc.to_le_bytes());
    assert!(e.len() as u64 <= log_len);
    f[log_off as usize..log_off as usize + e.len()].copy_from_slice(&e);
    for h in [64 * 1024usize, 128 * 1024] {
        f[h + 48..h + 64].copy_from_slice(&guid);
        f[h + 4..h + 8].fill(0);
        let crc = crc32c::crc32c(&f[h..h + 4096]);
        f[h + 4..h + 8].copy_from_slice(&crc.to_le_bytes());
    }
    std::fs::write(path, f).unwrap();
}

#[test]
fn vhdx_log_is_replayed_in_memory_as_qemu_replays_it() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("dirty.vhdx");
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "vhdx",
            "-o",
            "subformat=dynamic,block_size=1M",
        ])
        .arg(&img)
        .arg("16M"));
    run(Command::new("qemu-io")
        .args(["-f", "vhdx", "-c", "write -q -P 0x11 0 1M"])
        .arg(&img));
    let page = pattern(4096, 21);
    dirty_log(&img, 5, &page);
    let before = std::fs::read(&img).unwrap();

    let ours = read_all(&img);
    assert_eq!(
        std::fs::read(&img).unwrap(),
        before,
        "the source is never written"
    );
    assert!(
        ours[5 * MIB as usize..5 * MIB as usize + 4096] == page[..],
        "the logged block is visible"
    );
    let v = rehydra_disk::vhdx::Vhdx::open(&img).unwrap();
    assert_eq!(v.info().replayed_log_entries, 1);
    // qemu replays the log on a copy (check -r all); both see the same disk
    let copy = d.path().join("copy.vhdx");
    std::fs::copy(&img, &copy).unwrap();
    run(Command::new("qemu-img")
        .args(["check", "-q", "-r", "all", "-f", "vhdx"])
        .arg(&copy));
    assert!(
        qemu_raw(&copy, "vhdx", &d.path().join("q.raw")) == ours,
        "qemu's replay and ours agree"
    );

    // a damaged entry is not replayed: the disk reads as it was before the entry
    let mut b = before.clone();
    let log_off =
        u64::from_le_bytes(b[64 * 1024 + 72..64 * 1024 + 80].try_into().unwrap()) as usize;
    b[log_off + 5000] ^= 0xff;
    let broken = d.path().join("broken.vhdx");
    std::fs::write(&broken, b).unwrap();
    let r = read_all(&broken);
    assert!(
        r[5 * MIB as usize..6 * MIB as usize]
            .iter()
            .all(|&x| x == 0),
        "an entry with a bad checksum is ignored"
    );
}

#[test]
fn a_vhdx_left_open_by_a_killed_qemu_reads_as_qemu_repairs_it() {
    let d = tempfile::tempdir().unwrap();
    let img: PathBuf = d.path().join("killed.vhdx");
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "vhdx",
            "-o",
            "subformat=dynamic,block_size=1M",
        ])
        .arg(&img)
        .arg("16M"));
    // qemu logs its metadata updates; killed before closing, the log stays dirty
    let _ = Command::new("qemu-io")
        .args([
            "-f",
            "vhdx",
            "-c",
            "write -q -P 0x5c 3M 2M",
            "-c",
            "sigraise 9",
        ])
        .arg(&img)
        .output()
        .unwrap();
    let ours = read_all(&img);
    let copy = d.path().join("copy.vhdx");
    std::fs::copy(&img, &copy).unwrap();
    run(Command::new("qemu-img")
        .args(["check", "-q", "-r", "all", "-f", "vhdx"])
        .arg(&copy));
    assert!(qemu_raw(&copy, "vhdx", &d.path().join("q.raw")) == ours);
    assert!(
        ours[3 * MIB as usize..5 * MIB as usize]
            .iter()
            .all(|&x| x == 0x5c)
    );
}
