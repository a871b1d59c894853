//! The plugin's verbs run natively under the SDK's mock host: no packing, signing,
//! installing or repository. The first test is the example in `plugin-sdk/README.md`.

use std::collections::BTreeMap;
use std::path::Path;

use rehydra_plugin_sdk::mock::{MockPoint, props};

use super::Folders;
use rehydra_plugin_sdk::mock::{MockHost, backup_request};
use rehydra_plugin_sdk::prelude::*;

#[test]
fn backs_up_plans_restores_and_verifies_a_folder() -> Result<()> {
    let (src, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::create_dir(src.path().join("a")).unwrap();
    std::fs::write(src.path().join("a/report.txt"), b"quarterly numbers").unwrap();
    let mock = MockHost::new()
        .grant("engine")
        .grant_files(src.path())
        .grant_files_write(out.path());

    mock.backup::<Folders>(backup_request(src.path().to_str().unwrap(), &[]))?;
    let items: Vec<String> = mock.items().into_iter().map(|i| i.name).collect();
    assert_eq!(items, ["files", "asset.json"]);

    // an existing target blocks the plan unless the admin allows overwriting
    let plan = mock.plan_restore::<Folders>(mock.restore_request(out.path(), &[]))?;
    assert_eq!(plan.blockers.len(), 1, "{:?}", plan.blockers);

    let target = out.path().join("restored");
    let req = mock.restore_request(&target, &[]);
    let plan = mock.plan_restore::<Folders>(req.clone())?;
    assert!(plan.blockers.is_empty() && plan.steps.len() == 1);
    assert_eq!(mock.restore::<Folders>(req.clone())?.bytes, 17);
    let restored = std::fs::read(target.join("a/report.txt")).unwrap();
    assert_eq!(restored, b"quarterly numbers");
    assert!(mock.verify::<Folders>(req)?.ok);
    Ok(())
}

/// Every file below `dir` by relative path, with its contents.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A folder with a few files, nested, one of them larger than a chunk of anything.
fn sample(root: &Path) {
    std::fs::create_dir_all(root.join("docs/2024")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("docs/2024/q1.txt"), b"first quarter").unwrap();
    std::fs::write(root.join("docs/readme.md"), b"# docs").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
}

#[test]
fn a_restored_folder_holds_what_was_backed_up_and_overwrite_merges() -> Result<()> {
    let (src, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    sample(src.path());
    let mock = MockHost::new()
        .grant("engine")
        .grant_files(src.path())
        .grant_files_write(out.path());
    let report = mock.backup::<Folders>(backup_request(src.path().to_str().unwrap(), &[]))?;
    assert_eq!(report.consistency, "crash");
    let point = mock.last_point().unwrap();
    assert_eq!(
        (point.plugin_id.as_str(), point.workload.as_str()),
        ("example-files", "files")
    );

    let target = out.path().join("copy");
    mock.restore::<Folders>(mock.restore_request(&target, &[]))?;
    assert_eq!(contents(&target), contents(src.path()));
    assert!(target.join("empty").is_dir());

    // restoring again over a changed copy: the plan warns, the restore without
    // overwrite refuses and changes nothing, with overwrite it puts the files back and
    // keeps what the backup did not have
    std::fs::write(target.join("docs/readme.md"), b"edited").unwrap();
    std::fs::write(target.join("notes.txt"), b"mine").unwrap();
    let again = mock.restore_request(&target, &[("overwrite", "yes")]);
    let plan = mock.plan_restore::<Folders>(again.clone())?;
    assert!(
        plan.blockers.is_empty() && plan.warnings.len() == 1,
        "{plan:?}"
    );
    let e = mock
        .restore::<Folders>(mock.restore_request(&target, &[]))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert_eq!(
        std::fs::read(target.join("docs/readme.md")).unwrap(),
        b"edited"
    );
    mock.restore::<Folders>(again)?;
    let mut expected = contents(src.path());
    expected.insert("notes.txt".into(), b"mine".to_vec());
    assert_eq!(contents(&target), expected);
    Ok(())
}

#[test]
fn a_restore_point_without_the_folder_is_a_blocker_and_fails_verification() -> Result<()> {
    let out = tempfile::tempdir().unwrap();
    let point = MockPoint::new("/srv/data").document("asset.json", r#"{"path":"/srv/data"}"#);
    let mock = MockHost::new()
        .grant("engine")
        .grant_files_write(out.path())
        .with_point(point);
    let req = mock.restore_request(out.path().join("t"), &[]);
    let plan = mock.plan_restore::<Folders>(req.clone())?;
    assert_eq!(plan.blockers, ["the restore point has no `files` item"]);
    assert!(plan.steps.is_empty());
    assert!(!mock.verify::<Folders>(req.clone())?.ok);
    // the restore itself (which the app would not run) is refused by the engine
    let e = mock.restore::<Folders>(req).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(!out.path().join("t").exists());
    Ok(())
}

#[test]
fn what_the_admin_did_not_grant_is_denied() {
    let data = tempfile::tempdir().unwrap();
    sample(data.path());
    let root = data.path().to_str().unwrap();
    // nothing granted: discover cannot list the root
    let e = MockHost::new()
        .discover::<Folders>(props(&[("root", root)]))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Denied);
    assert!(e.message.contains("`files`"), "{}", e.message);
    // reading granted, but not the engine: the backup fails and records nothing
    let mock = MockHost::new().grant_files(data.path());
    let e = mock
        .backup::<Folders>(backup_request(root, &[]))
        .unwrap_err();
    assert!(e.message.contains("`engine`"), "{}", e.message);
    assert!(mock.last_point().is_none());
    // a restore outside the write grant is denied and writes nothing
    let mock = mock.grant("engine");
    mock.backup::<Folders>(backup_request(root, &[])).unwrap();
    let elsewhere = data.path().join("restored-here");
    let e = mock
        .restore::<Folders>(mock.restore_request(&elsewhere, &[]))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Denied);
    assert!(!elsewhere.exists());
}

#[test]
fn discover_lists_sub_folders_and_assess_finds_empty_ones() -> Result<()> {
    let data = tempfile::tempdir().unwrap();
    sample(data.path());
    let root = data.path().to_str().unwrap();
    let mock = MockHost::new().grant_files(data.path());
    let assets = mock.discover::<Folders>(props(&[("root", root)]))?;
    let mut names: Vec<&str> = assets.iter().map(|a| a.name.as_str()).collect();
    names.sort_unstable();
    let root_name = data.path().file_name().unwrap().to_str().unwrap();
    let mut expected = vec!["docs", "empty", root_name];
    expected.sort_unstable();
    assert_eq!(names, expected);
    assert!(
        assets
            .iter()
            .skip(1)
            .all(|a| a.parent.as_deref() == Some(root))
    );
    let findings = mock.assess::<Folders>(assets, vec![])?;
    assert_eq!(findings.len(), 1);
    assert!(findings[0].asset.as_deref().unwrap().ends_with("/empty"));
    // the required setting is named when missing
    let e = mock.discover::<Folders>(vec![]).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    Ok(())
}

#[test]
fn the_readme_example_is_the_first_test_of_this_file() {
    let this = include_str!("tests.rs");
    let start = this.find("use super::Folders;").unwrap();
    let end = start + this[start..].find("\n}\n").unwrap() + 3;
    let readme = include_str!("../../../plugin-sdk/README.md");
    assert!(
        readme.contains(&this[start..end]),
        "plugin-sdk/README.md must show the first test of plugins/example-files/src/tests.rs verbatim"
    );
}
