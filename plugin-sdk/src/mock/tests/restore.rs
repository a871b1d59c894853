//! `restore-item`: where items go, merging, conflicts and overwrite.

use std::path::Path;

use super::{Probe, tempdir};
use crate::mock::{MockHost, MockPoint};
use crate::prelude::*;

/// Restore `item` of the mock's newest restore point to `target`.
fn restore(mock: &MockHost, item: &str, target: &Path, overwrite: bool) -> Result<u64> {
    let ow = if overwrite { "true" } else { "false" };
    let req = mock.restore_request(target, &[("item", item), ("overwrite", ow)]);
    mock.restore::<Probe>(req).map(|r| r.bytes)
}

/// A source folder: `a/x` ("x1"), `a/y` ("y1"), `top` ("top"), and a link `l` → `a/x`.
fn source(root: &Path) -> std::path::PathBuf {
    let src = root.join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("a/x"), b"x1").unwrap();
    std::fs::write(src.join("a/y"), b"y1").unwrap();
    std::fs::write(src.join("top"), b"top").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::os::unix::fs::symlink("a/x", src.join("l")).unwrap();
        std::fs::set_permissions(src.join("top"), std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    src
}

fn mock(root: &Path) -> MockHost {
    let point = MockPoint::new("src")
        .tree("files", source(root))
        .unwrap()
        .stream(r"C:\exports\config.xml", "<c/>")
        .disk("disk", vec![1, 2, 3])
        .document("meta", "{}");
    std::fs::create_dir_all(root.join("out")).unwrap();
    MockHost::new()
        .grant("engine")
        .grant_files(root.join("src"))
        .grant_files_write(root.join("out"))
        .with_point(point)
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_tree_comes_back_as_it_was() {
    let (_d, root) = tempdir();
    let mock = mock(&root);
    let t = root.join("out/new/place");
    assert_eq!(restore(&mock, "files", &t, false).unwrap(), 7);
    assert_eq!(read(&t.join("a/x")), b"x1");
    assert_eq!(read(&t.join("a/y")), b"y1");
    assert_eq!(read(&t.join("top")), b"top");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::read_link(t.join("l")).unwrap(), Path::new("a/x"));
        let mode = std::fs::metadata(t.join("top"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
    }
    // no temporary file is left behind
    assert_eq!(
        std::fs::read_dir(&t).unwrap().count(),
        if cfg!(unix) { 3 } else { 2 }
    );
    assert!(
        mock.audit()
            .iter()
            .any(|a| a.allowed && a.detail == "restore item files")
    );
}

#[test]
fn a_tree_is_merged_into_a_folder_and_conflicts_refuse_everything_without_overwrite() {
    let (_d, root) = tempdir();
    let mock = mock(&root);
    let t = root.join("out/existing");
    std::fs::create_dir_all(t.join("a")).unwrap();
    std::fs::write(t.join("mine"), b"mine").unwrap();
    std::fs::write(t.join("a/x"), b"changed").unwrap();
    let e = restore(&mock, "files", &t, false).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("already exist"), "{}", e.message);
    // nothing was written, not even what did not conflict
    assert_eq!(read(&t.join("a/x")), b"changed");
    assert!(!t.join("top").exists() && !t.join("a/y").exists());
    // with overwrite the conflicting file is replaced, the rest of the folder kept
    restore(&mock, "files", &t, true).unwrap();
    assert_eq!(read(&t.join("a/x")), b"x1");
    assert_eq!(read(&t.join("top")), b"top");
    assert_eq!(read(&t.join("mine")), b"mine");
}

#[cfg(unix)]
#[test]
fn a_link_in_the_way_is_replaced_itself_never_what_it_points_to() {
    let (_d, root) = tempdir();
    let mock = mock(&root);
    let t = root.join("out/t");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(root.join("out/precious"), b"precious").unwrap();
    std::os::unix::fs::symlink(root.join("out/precious"), t.join("top")).unwrap();
    assert_eq!(
        restore(&mock, "files", &t, false).unwrap_err().code,
        ErrorCode::InvalidInput
    );
    restore(&mock, "files", &t, true).unwrap();
    assert_eq!(read(&root.join("out/precious")), b"precious");
    assert!(
        !std::fs::symlink_metadata(t.join("top"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(read(&t.join("top")), b"top");
}

#[test]
fn a_folder_where_the_item_has_a_file_or_the_reverse_is_refused_either_way() {
    let (_d, root) = tempdir();
    let mock = mock(&root);
    let t = root.join("out/t");
    std::fs::create_dir_all(t.join("top")).unwrap();
    for overwrite in [false, true] {
        let e = restore(&mock, "files", &t, overwrite).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("not a regular file"), "{}", e.message);
    }
    let u = root.join("out/u");
    std::fs::create_dir_all(&u).unwrap();
    std::fs::write(u.join("a"), b"file where a folder goes").unwrap();
    let e = restore(&mock, "files", &u, true).unwrap_err();
    assert!(
        e.message.contains("where the restore point has a folder"),
        "{}",
        e.message
    );
    assert!(!u.join("top").exists());
}

#[test]
fn other_items_go_to_the_target_or_inside_an_existing_folder() {
    let (_d, root) = tempdir();
    let mock = mock(&root);
    let out = root.join("out");
    // into an existing folder, under the last component of the item's name
    assert_eq!(
        restore(&mock, r"C:\exports\config.xml", &out, false).unwrap(),
        4
    );
    assert_eq!(read(&out.join("config.xml")), b"<c/>");
    let e = restore(&mock, r"C:\exports\config.xml", &out, false).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput, "no overwrite: {e:?}");
    // to a file of its own
    restore(&mock, "meta", &out.join("meta.json"), false).unwrap();
    assert_eq!(read(&out.join("meta.json")), b"{}");
    // only a disk may be written as a disk image
    let e = restore(&mock, "meta", &out.join("x.vhdx"), false).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    restore(&mock, "disk", &out.join("d.VHDX"), false).unwrap();
    assert_eq!(read(&out.join("d.VHDX")), [1, 2, 3]);
    let e = restore(&mock, "nothing", &out.join("n"), false).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("its items are: files"), "{}", e.message);
}

#[test]
fn restores_need_files_write_on_the_target() {
    let (_d, root) = tempdir();
    let mock = mock(&root);
    for t in [root.join("src/inside-read-grant"), root.join("elsewhere")] {
        let e = restore(&mock, "files", &t, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::Denied);
        assert!(e.message.contains("`files-write`"), "{}", e.message);
        assert!(!t.exists());
    }
}
