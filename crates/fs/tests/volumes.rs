//! File systems made by Debian's own tools (mkfs.ext4 -d, mkntfs + ntfscp) inside
//! partition tables written by sfdisk, wrapped in VHDX by qemu-img: listed, read and
//! restored by us, compared with the originals.

use std::path::{Path, PathBuf};
use std::process::Command;

use rehydra_fs::{EntryKind, FsError, partitions, restore_path, with_volume};

use rehydra_test_support::run;

fn sfdisk(disk: &Path, script: &str) {
    let mut c = Command::new("sfdisk");
    c.arg("-q")
        .arg(disk)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = c.spawn().expect("sfdisk (Debian fdisk)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
}

fn place(disk: &Path, part: &Path, offset: u64) {
    let data = std::fs::read(part).unwrap();
    let f = std::fs::File::options().write(true).open(disk).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &data, offset).unwrap();
}

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn to_vhdx(raw: &Path) -> PathBuf {
    let v = raw.with_extension("vhdx");
    run(Command::new("qemu-img")
        .args([
            "convert",
            "-f",
            "raw",
            "-O",
            "vhdx",
            "-o",
            "subformat=dynamic",
        ])
        .arg(raw)
        .arg(&v));
    v
}

fn mtime(p: &Path) -> i64 {
    let m = std::fs::symlink_metadata(p).unwrap();
    filetime::FileTime::from_last_modification_time(&m).unix_seconds()
}

#[test]
fn ext4_in_gpt_lists_reads_and_restores_with_times() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("etc/app")).unwrap();
    std::fs::create_dir_all(src.join("data")).unwrap();
    std::fs::write(src.join("etc/app/app.conf"), b"listen = 0.0.0.0:443\n").unwrap();
    std::fs::write(src.join("data/big.bin"), bytes(3 << 20, 5)).unwrap();
    std::os::unix::fs::symlink("etc/app/app.conf", src.join("conf")).unwrap();
    filetime::set_file_mtime(
        src.join("etc/app/app.conf"),
        filetime::FileTime::from_unix_time(1_600_000_000, 0),
    )
    .unwrap();
    filetime::set_file_mtime(
        src.join("etc/app"),
        filetime::FileTime::from_unix_time(1_500_000_000, 0),
    )
    .unwrap();
    let part = d.path().join("part.ext4");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-d"])
        .arg(&src)
        .arg(&part)
        .arg("32M"));
    let raw = d.path().join("disk.raw");
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    sfdisk(
        &raw,
        "label: gpt\nstart=2048, size=65536, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"data\"\n",
    );
    place(&raw, &part, 1 << 20);
    let vhdx = to_vhdx(&raw);

    let mut disk = rehydra_disk::open(&vhdx, rehydra_disk::Format::Auto).unwrap();
    let parts = partitions(disk.as_mut()).unwrap();
    assert_eq!(parts.len(), 1);
    let p = &parts[0];
    assert_eq!(
        (
            p.number,
            p.start,
            p.size,
            p.name.as_str(),
            p.filesystem.as_str()
        ),
        (1, 1 << 20, 32 << 20, "data", "ext4")
    );
    assert_eq!(p.kind, "0fc63daf-8483-4772-8e79-3d69d8477de4");

    let out = d.path().join("out");
    with_volume(disk.as_mut(), p, |v| {
        assert_eq!(v.kind(), "ext4");
        let root: Vec<(String, EntryKind)> =
            v.list("/")?.into_iter().map(|e| (e.name, e.kind)).collect();
        assert!(
            root.contains(&("etc".into(), EntryKind::Dir))
                && root.contains(&("conf".into(), EntryKind::Symlink))
                && root.contains(&("data".into(), EntryKind::Dir)),
            "{root:?}"
        );
        assert_eq!(v.stat("data/big.bin")?.size, 3 << 20);
        let mut buf = Vec::new();
        v.read("/data/big.bin", &mut buf)?;
        assert!(buf == bytes(3 << 20, 5));
        assert!(matches!(v.list("/nope"), Err(FsError::NotFound(_))));
        let s = restore_path(v, "/etc", &out, false)?;
        assert_eq!((s.files, s.dirs), (1, 2));
        restore_path(v, "conf", &out, false)?;
        // a second restore finds the conflict before writing anything
        assert!(matches!(
            restore_path(v, "/etc", &out, false),
            Err(FsError::Exists(_))
        ));
        restore_path(v, "/etc", &out, true)?;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        std::fs::read(out.join("etc/app/app.conf")).unwrap(),
        b"listen = 0.0.0.0:443\n"
    );
    assert_eq!(mtime(&out.join("etc/app/app.conf")), 1_600_000_000);
    assert_eq!(mtime(&out.join("etc/app")), 1_500_000_000);
    assert_eq!(
        std::fs::read_link(out.join("conf")).unwrap(),
        Path::new("etc/app/app.conf")
    );
}

#[test]
fn ntfs_in_mbr_lists_reads_and_restores() {
    let d = tempfile::tempdir().unwrap();
    let part = d.path().join("part.ntfs");
    std::fs::File::create(&part)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    run(Command::new("mkntfs")
        .args(["-q", "-F", "-Q", "-p", "2048", "-L", "DATA"])
        .arg(&part));
    let report = d.path().join("report.txt");
    std::fs::write(&report, b"quarterly numbers\r\n").unwrap();
    let big = d.path().join("big.bin");
    std::fs::write(&big, bytes(2 << 20, 9)).unwrap();
    run(Command::new("ntfscp")
        .arg("-q")
        .arg(&part)
        .arg(&report)
        .arg("Report.txt"));
    run(Command::new("ntfscp")
        .arg("-q")
        .arg(&part)
        .arg(&big)
        .arg("big.bin"));
    let raw = d.path().join("disk.raw");
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    sfdisk(&raw, "label: dos\nstart=2048, size=65536, type=7\n");
    place(&raw, &part, 1 << 20);
    let vhdx = to_vhdx(&raw);

    let mut disk = rehydra_disk::open(&vhdx, rehydra_disk::Format::Auto).unwrap();
    let parts = partitions(disk.as_mut()).unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(
        (
            parts[0].number,
            parts[0].kind.as_str(),
            parts[0].filesystem.as_str()
        ),
        (1, "mbr:0x07", "ntfs")
    );
    let out = d.path().join("out");
    with_volume(disk.as_mut(), &parts[0], |v| {
        assert_eq!(v.kind(), "ntfs");
        let names: Vec<String> = v.list("/")?.into_iter().map(|e| e.name).collect();
        assert!(
            names.contains(&"Report.txt".to_string()) && names.contains(&"big.bin".to_string()),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n.contains('~')),
            "8.3 DOS names are not listed twice: {names:?}"
        );
        // NTFS names are case-insensitive
        assert_eq!(v.stat("/report.TXT")?.size, 19);
        let mut buf = Vec::new();
        v.read("big.bin", &mut buf)?;
        assert!(buf == bytes(2 << 20, 9));
        restore_path(v, "/Report.txt", &out, false)?;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        std::fs::read(out.join("Report.txt")).unwrap(),
        b"quarterly numbers\r\n"
    );
}

#[test]
fn damaged_partition_tables_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let raw = d.path().join("disk.raw");
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    sfdisk(&raw, "label: gpt\nstart=2048, size=4096\n");
    let mut b = std::fs::read(&raw).unwrap();
    // both GPT headers' CRCs broken
    b[512 + 40] ^= 1;
    let last = b.len() - 512;
    b[last + 40] ^= 1;
    let bad = d.path().join("bad.raw");
    std::fs::write(&bad, &b).unwrap();
    let mut disk = rehydra_disk::open(&bad, rehydra_disk::Format::Raw).unwrap();
    let e = partitions(disk.as_mut()).unwrap_err().to_string();
    assert!(e.contains("GPT") && e.contains("CRC"), "{e}");
    // only the primary broken: the backup header is used
    let mut b2 = std::fs::read(&raw).unwrap();
    b2[512 + 40] ^= 1;
    std::fs::write(&bad, &b2).unwrap();
    let mut disk = rehydra_disk::open(&bad, rehydra_disk::Format::Raw).unwrap();
    assert_eq!(partitions(disk.as_mut()).unwrap().len(), 1);
    // an MBR partition past the end of the disk
    let mbr = d.path().join("mbr.raw");
    std::fs::File::create(&mbr)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    sfdisk(&mbr, "label: dos\nstart=2048, size=4096, type=83\n");
    let mut m = std::fs::read(&mbr).unwrap();
    m[446 + 12..446 + 16].copy_from_slice(&(1u32 << 30).to_le_bytes());
    std::fs::write(&mbr, &m).unwrap();
    let mut disk = rehydra_disk::open(&mbr, rehydra_disk::Format::Raw).unwrap();
    let e = partitions(disk.as_mut()).unwrap_err().to_string();
    assert!(e.contains("past the end"), "{e}");
}

/// An ext4 partition (whole disk, no table) made from `src` by mkfs.ext4 -d.
fn ext4_disk(d: &Path, src: &Path) -> PathBuf {
    let part = d.join("guest.ext4");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-d"])
        .arg(src)
        .arg(&part)
        .arg("16M"));
    part
}

/// A guest plants what an attacker would: a name with a backslash beside the folder it
/// would be split into, and the old fixed temporary name as a link to a host file next to
/// the file it is the temporary of. The restore writes each file's own bytes, follows no
/// link, and the host file keeps its contents.
#[test]
fn guest_names_and_links_cannot_reach_the_host() {
    let d = tempfile::tempdir().unwrap();
    let host_file = d.path().join("victim");
    std::fs::write(&host_file, b"precious host data\n").unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("x")).unwrap();
    std::fs::write(src.join("x\\y"), b"one").unwrap();
    std::fs::write(src.join("x/y"), b"two").unwrap();
    std::fs::write(src.join("victim"), b"guest data\n").unwrap();
    std::os::unix::fs::symlink(&host_file, src.join(".victim.rehydra-tmp")).unwrap();
    let part = ext4_disk(d.path(), &src);
    let mut disk = rehydra_disk::open(&part, rehydra_disk::Format::Raw).unwrap();
    let parts = partitions(disk.as_mut()).unwrap();
    let out = d.path().join("out");
    with_volume(disk.as_mut(), &parts[0], |v| {
        let names: Vec<String> = v.list("/")?.into_iter().map(|e| e.name).collect();
        assert!(names.contains(&"x\\y".to_string()), "{names:?}");
        let s = restore_path(v, "/", &out, false)?;
        assert_eq!(s.files, 3, "{s:?}");
        assert_eq!(s.symlinks, 1, "{s:?}");
        Ok(())
    })
    .unwrap();
    let vol = out.join("volume");
    assert_eq!(std::fs::read(vol.join("x\\y")).unwrap(), b"one");
    assert_eq!(std::fs::read(vol.join("x/y")).unwrap(), b"two");
    assert_eq!(std::fs::read(vol.join("victim")).unwrap(), b"guest data\n");
    assert_eq!(std::fs::read(&host_file).unwrap(), b"precious host data\n");
    assert!(
        std::fs::symlink_metadata(vol.join(".victim.rehydra-tmp"))
            .unwrap()
            .is_symlink()
    );
    // a second restore over the first, with consent: the links it made are replaced,
    // never written through
    with_volume(disk.as_mut(), &parts[0], |v| {
        restore_path(v, "/", &out, true)
    })
    .unwrap();
    assert_eq!(std::fs::read(&host_file).unwrap(), b"precious host data\n");
}

/// A target folder that a user replaced with a link is refused, and nothing is written
/// where it points.
#[test]
fn a_linked_folder_in_the_target_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("docs/cron"), b"* * * * * evil").unwrap();
    let part = ext4_disk(d.path(), &src);
    let outside = d.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let out = d.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("docs")).unwrap();
    let mut disk = rehydra_disk::open(&part, rehydra_disk::Format::Raw).unwrap();
    let parts = partitions(disk.as_mut()).unwrap();
    for overwrite in [false, true] {
        let r = with_volume(disk.as_mut(), &parts[0], |v| {
            restore_path(v, "/docs", &out, overwrite)
        });
        let e = r.unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

/// A folder entry that points back at its own folder (made with debugfs, as a hostile
/// guest would) is cut off: the restore ends, with a warning, instead of recursing.
#[test]
fn a_looping_folder_is_cut_off() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), b"data").unwrap();
    let part = ext4_disk(d.path(), &src);
    run(Command::new("debugfs")
        .args(["-w", "-R", "ln /d /d/loop"])
        .arg(&part));
    let mut disk = rehydra_disk::open(&part, rehydra_disk::Format::Raw).unwrap();
    let parts = partitions(disk.as_mut()).unwrap();
    let out = d.path().join("out");
    let s = with_volume(disk.as_mut(), &parts[0], |v| {
        let kinds: Vec<(String, EntryKind)> = v
            .list("/d")?
            .into_iter()
            .map(|e| (e.name, e.kind))
            .collect();
        assert!(
            kinds.contains(&("loop".into(), EntryKind::Dir)),
            "{kinds:?}"
        );
        restore_path(v, "/d", &out, false)
    })
    .unwrap();
    assert_eq!(s.files, 1, "{s:?}");
    assert_eq!(s.skipped, 1, "{s:?}");
    assert!(s.warnings[0].contains("loops"), "{s:?}");
    assert_eq!(std::fs::read(out.join("d/f")).unwrap(), b"data");
}

/// A guest's sparse file stays sparse in the target: restoring it costs what its data
/// costs, not its length.
#[test]
fn sparse_guest_files_stay_sparse() {
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let f = std::fs::File::create(src.join("sparse")).unwrap();
    f.set_len(1 << 30).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"data", 1 << 29).unwrap();
    drop(f);
    let part = ext4_disk(d.path(), &src);
    let mut disk = rehydra_disk::open(&part, rehydra_disk::Format::Raw).unwrap();
    let parts = partitions(disk.as_mut()).unwrap();
    let out = d.path().join("out");
    with_volume(disk.as_mut(), &parts[0], |v| {
        restore_path(v, "/sparse", &out, false)
    })
    .unwrap();
    let md = std::fs::metadata(out.join("sparse")).unwrap();
    assert_eq!(md.len(), 1 << 30);
    assert!(md.blocks() * 512 <= 64 << 10, "{} blocks", md.blocks());
    let back = std::fs::read(out.join("sparse")).unwrap();
    assert_eq!(&back[1 << 29..(1 << 29) + 4], b"data");
}

/// An ordinary folder holding a folder of the same name, times preserved (as tar or
/// rsync leave them), is restored whole: only true loops are cut off.
#[test]
fn a_nested_folder_of_the_same_name_is_not_a_loop() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("proj/a/a")).unwrap();
    std::fs::write(src.join("proj/a/a/notes.txt"), b"notes").unwrap();
    let t = filetime::FileTime::from_unix_time(1_600_000_000, 0);
    for p in ["proj/a/a/notes.txt", "proj/a/a", "proj/a", "proj"] {
        filetime::set_file_times(src.join(p), t, t).unwrap();
    }
    let part = ext4_disk(d.path(), &src);
    let mut disk = rehydra_disk::open(&part, rehydra_disk::Format::Raw).unwrap();
    let parts = partitions(disk.as_mut()).unwrap();
    let out = d.path().join("out");
    let s = with_volume(disk.as_mut(), &parts[0], |v| {
        restore_path(v, "/proj", &out, false)
    })
    .unwrap();
    assert_eq!((s.files, s.skipped), (1, 0), "{s:?}");
    assert_eq!(
        std::fs::read(out.join("proj/a/a/notes.txt")).unwrap(),
        b"notes"
    );
}
