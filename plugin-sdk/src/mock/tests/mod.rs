//! Tests of the mock host itself: each checks a rule the real host enforces.

mod caps;
mod engine;
mod restore;

use std::cell::RefCell;
use std::path::Path;

use super::MockHost;
use crate::prelude::*;

type Script = Box<dyn FnOnce(BackupRequest) -> Result<BackupReport>>;

thread_local! {
    static SCRIPT: RefCell<Option<Script>> = RefCell::new(None);
}

/// A plugin whose `backup` runs the test's closure; the other verbs read and restore
/// what options name.
struct Probe;

impl Plugin for Probe {
    fn describe() -> PluginInfo {
        info(
            "probe",
            "Probe",
            "1.2.3",
            &["probe"],
            "runs the test's code",
        )
    }

    fn backup(req: BackupRequest) -> Result<BackupReport> {
        let script = SCRIPT.with(|s| s.borrow_mut().take()).expect("a script");
        script(req)
    }

    fn restore(req: RestoreRequest) -> Result<RestoreReport> {
        let item = require(&req.options, "item", "the item")?;
        let bytes =
            crate::engine::restore_item(item, &req.target, flag(&req.options, "overwrite"))?;
        Ok(RestoreReport::new(bytes))
    }
}

/// Back up asset `asset` with `script` as the plugin's code.
fn backup(
    mock: &MockHost,
    asset: &str,
    script: impl FnOnce(BackupRequest) -> Result<BackupReport> + 'static,
) -> Result<BackupReport> {
    SCRIPT.with(|s| *s.borrow_mut() = Some(Box::new(script)));
    mock.backup::<Probe>(super::backup_request(asset, &[]))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A temporary folder, canonical (so messages and roots compare on every system).
fn tempdir() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().canonicalize().unwrap();
    (d, p)
}

#[test]
#[should_panic(expected = "no MockHost is installed")]
fn host_calls_outside_a_verb_say_what_to_do() {
    let _ = crate::files::stat("/");
}

#[test]
fn the_mock_ends_its_call_when_the_plugin_panics() {
    let mock = MockHost::new().grant("engine");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        mock.run(super::Verb::Backup, || panic!("plugin bug"))
    }));
    assert!(r.is_err());
    // the next call runs normally
    let n = mock.run(super::Verb::Backup, || {
        crate::engine::put_document("d", b"x")
    });
    assert_eq!(n.unwrap().size, 1);
}
