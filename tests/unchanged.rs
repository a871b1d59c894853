//! Folder incrementals read only what changed: a file whose size, modification time,
//! change time and inode match the previous restore point is taken from it unread.

use std::fs;
use std::path::Path;
use std::sync::Mutex;

use rehydra_api::{
    BackupOptions, Cancel, NoProgress, Progress, RestoreOptions, RestorePointFilter, Source,
    SourceItem,
};
use rehydra_integration_tests::{TestRepo, assert_same_tree, random_bytes, text_bytes};

/// Records the files the backup read (it names each one as it starts reading it).
#[derive(Default)]
struct Reads(Mutex<Vec<String>>);

impl Progress for Reads {
    fn message(&self, msg: &str) {
        self.0.lock().unwrap().push(msg.to_string());
    }
}

impl Reads {
    fn files(&self, root: &Path) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|m| {
                m.strip_prefix(&format!("{}/", root.display()))
                    .map(str::to_string)
            })
            .collect();
        v.sort();
        v
    }
}

fn backup(r: &TestRepo, src: &Path, read_all: bool) -> (rehydra_api::BackupOutcome, Vec<String>) {
    backup_as(r, src, "tree", read_all)
}

fn backup_as(
    r: &TestRepo,
    src: &Path,
    asset: &str,
    read_all: bool,
) -> (rehydra_api::BackupOutcome, Vec<String>) {
    let reads = Reads::default();
    let out = r
        .open()
        .backup(
            vec![SourceItem {
                name: "tree".into(),
                source: Source::Path(src.to_path_buf()),
            }],
            &BackupOptions {
                asset: asset.into(),
                read_all,
                ..BackupOptions::default()
            },
            &reads,
            &Cancel::default(),
        )
        .expect("backup");
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let files = reads.files(src);
    (out, files)
}

fn restore_equals(r: &TestRepo, id: &str, src: &Path, to: &str) {
    let dst = r.dir.path().join(to);
    r.open()
        .restore(
            id,
            &RestorePointFilter::default(),
            &dst,
            &RestoreOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .expect("restore");
    assert_same_tree(src, &dst);
}

#[test]
fn unchanged_files_are_not_read_again() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::create_dir_all(src.join("a/b")).unwrap();
    fs::write(src.join("a/b/random.bin"), random_bytes(900_000, 1)).unwrap();
    fs::write(src.join("a/notes.txt"), text_bytes(300_000, 2)).unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    fs::write(src.join("z.log"), text_bytes(100_000, 3)).unwrap();
    let sparse = fs::File::create(src.join("sparse.img")).unwrap();
    sparse.set_len(16 << 20).unwrap();
    drop(sparse);
    let all = [
        "a/b/random.bin",
        "a/notes.txt",
        "empty",
        "sparse.img",
        "z.log",
    ];

    let (first, read) = backup(&r, &src, false);
    assert_eq!(read, all, "a first backup reads everything");
    assert_eq!(first.restore_point.unchanged_files, 0);

    // nothing changed: nothing is read, the restore point is whole
    let (second, read) = backup(&r, &src, false);
    assert!(read.is_empty(), "read again: {read:?}");
    assert_eq!(second.restore_point.unchanged_files, 5);
    assert_eq!(
        second.restore_point.unchanged_bytes,
        first.restore_point.bytes
    );
    assert_eq!(second.restore_point.bytes, first.restore_point.bytes);
    assert_eq!(second.restore_point.new_bytes, 0);
    restore_equals(&r, &second.restore_point.id, &src, "second");

    // a changed file (new content, same size and modification time put back), a
    // replaced file (same name, new inode) and a new one are read; the others are not
    let notes = src.join("a/notes.txt");
    let mtime = fs::metadata(&notes).unwrap().modified().unwrap();
    let mut changed = text_bytes(300_000, 2);
    changed[1000] ^= 1;
    fs::write(&notes, &changed).unwrap();
    fs::File::options()
        .write(true)
        .open(&notes)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let z = src.join("z.log");
    let zbytes = fs::read(&z).unwrap();
    let zmtime = fs::metadata(&z).unwrap().modified().unwrap();
    fs::remove_file(&z).unwrap();
    fs::write(src.join("placeholder"), b"keeps z.log's old inode busy").unwrap();
    fs::write(&z, &zbytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&z)
        .unwrap()
        .set_modified(zmtime)
        .unwrap();
    fs::write(src.join("a/new.txt"), b"new").unwrap();
    let (third, read) = backup(&r, &src, false);
    assert_eq!(read, ["a/new.txt", "a/notes.txt", "placeholder", "z.log"]);
    assert_eq!(third.restore_point.unchanged_files, 3);
    restore_equals(&r, &third.restore_point.id, &src, "third");

    // --read-all reads everything again
    let (_, read) = backup(&r, &src, true);
    assert_eq!(
        read,
        [
            "a/b/random.bin",
            "a/new.txt",
            "a/notes.txt",
            "empty",
            "placeholder",
            "sparse.img",
            "z.log"
        ]
    );
}

#[test]
fn another_asset_or_item_never_lends_its_files() {
    let r = TestRepo::new();
    let src = r.scratch("src");
    fs::write(src.join("f"), text_bytes(10_000, 4)).unwrap();
    backup(&r, &src, false);
    // the same tree under another asset: no previous restore point, everything read
    let (out, read) = backup_as(&r, &src, "other", false);
    assert_eq!(out.restore_point.unchanged_files, 0);
    assert_eq!(read, ["f"]);
}
