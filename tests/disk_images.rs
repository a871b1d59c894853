use std::path::Path;
use std::process::Command;

use rehydra_api::{
    BackupOptions, Cancel, ChangedRanges, Code, DiskFormat, DiskOutput, NoProgress, RestoreOptions,
    RestorePointFilter, Source, SourceItem,
};
use rehydra_integration_tests::TestRepo;

mod files_inside;
mod instant;

use rehydra_test_support::run;

fn backup_disk(r: &TestRepo, p: &Path, asset: &str) -> rehydra_api::BackupOutcome {
    r.open()
        .backup(
            vec![SourceItem {
                name: p.display().to_string(),
                source: Source::Disk {
                    path: p.to_path_buf(),
                    format: DiskFormat::Auto,
                },
            }],
            &BackupOptions {
                workload: "disk".into(),
                asset: asset.into(),
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap()
}

/// A dynamic VHDX with 1 MiB blocks, made by qemu-img.
fn qemu_vhdx(path: &Path, size: &str) {
    run(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "vhdx",
            "-o",
            "subformat=dynamic,block_size=1M",
        ])
        .arg(path)
        .arg(size));
}

/// `len` random bytes (from `seed`) written by qemu-io at virtual offset `off` of a VHDX.
fn qemu_write(img: &Path, off: u64, len: usize, seed: u64) {
    let pat = img.with_extension(format!("pattern{seed}"));
    std::fs::write(&pat, rehydra_integration_tests::random_bytes(len, seed)).unwrap();
    run(Command::new("qemu-io")
        .args([
            "-f",
            "vhdx",
            "-c",
            &format!("write -q -s {} {off} {len}", pat.display()),
        ])
        .arg(img));
}

#[test]
fn vhdx_backup_restores_the_virtual_disk_and_dedups_across_layouts() {
    let r = TestRepo::new();
    let d = r.scratch("img");
    // a guest disk with data in a few places, as a dynamic VHDX with 1 MiB blocks
    let a = d.join("a.vhdx");
    qemu_vhdx(&a, "128M");
    for (i, off) in [0u64, 7 << 20, 40 << 20, 127 << 20].iter().enumerate() {
        // random-looking data so that dedup proves layout independence, not compressibility
        qemu_write(&a, *off, 1 << 20, i as u64);
    }
    let first = backup_disk(&r, &a, "vm-a");
    assert!(
        first.restore_point.bytes == 128 << 20,
        "the virtual size is recorded"
    );
    assert!(
        first.restore_point.new_bytes <= (4 << 20) + (1 << 20),
        "only allocated blocks are stored: {}",
        first.restore_point.new_bytes
    );

    // the same guest content in another container layout (8 MiB blocks, written by qemu-img convert)
    let b = d.join("b.vhdx");
    run(Command::new("qemu-img")
        .args([
            "convert",
            "-f",
            "vhdx",
            "-O",
            "vhdx",
            "-o",
            "subformat=dynamic,block_size=8M",
        ])
        .arg(&a)
        .arg(&b));
    let second = backup_disk(&r, &b, "vm-b");
    assert!(
        second.restore_point.new_bytes < 256 << 10,
        "same guest data dedups whatever the container layout: {} new bytes",
        second.restore_point.new_bytes
    );

    // restore gives the raw virtual disk; qemu-img (independent) finds it identical
    let out = d.join("restored.raw");
    r.open()
        .restore(
            &first.restore_point.short_id,
            &RestorePointFilter::default(),
            &out,
            &RestoreOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    run(Command::new("qemu-img")
        .args(["compare", "-q", "-f", "raw", "-F", "vhdx"])
        .arg(&out)
        .arg(&a));

    // and as a dynamic VHDX written by us: qemu-img checks it and finds the same disk
    let vx = d.join("restored.vhdx");
    r.open()
        .restore(
            &first.restore_point.short_id,
            &RestorePointFilter::default(),
            &vx,
            &RestoreOptions {
                disk_format: DiskOutput::Vhdx,
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    run(Command::new("qemu-img")
        .args(["check", "-q", "-f", "vhdx"])
        .arg(&vx));
    run(Command::new("qemu-img")
        .args(["compare", "-q", "-f", "vhdx", "-F", "vhdx"])
        .arg(&vx)
        .arg(&a));
    // 32 MiB blocks: the data at 0 and 7 MiB, 40 MiB and 127 MiB lies in 3 of the 4 blocks
    let written = rehydra_core::disk::vhdx::Vhdx::open(&vx).unwrap();
    assert_eq!(
        written.info().allocated_blocks,
        3,
        "only blocks holding data are allocated"
    );
}

#[test]
fn hostile_vhdx_is_refused_before_anything_is_stored() {
    let r = TestRepo::new();
    let d = r.scratch("img");
    let a = d.join("bad.vhdx");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vhdx"])
        .arg(&a)
        .arg("16M"));
    let mut bytes = std::fs::read(&a).unwrap();
    bytes.truncate(200_000);
    std::fs::write(&a, bytes).unwrap();
    let e = r
        .open()
        .backup(
            vec![SourceItem {
                name: "bad".into(),
                source: Source::Disk {
                    path: a.clone(),
                    format: DiskFormat::Auto,
                },
            }],
            &BackupOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidInput);
    assert!(
        e.message.contains("bad.vhdx") && e.message.contains("truncated"),
        "{}",
        e.message
    );
    assert!(
        r.open()
            .restore_points(&RestorePointFilter::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn vhd_backup_restores_the_virtual_disk_and_dedups_with_the_same_guest_in_vhdx() {
    let r = TestRepo::new();
    let d = r.scratch("img");
    let a = d.join("a.vhdx");
    qemu_vhdx(&a, "32M");
    qemu_write(&a, 4 << 20, 2 << 20, 9);
    backup_disk(&r, &a, "vm");
    // the same guest disk converted to a dynamic VHD by qemu-img: nothing new to store
    let v = d.join("a.vhd");
    run(Command::new("qemu-img")
        .args([
            "convert",
            "-f",
            "vhdx",
            "-O",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on",
        ])
        .arg(&a)
        .arg(&v));
    let out = backup_disk(&r, &v, "vm-vhd");
    assert!(
        out.restore_point.new_bytes < 256 << 10,
        "{} new bytes",
        out.restore_point.new_bytes
    );
    let restored = d.join("r.raw");
    r.open()
        .restore(
            &out.restore_point.short_id,
            &RestorePointFilter::default(),
            &restored,
            &RestoreOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    run(Command::new("qemu-img")
        .args(["compare", "-q", "-f", "raw", "-F", "vpc"])
        .arg(&restored)
        .arg(&v));
}

#[test]
fn avhdx_chain_is_backed_up_as_the_merged_disk_and_restores_to_vhd() {
    use rehydra_core::disk::vhdx_write::VhdxWriter;
    let r = TestRepo::new();
    let d = r.scratch("img");
    let base = d.join("vm.vhdx");
    qemu_vhdx(&base, "32M");
    qemu_write(&base, 2 << 20, 4 << 20, 3);
    let first = backup_disk(&r, &base, "vm");
    // a checkpoint: the VM now writes into an AVHDX over the base
    let child = d.join("vm_1F2E.avhdx");
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&child)
        .unwrap();
    let mut w = VhdxWriter::differencing(file, &child, &base, r".\vm.vhdx", 2 << 20).unwrap();
    let change = rehydra_integration_tests::random_bytes(64 << 10, 4);
    w.write_at(3 << 20, &change).unwrap();
    w.finish().unwrap().sync_all().unwrap();
    let second = backup_disk(&r, &child, "vm");
    assert_eq!(
        second.restore_point.bytes,
        32 << 20,
        "the chain is the whole virtual disk"
    );
    assert!(
        second.restore_point.new_bytes < 512 << 10,
        "only the change is new: {}",
        second.restore_point.new_bytes
    );
    // restored as a dynamic VHD: qemu-img reads it as the merged disk
    let mut expect = Vec::new();
    let raw = d.join("base.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-f", "vhdx", "-O", "raw"])
        .arg(&base)
        .arg(&raw));
    expect.extend(std::fs::read(&raw).unwrap());
    expect[3 << 20..(3 << 20) + change.len()].copy_from_slice(&change);
    std::fs::write(&raw, &expect).unwrap();
    let vhd = d.join("restored.vhd");
    r.open()
        .restore(
            &second.restore_point.short_id,
            &RestorePointFilter::default(),
            &vhd,
            &RestoreOptions {
                disk_format: DiskOutput::Vhd,
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    run(Command::new("qemu-img")
        .args(["compare", "-q", "-f", "vpc", "-F", "raw"])
        .arg(&vhd)
        .arg(&raw));
    assert!(first.restore_point.new_bytes >= 4 << 20);
    // a chain whose parent is gone is refused before anything is stored
    std::fs::remove_file(&base).unwrap();
    let e = r
        .open()
        .backup(
            vec![SourceItem {
                name: "c".into(),
                source: Source::Disk {
                    path: child.clone(),
                    format: DiskFormat::Auto,
                },
            }],
            &BackupOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidInput);
    assert!(
        e.message.contains("parent disk was not found"),
        "{}",
        e.message
    );
}

#[test]
fn changed_range_hints_read_only_the_ranges_and_take_the_rest_from_the_parent() {
    let r = TestRepo::new();
    let d = r.scratch("img");
    let img = d.join("vm.vhdx");
    qemu_vhdx(&img, "64M");
    let write = |off: u64, len: usize, seed: u64| qemu_write(&img, off, len, seed);

    write(0, 8 << 20, 1);
    write(20 << 20, 4 << 20, 2);
    let full = backup_disk(&r, &img, "vm");
    let since = r
        .open()
        .resolve(&full.restore_point.short_id, &RestorePointFilter::default())
        .unwrap()
        .0;
    let name = img.display().to_string();
    let hinted = |since: &rehydra_core::Id, ranges: Vec<(u64, u64)>| {
        r.open().backup(
            vec![SourceItem {
                name: name.clone(),
                source: Source::DiskChanged {
                    path: img.clone(),
                    format: DiskFormat::Auto,
                    changes: ChangedRanges {
                        since: *since,
                        item: name.clone(),
                        ranges,
                    },
                },
            }],
            &BackupOptions {
                workload: "disk".into(),
                asset: "vm".into(),
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
    };
    let current = |out: &Path| {
        run(Command::new("qemu-img")
            .args(["convert", "-f", "vhdx", "-O", "raw"])
            .arg(&img)
            .arg(out));
        std::fs::read(out).unwrap()
    };
    let restore = |id: &str, out: &Path| {
        r.open()
            .restore(
                id,
                &RestorePointFilter::default(),
                out,
                &RestoreOptions::default(),
                &NoProgress,
                &Cancel::default(),
            )
            .unwrap();
        std::fs::read(out).unwrap()
    };

    // in place, inside a chunk run, and in a region that was a hole
    write((1 << 20) + 4096, 64 << 10, 3);
    write((20 << 20) + 8192, 16 << 10, 4);
    write(40 << 20, 4096, 5);
    let inc = hinted(
        &since,
        vec![
            (40 << 20, 4096),
            ((1 << 20) + 4096, 64 << 10),
            ((20 << 20) + 8192, 16 << 10),
        ],
    )
    .unwrap();
    assert_eq!(inc.restore_point.bytes, 64 << 20);
    assert!(
        inc.restore_point.new_bytes < 1 << 20,
        "only the changes are new: {}",
        inc.restore_point.new_bytes
    );
    assert!(
        restore(&inc.restore_point.short_id, &d.join("r1.raw")) == current(&d.join("c1.raw")),
        "hinted restore point equals the disk"
    );

    // bytes outside the hints are not read: a change left out of the list is not seen
    write(30 << 20, 4096, 6);
    let since_inc = r
        .open()
        .resolve(&inc.restore_point.short_id, &RestorePointFilter::default())
        .unwrap()
        .0;
    let missed = hinted(&since_inc, vec![(40 << 20, 4096)]).unwrap();
    let got = restore(&missed.restore_point.short_id, &d.join("r2.raw"));
    let now = current(&d.join("c2.raw"));
    assert!(
        got[30 << 20..(30 << 20) + 4096].iter().all(|&b| b == 0),
        "the unlisted change was not read"
    );
    assert!(now[30 << 20..(30 << 20) + 4096].iter().any(|&b| b != 0));
    assert!(
        got[..30 << 20] == now[..30 << 20] && got[(30 << 20) + 4096..] == now[(30 << 20) + 4096..]
    );

    // bad hints are refused
    let e = hinted(&since, vec![(64 << 20, 1)]).unwrap_err();
    assert_eq!(e.code, Code::InvalidInput);
    assert!(e.message.contains("beyond the end"), "{}", e.message);
    let e = r
        .open()
        .backup(
            vec![SourceItem {
                name: "x".into(),
                source: Source::DiskChanged {
                    path: img.clone(),
                    format: DiskFormat::Auto,
                    changes: ChangedRanges {
                        since,
                        item: "other".into(),
                        ranges: vec![],
                    },
                },
            }],
            &BackupOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap_err();
    assert!(e.message.contains("no disk item `other`"), "{}", e.message);
}

#[test]
fn disk_restores_in_place_onto_an_existing_file_or_block_device_only_with_consent() {
    let r = TestRepo::new();
    let d = r.scratch("img");
    let img = d.join("vm.vhdx");
    qemu_vhdx(&img, "16M");
    qemu_write(&img, 4 << 20, 3 << 20, 7);
    let b = backup_disk(&r, &img, "vm");
    let raw = d.join("vm.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-f", "vhdx", "-O", "raw"])
        .arg(&img)
        .arg(&raw));
    let in_place = |target: &Path, overwrite: bool| {
        r.open().restore(
            &b.restore_point.short_id,
            &RestorePointFilter::default(),
            target,
            &RestoreOptions {
                overwrite,
                in_place: true,
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
    };
    // an existing file full of old data: refused without consent, untouched
    let target = d.join("lun.img");
    std::fs::write(&target, vec![0xEEu8; 20 << 20]).unwrap();
    let e = in_place(&target, false).unwrap_err();
    assert_eq!(e.code, Code::TargetExists);
    assert!(
        std::fs::read(&target).unwrap().iter().all(|&x| x == 0xEE),
        "nothing written without consent"
    );
    // with consent: every byte, holes included, is the disk's
    in_place(&target, true).unwrap();
    assert!(std::fs::read(&target).unwrap() == std::fs::read(&raw).unwrap());
    // a target that does not exist is not created by --in-place
    let e = in_place(&d.join("nope.img"), true).unwrap_err();
    assert!(
        e.message.contains("needs an existing file or block device"),
        "{}",
        e.message
    );

    // a block device (loop device over a file of old data), as a VM's LUN would be
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !is_root {
        eprintln!("not root: the block-device half of this test needs losetup");
        return;
    }
    let backing = d.join("backing.img");
    std::fs::write(&backing, vec![0xABu8; 16 << 20]).unwrap();
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&backing)
        .output()
        .expect("losetup (util-linux)");
    assert!(
        out.status.success(),
        "losetup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dev = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
    struct Detach(std::path::PathBuf);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
        }
    }
    let _guard = Detach(dev.clone());
    // a plain restore onto the device is refused (it would replace the device node)
    let e = r
        .open()
        .restore(
            &b.restore_point.short_id,
            &RestorePointFilter::default(),
            &dev,
            &RestoreOptions {
                overwrite: true,
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap_err();
    assert!(e.message.contains("in place"), "{}", e.message);
    assert_eq!(e.hint, Some(rehydra_api::Hint::OverwriteInPlace));
    in_place(&dev, true).unwrap();
    assert!(dev.exists(), "the device node is still there");
    let mut on_dev = vec![0u8; 16 << 20];
    std::io::Read::read_exact(&mut std::fs::File::open(&dev).unwrap(), &mut on_dev).unwrap();
    assert!(
        on_dev == std::fs::read(&raw).unwrap(),
        "the device holds the disk, holes zeroed"
    );
}

#[test]
fn qcow2_backs_up_and_restores_as_a_vhdx_that_qemu_img_checks() {
    let r = TestRepo::new();
    let d = r.scratch("img");
    let base = d.join("base.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&base)
        .arg("40M"));
    run(Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", "write -q -P 0x3c 1M 3M"])
        .arg(&base));
    let top = d.join("top.qcow2");
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
        .arg(&top));
    run(Command::new("qemu-io")
        .args([
            "-f",
            "qcow2",
            "-c",
            "write -q -P 0x4d 2M 64k",
            "-c",
            "write -q -P 0x5e 30M 1M",
        ])
        .arg(&top));
    let b = backup_disk(&r, &top, "kvm-vm");
    assert!(
        b.restore_point.new_bytes < 6 << 20,
        "only allocated clusters are read: {}",
        b.restore_point.new_bytes
    );
    let vx = d.join("restored.vhdx");
    r.open()
        .restore(
            &b.restore_point.short_id,
            &RestorePointFilter::default(),
            &vx,
            &RestoreOptions {
                disk_format: DiskOutput::Vhdx,
                ..Default::default()
            },
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    run(Command::new("qemu-img")
        .args(["check", "-q", "-f", "vhdx"])
        .arg(&vx));
    run(Command::new("qemu-img")
        .args(["compare", "-q", "-f", "vhdx", "-F", "qcow2"])
        .arg(&vx)
        .arg(&top));
}
