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
    let (mut f, pending) = target.create_file("passwd").unwrap();
    f.write_all(b"restored\n").unwrap();
    // without consent an existing link is an error and nothing changes
    assert!(pending.commit(f, &Meta::default(), false).is_err());
    assert_eq!(read(&secret), "root:x:0:0\n");
    assert_eq!(
        std::fs::read_dir(&root).unwrap().count(),
        2,
        "temporary file removed"
    );
    let (mut f, pending) = target.create_file("passwd").unwrap();
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
    let (f, pending) = target.create_file("x").unwrap();
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
        let (f, pending) = target.create_file(name).unwrap();
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
