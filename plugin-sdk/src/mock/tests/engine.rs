//! The engine: item names, what each verb may do, limits, previous restore points.

use super::{backup, s, tempdir};
use crate::engine::{self, DiskFormat, DiskRange};
use crate::mock::{MockHost, MockPoint, Verb};
use crate::prelude::*;

fn code<T: std::fmt::Debug>(r: Result<T>) -> ErrorCode {
    r.unwrap_err().code
}

#[test]
fn item_names_are_checked_and_unique_across_kinds() {
    let (_d, root) = tempdir();
    std::fs::write(root.join("f"), b"data").unwrap();
    let mock = MockHost::new().grant("engine").grant_files(&root);
    let f = root.join("f");
    mock.run(Verb::Backup, || {
        engine::ingest_path("files", s(&root)).unwrap();
        assert_eq!(
            code(engine::put_document("files", b"{}")),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            code(engine::ingest_file("files", s(&f))),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            code(engine::put_document("", b"{}")),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            code(engine::put_document("a\nb", b"{}")),
            ErrorCode::InvalidInput
        );
        let long = "x".repeat(4097);
        assert_eq!(
            code(engine::put_document(&long, b"{}")),
            ErrorCode::InvalidInput
        );
        engine::put_document(r"C:\VMs\a.vhdx", b"{}").unwrap();
        let w = engine::open_stream("files").unwrap();
        w.write(b"x").unwrap();
        // a stream's name is checked when it is finished
        assert_eq!(code(w.finish()), ErrorCode::InvalidInput);
    });
    let names: Vec<String> = mock.items().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["files", r"C:\VMs\a.vhdx"]);
}

#[test]
fn each_verb_gets_only_the_engine_calls_the_contract_allows() {
    let (_d, root) = tempdir();
    std::fs::write(root.join("f"), b"data").unwrap();
    let mock = MockHost::new()
        .grant("engine")
        .grant_files_write(&root)
        .with_point(MockPoint::new("a").document("doc", "{}"));
    let f = root.join("f");
    let target = root.join("out");
    for verb in [Verb::Discover, Verb::Assess] {
        mock.run(verb, || {
            let e = engine::put_document("d", b"x").unwrap_err();
            assert_eq!(e.code, ErrorCode::Unsupported);
            assert!(e.message.contains(verb.name()), "{}", e.message);
            assert_eq!(code(engine::items()), ErrorCode::Unsupported);
        });
    }
    mock.run(Verb::Backup, || {
        assert_eq!(code(engine::items()), ErrorCode::Unsupported);
        assert_eq!(code(engine::read_document("doc")), ErrorCode::Unsupported);
        assert_eq!(
            code(engine::restore_item("doc", s(&target), false)),
            ErrorCode::Unsupported
        );
    });
    for verb in [Verb::PlanRestore, Verb::Restore, Verb::Verify] {
        mock.run(verb, || {
            assert_eq!(engine::items().unwrap().len(), 1);
            assert_eq!(engine::read_document("doc").unwrap(), b"{}");
            assert_eq!(
                code(engine::ingest_file("x", s(&f))),
                ErrorCode::Unsupported
            );
            assert_eq!(code(engine::put_document("x", b"")), ErrorCode::Unsupported);
            assert_eq!(code(engine::previous()), ErrorCode::Unsupported);
            assert_eq!(
                code(engine::read_previous_document("doc")),
                ErrorCode::Unsupported
            );
            let w = engine::open_stream("s").unwrap();
            assert_eq!(code(w.finish()), ErrorCode::Unsupported);
            let r = engine::restore_item("doc", s(&target), false);
            if verb == Verb::Restore {
                assert_eq!(r.unwrap(), 2);
            } else {
                assert_eq!(code(r), ErrorCode::Unsupported);
            }
        });
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"{}");
}

#[test]
fn sources_are_read_as_the_engine_reads_them() {
    let (_d, root) = tempdir();
    std::fs::create_dir(root.join("dir")).unwrap();
    std::fs::write(root.join("f"), b"0123456789").unwrap();
    let mock = MockHost::new().grant("engine").grant_files(&root);
    let at = |p: &str| root.join(p).to_str().unwrap().to_string();
    mock.run(Verb::Backup, || {
        assert_eq!(
            code(engine::ingest_file("a", &at("dir"))),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            code(engine::ingest_disk("a", &at("dir"), DiskFormat::Raw)),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            code(engine::ingest_file("a", &at("none"))),
            ErrorCode::Failed
        );
        assert_eq!(
            code(engine::ingest_path("a", &at("none"))),
            ErrorCode::Failed
        );
        assert_eq!(
            code(engine::ingest_range("a", &at("f"), 8, 3)),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            code(engine::ingest_range("a", &at("f"), u64::MAX, 2)),
            ErrorCode::InvalidInput
        );
        let r = engine::ingest_range("range", &at("f"), 2, 3).unwrap();
        assert_eq!((r.kind, r.size), (ItemKind::Stream, 3));
        let t = engine::ingest_path("tree", &at("")).unwrap();
        assert_eq!((t.kind, t.size), (ItemKind::Tree, 10));
        let one = engine::ingest_path("one", &at("f")).unwrap();
        // the same content again is not new to the repository
        assert_eq!((one.size, one.new_bytes), (10, 0));
    });
    assert_eq!(mock.item_bytes("range").unwrap(), b"234");
    assert_eq!(mock.item_bytes("one").unwrap(), b"0123456789");
    assert_eq!(
        mock.item_bytes("tree"),
        None,
        "a folder tree has no single content"
    );
}

#[test]
fn documents_and_streams_have_the_hosts_limits() {
    let mock = MockHost::new().grant("engine");
    mock.run(Verb::Backup, || {
        let big = vec![7u8; (16 << 20) + 1];
        assert_eq!(
            code(engine::put_document("d", &big)),
            ErrorCode::InvalidInput
        );
        engine::put_document("d", &big[..16 << 20]).unwrap();
        let w = engine::open_stream("s").unwrap();
        assert_eq!(
            code(w.write(&vec![0; (4 << 20) + 1])),
            ErrorCode::InvalidInput
        );
        let chunk = vec![1u8; 4 << 20];
        for _ in 0..64 {
            w.write(&chunk).unwrap();
        }
        let e = w.write(b"x").unwrap_err();
        assert!(e.message.contains("256 MiB"), "{}", e.message);
        assert_eq!(w.finish().unwrap().size, 256 << 20);
        assert_eq!(code(w.finish()), ErrorCode::InvalidInput);
        assert_eq!(code(w.write(b"x")), ErrorCode::InvalidInput);
        // 32 streams per call, this one included
        let open: Vec<_> = (1..32)
            .map(|i| engine::open_stream(&format!("s{i}")).unwrap())
            .collect();
        assert_eq!(open.len(), 31);
        assert_eq!(code(engine::open_stream("s33")), ErrorCode::InvalidInput);
    });
    // the counts are per call
    mock.run(Verb::Backup, || {
        engine::open_stream("again").unwrap().finish().unwrap()
    });
}

#[test]
fn a_backup_records_a_restore_point_and_the_next_one_sees_it() {
    let (_d, root) = tempdir();
    let disk = root.join("disk.raw");
    std::fs::write(&disk, b"AAAAAAAA").unwrap();
    let mock = MockHost::new().grant("engine").grant_files(&root);
    let e = backup(&mock, "vm1", |_| {
        assert_eq!(engine::previous().unwrap().map(|p| p.id), None);
        assert_eq!(
            code(engine::read_previous_document("state")),
            ErrorCode::NotFound
        );
        Err(Error::new(ErrorCode::Failed, "plugin failed"))
    });
    assert_eq!(e.unwrap_err().message, "plugin failed");
    assert!(mock.points().is_empty());
    let d = disk.clone();
    backup(&mock, "vm1", move |_| {
        let changed = [DiskRange {
            offset: 0,
            length: 1,
        }];
        let e = engine::ingest_disk_changed("disk", s(&d), DiskFormat::Raw, "disk", &changed);
        assert_eq!(code(e), ErrorCode::NotFound);
        engine::ingest_disk("disk", s(&d), DiskFormat::Auto)?;
        engine::put_document("state", b"v1")?;
        Ok(BackupReport::new("application"))
    })
    .unwrap();
    let first = mock.last_point().unwrap();
    assert_eq!(
        (
            first.asset.as_str(),
            first.plugin_id.as_str(),
            first.workload.as_str()
        ),
        ("vm1", "probe", "probe")
    );
    assert_eq!(
        (first.plugin_version.as_str(), first.consistency.as_str()),
        ("1.2.3", "application")
    );
    std::fs::write(&disk, b"AAxxAAAy").unwrap();
    let (d, id) = (disk.clone(), first.id.clone());
    backup(&mock, "vm1", move |_| {
        assert_eq!(engine::previous().unwrap().unwrap().id, id);
        assert_eq!(engine::read_previous_document("state")?, b"v1");
        assert_eq!(
            code(engine::read_previous_document("disk")),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            code(engine::read_previous_document("none")),
            ErrorCode::NotFound
        );
        let bad = [DiskRange {
            offset: 8,
            length: 1,
        }];
        let e = engine::ingest_disk_changed("d", s(&d), DiskFormat::Raw, "disk", &bad);
        assert_eq!(code(e), ErrorCode::InvalidInput);
        let e = engine::ingest_disk_changed("d", s(&d), DiskFormat::Raw, "state", &[]);
        assert_eq!(code(e), ErrorCode::InvalidInput);
        // only the changed ranges are read: byte 7 keeps its old content
        let changed = [DiskRange {
            offset: 2,
            length: 2,
        }];
        engine::ingest_disk_changed("disk", s(&d), DiskFormat::Raw, "disk", &changed)?;
        Ok(BackupReport::new("crash"))
    })
    .unwrap();
    assert_eq!(mock.item_bytes("disk").unwrap(), b"AAxxAAAA");
    assert_eq!(mock.points().len(), 2);
    // another asset has no previous restore point
    backup(&mock, "vm2", |_| {
        assert!(engine::previous()?.is_none());
        Ok(BackupReport::new("crash"))
    })
    .unwrap();
    // nor has the same asset's point of another plugin
    let other = MockHost::new()
        .grant("engine")
        .with_point(MockPoint::new("vm1").plugin("other", "1.0.0"));
    backup(&other, "vm1", |_| {
        assert!(engine::previous()?.is_none());
        Ok(BackupReport::new("crash"))
    })
    .unwrap();
}

#[test]
fn a_point_the_test_supplies_is_the_previous_one_and_can_be_restored() {
    let (_d, root) = tempdir();
    let mock = MockHost::new()
        .grant("engine")
        .grant_files_write(&root)
        .with_point(
            MockPoint::new("vm1")
                .document("state", "v0")
                .disk("disk", vec![0; 4]),
        );
    backup(&mock, "vm1", |_| {
        let p = engine::previous()?.unwrap();
        // what the test left empty is the plugin's own
        assert_eq!(
            (p.plugin_id.as_str(), p.workload.as_str()),
            ("probe", "probe")
        );
        assert_eq!(p.items.len(), 2);
        assert_eq!(engine::read_previous_document("state")?, b"v0");
        Ok(BackupReport::new("crash"))
    })
    .unwrap();
    mock.run(Verb::Verify, || {
        // `run` reads the newest restore point: the backup's, which holds nothing
        assert!(engine::items().unwrap().is_empty());
    });
    let mut req = RestoreRequest {
        restore_point: mock.points()[0].clone(),
        target: s(&root.join("state.txt")).into(),
        options: crate::mock::props(&[("item", "state")]),
    };
    assert_eq!(mock.restore::<super::Probe>(req.clone()).unwrap().bytes, 2);
    assert_eq!(std::fs::read(root.join("state.txt")).unwrap(), b"v0");
    // a restore point the mock does not hold cannot be read
    req.restore_point.id = "unknown".into();
    let e = mock.restore::<super::Probe>(req).unwrap_err();
    assert!(e.message.contains("with_point"), "{}", e.message);
}

#[test]
fn another_point_of_the_same_asset_is_found_and_read_others_never() {
    let old = MockPoint::new("a").document("doc", "v1");
    let other_asset = MockPoint::new("b").document("doc", "secret");
    let other_plugin = MockPoint::new("a")
        .plugin("someone-else", "1")
        .document("doc", "x");
    let (old_id, b_id, p_id) = (
        old.record().id,
        other_asset.record().id,
        other_plugin.record().id,
    );
    let mock = MockHost::new()
        .grant("engine")
        .with_point(old)
        .with_point(other_asset)
        .with_point(other_plugin)
        .with_point(MockPoint::new("a").document("doc", "v2"));
    mock.run(Verb::PlanRestore, || {
        assert_eq!(engine::read_document("doc").unwrap(), b"v2");
        // the mock's ids are counters: a short prefix names several points of `a`
        let e = engine::find_point("0000").unwrap_err();
        assert!(
            e.code == ErrorCode::NotFound && e.message.contains("more digits"),
            "{e:?}"
        );
        let found = engine::find_point(&old_id).unwrap();
        assert_eq!(found.id, old_id);
        assert_eq!(found.asset, "a");
        assert_eq!(engine::read_point_document(&old_id, "doc").unwrap(), b"v1");
        // the newest of this asset and plugin is the one in hand
        assert_eq!(engine::read_point_document("latest", "doc").unwrap(), b"v2");
        for hidden in [&b_id, &p_id] {
            assert_eq!(code(engine::find_point(hidden)), ErrorCode::NotFound);
            assert_eq!(
                code(engine::read_point_document(hidden, "doc")),
                ErrorCode::NotFound
            );
        }
        for bad in ["", "abc", "zzzz", "../x"] {
            assert_eq!(
                code(engine::find_point(bad)),
                ErrorCode::InvalidInput,
                "{bad}"
            );
        }
        assert_eq!(
            code(engine::read_point_document(&old_id, "none")),
            ErrorCode::NotFound
        );
        // one call names at most 64 different points (reading one again costs nothing)
        // five named above, 59 more here
        for i in 0..59 {
            let spec = format!("ffff{i:04x}");
            assert_eq!(code(engine::find_point(&spec)), ErrorCode::NotFound);
        }
        assert_eq!(
            code(engine::find_point("ffffeeee")),
            ErrorCode::InvalidInput
        );
        assert_eq!(engine::read_point_document(&old_id, "doc").unwrap(), b"v1");
    });
    mock.run(Verb::Backup, || {
        assert_eq!(code(engine::find_point(&old_id)), ErrorCode::Unsupported);
    });
}
