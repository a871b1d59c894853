use std::io::Write;

use super::*;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[cfg(unix)]
#[test]
fn a_linked_folder_is_never_walked_through() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let root = t.path().join("target");
    std::fs::create_dir(&root).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("docs")).unwrap();
    let target = TargetDir::open(&root).unwrap();
    for create in [false, true] {
        let e = target.walk(&["docs", "cron.d"], create).err().unwrap();
        assert!(
            matches!(
                &e,
                TargetError::NotAFolder {
                    what: "a symbolic link",
                    ..
                }
            ),
            "{e}"
        );
    }
    assert!(matches!(
        target.existing_at(&["docs", "x"]),
        Err(TargetError::NotAFolder { .. })
    ));
    assert_eq!(target.existing_at(&["docs"]).unwrap(), Existing::Symlink);
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[cfg(unix)]
#[test]
fn files_replace_links_and_never_write_through_them() {
    let t = tempfile::tempdir().unwrap();
    let secret = t.path().join("passwd");
    std::fs::write(&secret, "root:x:0:0\n").unwrap();
    let root = t.path().join("target");
    std::fs::create_dir(&root).unwrap();
    // a guest plants the old fixed temporary name and a link at the final name
    std::os::unix::fs::symlink(&secret, root.join(".passwd.rehydra-tmp")).unwrap();
    std::os::unix::fs::symlink(&secret, root.join("passwd")).unwrap();
    let target = TargetDir::open(&root).unwrap();
    let (mut f, pending) = target.create_file("passwd", true).unwrap();
    f.write_all(b"restored\n").unwrap();
    // without consent an existing link is an error and nothing changes
    assert!(pending.commit(f, &Meta::default(), false).is_err());
    assert_eq!(read(&secret), "root:x:0:0\n");
    assert_eq!(
        std::fs::read_dir(&root).unwrap().count(),
        2,
        "temporary file removed"
    );
    let (mut f, pending) = target.create_file("passwd", true).unwrap();
    f.write_all(b"restored\n").unwrap();
    pending.commit(f, &Meta::default(), true).unwrap();
    assert_eq!(read(&secret), "root:x:0:0\n");
    assert!(
        !std::fs::symlink_metadata(root.join("passwd"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(read(&root.join("passwd")), "restored\n");
}

#[test]
fn an_abandoned_file_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let target = TargetDir::create(&t.path().join("new/target")).unwrap();
    let (f, pending) = target.create_file("x", true).unwrap();
    drop(f);
    drop(pending);
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
}

#[cfg(unix)]
#[test]
fn links_are_created_not_followed() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("target");
    let target = TargetDir::create(&root).unwrap();
    target.symlink("a", "/etc", false, None).unwrap();
    assert_eq!(
        std::fs::read_link(root.join("a")).unwrap(),
        Path::new("/etc")
    );
    // the restore's own link is not a folder to write into
    assert!(matches!(
        target.walk(&["a", "cron.d"], true),
        Err(TargetError::NotAFolder { .. })
    ));
    assert!(target.symlink("a", "/tmp", false, None).is_err());
    target.symlink("a", "/tmp", true, None).unwrap();
    assert_eq!(
        std::fs::read_link(root.join("a")).unwrap(),
        Path::new("/tmp")
    );
}

#[cfg(unix)]
#[test]
fn set_id_bits_only_with_the_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let t = tempfile::tempdir().unwrap();
    let target = TargetDir::open(t.path()).unwrap();
    let md = std::fs::metadata(t.path()).unwrap();
    let me = Owner {
        uid: md.uid(),
        gid: md.gid(),
        user: None,
        group: None,
    };
    for (name, owner) in [("anon", None), ("owned", Some(me))] {
        let (f, pending) = target.create_file(name, true).unwrap();
        let meta = Meta {
            mode: Some(0o6755),
            mtime_ns: Some(1_000_000_000),
            owner,
        };
        let owned = pending.commit(f, &meta, false).unwrap();
        let mode = std::fs::metadata(t.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        if owned {
            assert!(running_as_root());
            assert_eq!(mode, 0o6755, "{name}");
        } else {
            assert_eq!(mode, 0o755, "{name}: set-ID bits stripped");
        }
        assert_eq!(
            std::fs::metadata(t.path().join(name)).unwrap().mtime(),
            1,
            "{name}"
        );
    }
}

#[test]
fn mode_bits_rule() {
    let m = Meta {
        mode: Some(0o104_755),
        ..Meta::default()
    };
    assert_eq!(m.mode_bits(false), Some(0o755));
    assert_eq!(m.mode_bits(true), Some(0o4755));
    assert_eq!(Meta::default().mode_bits(true), None);
    let none = Meta {
        mode: Some(0),
        ..Meta::default()
    };
    assert_eq!(
        none.mode_bits(false),
        Some(0),
        "0000 is a mode, not a missing one"
    );
}

#[cfg(unix)]
#[test]
fn folders_take_their_metadata_and_sync() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let t = tempfile::tempdir().unwrap();
    let target = TargetDir::open(t.path()).unwrap();
    let d = target.child("d", true).unwrap().unwrap();
    d.sync().unwrap();
    d.set_meta(&Meta {
        mode: Some(0o2750),
        mtime_ns: Some(5_000_000_000),
        owner: None,
    })
    .unwrap();
    let md = std::fs::metadata(t.path().join("d")).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o750);
    assert_eq!(md.mtime(), 5);
}

/// Writes `text` as `rel`'s file through the cursor, with the modification time `secs`.
fn put(cursor: &mut Cursor, rel: &[&str], text: &str, secs: i64) {
    let (name, parent) = rel.split_last().unwrap();
    let (mut f, pending) = cursor.cd(parent).unwrap().create_file(name, true).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let meta = Meta {
        mtime_ns: Some(secs * 1_000_000_000),
        ..Meta::default()
    };
    cursor.commit(f, pending, &meta, false).unwrap();
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(unix)]
#[test]
fn a_tree_is_in_place_and_durable_once_the_cursor_closes() {
    use std::os::unix::fs::MetadataExt;
    for each_file in [false, true] {
        let t = tempfile::tempdir().unwrap();
        let root = TargetDir::open(t.path()).unwrap();
        let mut cursor = if each_file {
            Cursor::syncing_each_file(root, false)
        } else {
            Cursor::new(root, false).unwrap()
        };
        let batched = cursor.batches();
        assert!(!(each_file && batched));
        put(&mut cursor, &["a", "b", "one"], "1", 1);
        put(&mut cursor, &["a", "b", "two"], "2", 2);
        put(&mut cursor, &["a", "four"], "4", 4);
        put(&mut cursor, &["c", "three"], "3", 3);
        for (rel, secs) in [
            (vec!["a".to_string()], 7),
            (vec!["a".into(), "b".into()], 8),
        ] {
            let meta = Meta {
                mtime_ns: Some(secs * 1_000_000_000),
                ..Meta::default()
            };
            cursor.folder_meta_later(rel, meta);
        }
        if batched {
            // written, not yet in place: no name shows a file that is not durable
            let names = names_in(&t.path().join("a/b"));
            assert!(names.iter().all(|n| n.contains(".rehydra-")), "{names:?}");
        }
        let closed = cursor.close().unwrap();
        assert!(closed.unapplied.is_empty());
        assert_eq!(read(&t.path().join("a/b/one")), "1");
        assert_eq!(read(&t.path().join("a/b/two")), "2");
        assert_eq!(read(&t.path().join("a/four")), "4");
        assert_eq!(read(&t.path().join("c/three")), "3");
        assert_eq!(names_in(&t.path().join("a/b")), ["one", "two"]);
        let mtime = |rel: &str| std::fs::metadata(t.path().join(rel)).unwrap().mtime();
        assert_eq!(mtime("c/three"), 3);
        // folder times after every rename into them (a/four, a/b/*)
        assert_eq!((mtime("a"), mtime("a/b")), (7, 8));
        let s = closed.syncs;
        if batched {
            // the last batch, then everything once more
            assert_eq!((s.files, s.folders, s.file_systems), (0, 0, 2));
        } else {
            // a/b and a (left for c), a/b and a after their times, c, and the root, which
            // received a and c
            assert_eq!((s.files, s.folders, s.file_systems), (4, 6, 0));
        }
    }
}

#[cfg(unix)]
#[test]
fn temporary_files_are_their_owners_only_until_a_recorded_mode_even_0000() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let target = TargetDir::open(t.path()).unwrap();
    let mode = |n: &str| {
        let p = t.path().join(n);
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    };
    // what the system gives a new file here (umask, default ACL)
    std::fs::write(t.path().join("plain"), "").unwrap();
    let default = mode("plain");
    for (name, recorded) in [("shadow", Some(0)), ("key", Some(0o640)), ("guest", None)] {
        let (f, pending) = target.create_file(name, recorded.is_some()).unwrap();
        let tmp = names_in(t.path())
            .into_iter()
            .find(|n| n.contains(".rehydra-"))
            .unwrap();
        assert_eq!(mode(&tmp), if recorded.is_some() { 0o600 } else { default });
        let meta = Meta {
            mode: recorded,
            ..Meta::default()
        };
        pending.commit(f, &meta, false).unwrap();
        assert_eq!(mode(name), recorded.unwrap_or(default), "{name}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_batch_is_renamed_into_place_only_after_one_sync_and_dropped_if_never_closed() {
    let t = tempfile::tempdir().unwrap();
    let mut cursor = Cursor::new(TargetDir::open(t.path()).unwrap(), false).unwrap();
    if !cursor.batches() {
        return; // an older kernel or another file system: file by file (tested above)
    }
    for i in 0..BATCH_FILES + 3 {
        put(&mut cursor, &[&format!("f{i:04}")], "x", 1);
    }
    assert_eq!(cursor.syncs().file_systems, 1);
    assert_eq!(cursor.syncs().files, 0);
    let names = names_in(t.path());
    assert_eq!(
        names.iter().filter(|n| !n.starts_with('.')).count(),
        BATCH_FILES
    );
    assert_eq!(names.iter().filter(|n| n.contains(".rehydra-")).count(), 3);
    // a restore that fails before closing leaves the durable files and no temporaries
    drop(cursor);
    let names = names_in(t.path());
    assert_eq!(names.len(), BATCH_FILES);
    assert!(names.iter().all(|n| !n.starts_with('.')));
}

#[cfg(target_os = "linux")]
#[test]
fn a_batch_is_placed_once_it_holds_its_bytes_or_folders() {
    let t = tempfile::tempdir().unwrap();
    let mut cursor = Cursor::new(TargetDir::open(t.path()).unwrap(), false).unwrap();
    if !cursor.batches() {
        return;
    }
    // the bytes: one (sparse) file as large as a batch
    let (f, pending) = cursor
        .cd::<&str>(&[])
        .unwrap()
        .create_file("big", true)
        .unwrap();
    f.set_len(BATCH_BYTES).unwrap();
    cursor.commit(f, pending, &Meta::default(), false).unwrap();
    assert_eq!(cursor.syncs().file_systems, 1);
    assert!(t.path().join("big").exists());
    // the folders: each waiting file keeps its folder open
    for i in 0..BATCH_FOLDERS + 1 {
        put(&mut cursor, &[&format!("d{i:03}"), "f"], "x", 1);
    }
    assert_eq!(
        cursor.syncs().file_systems,
        2,
        "placed once 128 folders wait"
    );
    assert_eq!(read(&t.path().join("d000/f")), "x");
    assert!(!t.path().join(format!("d{BATCH_FOLDERS:03}/f")).exists());
    assert!(cursor.close().unwrap().unapplied.is_empty());
    assert_eq!(read(&t.path().join(format!("d{BATCH_FOLDERS:03}/f"))), "x");
}

#[test]
fn a_batched_file_over_an_existing_one_is_refused_and_leaves_it() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("x"), "old").unwrap();
    let mut cursor = Cursor::new(TargetDir::open(t.path()).unwrap(), false).unwrap();
    let (mut f, pending) = cursor
        .cd::<&str>(&[])
        .unwrap()
        .create_file("x", true)
        .unwrap();
    f.write_all(b"new").unwrap();
    // refused now (a sync per file) or when the batch is placed
    let r = cursor
        .commit(f, pending, &Meta::default(), false)
        .and_then(|_| cursor.close().map(|_| ()));
    let e = r.expect_err("an existing file is not replaced without consent");
    assert!(e.to_string().contains("moving into"), "{e}");
    assert_eq!(names_in(t.path()), ["x"]);
    assert_eq!(read(&t.path().join("x")), "old");
}
