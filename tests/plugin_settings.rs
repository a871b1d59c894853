//! Declared plugin settings: the host checks every call against what the plugin's
//! manifest declares, before the plugin runs.

use rehydra_api::plugins::Property;
use rehydra_api::{Cancel, Code, NoProgress};
use rehydra_integration_tests::TestRepo;

fn prop(name: &str, value: &str) -> Property {
    Property {
        name: name.into(),
        value: value.into(),
    }
}

#[test]
fn calls_are_checked_against_the_settings_a_plugin_declares() {
    let t = TestRepo::new();
    let p = crate::plugins::platform(&t);
    // example-files declares `root` (discover, required) and `overwrite` (restore, bool)
    let info = p.info("example-files").unwrap();
    let names: Vec<&str> = info.manifest.settings.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["root", "overwrite"]);

    // refused before the plugin runs: it holds no grant yet, so a run would be denied
    let e = p.discover("example-files", &[]).unwrap_err();
    assert_eq!(e.code, Code::InvalidInput, "{}", e.message);
    assert!(e.message.contains("`root` is required"), "{}", e.message);
    let e = p
        .discover("example-files", &[prop("root", "/srv"), prop("rot", "/srv")])
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidInput);
    assert!(
        e.message.contains("`rot` is not a discovery setting") && e.message.contains("(it takes: root)"),
        "{}",
        e.message
    );
    let s = t.open();
    let e = p
        .backup(&s, "example-files", "/srv", &[prop("overwrite", "true")], &[], &NoProgress, &Cancel::default())
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidInput);
    assert!(e.message.contains("takes none for backup"), "{}", e.message);
    // a declared setting of the right kind passes the check (and the plugin then runs:
    // denied, since nothing was granted)
    let e = p.discover("example-files", &[prop("root", "/srv")]).unwrap_err();
    assert_eq!(e.code, Code::PluginFailed, "{}", e.message);
}
