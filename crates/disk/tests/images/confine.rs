//! Confinement: every file a disk chain opens besides the image itself (differencing
//! parents, qcow2 backing files, at any depth) goes through `OpenOptions::confine`; a
//! refused file is an error naming it, never read.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::common::{read_all, run};
use rehydra_disk::vhdx_write::VhdxWriter;
use rehydra_disk::{Format, OpenOptions, open, open_with};

const MIB: u64 = 1 << 20;

/// A confinement to `root`: the canonical path when it lies inside, else a refusal.
/// Every path asked about is logged.
struct Jail {
    root: PathBuf,
    asked: Mutex<Vec<PathBuf>>,
}

impl Jail {
    fn new(root: &Path) -> Self {
        Self {
            root: std::fs::canonicalize(root).unwrap(),
            asked: Mutex::new(Vec::new()),
        }
    }

    fn check(&self, p: &Path) -> Result<PathBuf, String> {
        self.asked.lock().unwrap().push(p.to_path_buf());
        let c = std::fs::canonicalize(p).map_err(|e| format!("it cannot be resolved: {e}"))?;
        if c.starts_with(&self.root) {
            Ok(c)
        } else {
            Err(format!("it lies outside {}", self.root.display()))
        }
    }

    fn asked_about(&self, name: &str) -> bool {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == name))
    }
}

fn opened(path: &Path, jail: &Jail) -> rehydra_disk::Result<Box<dyn rehydra_disk::DiskImage>> {
    let f = |p: &Path| jail.check(p);
    open_with(path, Format::Auto, &OpenOptions { confine: Some(&f) })
}

fn refusal(path: &Path, jail: &Jail) -> String {
    match opened(path, jail) {
        Ok(_) => panic!("{} must be refused", path.display()),
        Err(e) => e.to_string(),
    }
}

fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let (granted, outside) = (d.path().join("granted"), d.path().join("outside"));
    std::fs::create_dir(&granted).unwrap();
    std::fs::create_dir(&outside).unwrap();
    (d, granted, outside)
}

fn vhdx_base(path: &Path) {
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vhdx", "-o", "block_size=1M"])
        .arg(path)
        .arg("8M"));
    run(Command::new("qemu-io")
        .args(["-f", "vhdx", "-c", "write -q -P 0x3c 0 2M"])
        .arg(path));
}

fn vhdx_child(path: &Path, parent: &Path, recorded: &str) {
    let f = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap();
    let mut w = VhdxWriter::differencing(f, path, parent, recorded, 1 << 20).unwrap();
    w.write_at(MIB, &[0x5a; 4096]).unwrap();
    w.finish().unwrap().sync_all().unwrap();
}

#[test]
fn a_vhdx_parent_outside_the_granted_folder_is_refused_and_one_inside_opens() {
    let (_d, granted, outside) = dirs();
    let base = outside.join("base.vhdx");
    vhdx_base(&base);
    let child = granted.join("disk_1.avhdx");
    // recorded relative to the child and (by the writer) by its absolute path: both
    // lie outside the granted folder
    vhdx_child(&child, &base, "../outside/base.vhdx");
    let jail = Jail::new(&granted);
    let e = refusal(&child, &jail);
    assert!(
        e.contains("disk_1.avhdx")
            && e.contains("base.vhdx")
            && e.contains("may not be opened")
            && e.contains("lies outside"),
        "{e}"
    );
    assert!(jail.asked_about("base.vhdx"));
    // the administrator's own open is not confined
    let expect = read_all(open(&child, Format::Auto).unwrap());
    assert_eq!(expect[MIB as usize], 0x5a);
    assert_eq!(expect[0], 0x3c);
    // a parent found inside (by name next to the child, after the recorded paths were
    // refused) opens and reads the same disk
    std::fs::copy(&base, granted.join("base.vhdx")).unwrap();
    let jail = Jail::new(&granted);
    assert!(read_all(opened(&child, &jail).unwrap()) == expect);
}

fn qcow2(path: &Path, backing: Option<(&str, &str)>, size: &str) {
    let mut c = Command::new("qemu-img");
    c.args(["create", "-q", "-f", "qcow2", "-u"]);
    if let Some((b, f)) = backing {
        c.args(["-b", b, "-F", f]);
    }
    run(c.arg(path).arg(size));
}

#[test]
fn a_qcow2_backing_file_outside_the_granted_folder_is_refused_at_any_depth() {
    let (_d, granted, outside) = dirs();
    let base = outside.join("base.qcow2");
    qcow2(&base, None, "4M");
    run(Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", "write -q -P 0x42 0 1M"])
        .arg(&base));
    let outside_abs = base.display().to_string();
    // directly, by an absolute and by a relative name
    for (name, backing) in [
        ("abs.qcow2", outside_abs.as_str()),
        ("rel.qcow2", "../outside/base.qcow2"),
    ] {
        let top = granted.join(name);
        qcow2(&top, Some((backing, "qcow2")), "4M");
        let jail = Jail::new(&granted);
        let e = refusal(&top, &jail);
        assert!(
            e.contains(name) && e.contains("base.qcow2") && e.contains("lies outside"),
            "{e}"
        );
        assert_eq!(read_all(open(&top, Format::Auto).unwrap())[0], 0x42);
    }
    // one level down: top -> mid (inside) -> base (outside)
    let mid = granted.join("mid.qcow2");
    qcow2(&mid, Some(("../outside/base.qcow2", "qcow2")), "4M");
    let top = granted.join("top.qcow2");
    qcow2(&top, Some(("mid.qcow2", "qcow2")), "4M");
    let jail = Jail::new(&granted);
    let e = refusal(&top, &jail);
    assert!(
        e.contains("mid.qcow2") && e.contains("base.qcow2") && e.contains("lies outside"),
        "{e}"
    );
    // a qcow2 over a VHDX differencing disk whose parent is outside
    let vbase = outside.join("base.vhdx");
    vhdx_base(&vbase);
    let child = granted.join("disk_1.avhdx");
    vhdx_child(&child, &vbase, "../outside/base.vhdx");
    let over = granted.join("over.qcow2");
    qcow2(&over, Some(("disk_1.avhdx", "vhdx")), "8M");
    let jail = Jail::new(&granted);
    let e = refusal(&over, &jail);
    assert!(
        e.contains("disk_1.avhdx") && e.contains("base.vhdx") && e.contains("lies outside"),
        "{e}"
    );
    // all inside: opens
    std::fs::copy(&base, granted.join("base.qcow2")).unwrap();
    let mid2 = granted.join("mid2.qcow2");
    qcow2(&mid2, Some(("base.qcow2", "qcow2")), "4M");
    let top2 = granted.join("top2.qcow2");
    qcow2(&top2, Some(("mid2.qcow2", "qcow2")), "4M");
    let jail = Jail::new(&granted);
    assert_eq!(read_all(opened(&top2, &jail).unwrap())[4095], 0x42);
    assert!(jail.asked_about("base.qcow2") && jail.asked_about("mid2.qcow2"));
}
