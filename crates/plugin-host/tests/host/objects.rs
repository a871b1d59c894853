//! Object storage through `files`: the host checks a plugin's `s3://` and `azure://` paths
//! against the granted prefixes before the caller's `ObjectStores` sees them, and never
//! writes. The stores here are an in-memory map that records what it was asked (the
//! real ones, over moto and Azurite, are in the CLI's `kube_velero` tests).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rehydra_plugin_host::*;

use crate::support::*;

#[derive(Default)]
struct Stores {
    objects: BTreeMap<String, Vec<u8>>,
    asked: Mutex<Vec<String>>,
}

impl ObjectStores for Stores {
    fn stat(&self, path: &ObjectPath) -> Result<FileEntry, HostError> {
        self.asked.lock().unwrap().push(path.url());
        Err(HostError::new(ErrorCode::Unsupported, "not used here"))
    }
    fn list(
        &self,
        path: &ObjectPath,
        _tick: &mut dyn FnMut() -> Result<(), HostError>,
    ) -> Result<Vec<FileEntry>, HostError> {
        self.stat(path).map(|e| vec![e])
    }
    fn read(&self, path: &ObjectPath, max: u64) -> Result<Vec<u8>, HostError> {
        self.asked.lock().unwrap().push(path.url());
        assert_eq!(max, 16 << 20, "a read is bounded as a small file is");
        self.objects.get(&path.url()).cloned().ok_or_else(|| {
            HostError::new(ErrorCode::NotFound, format!("{}: not found", path.url()))
        })
    }
}

#[test]
fn object_storage_is_read_under_its_grant_only_and_never_written() {
    let h = host(false);
    let p = fixture(&h);
    let mut stores = Stores::default();
    stores.objects.insert(
        "s3://velero/aks/backups/b1/velero-backup.json".into(),
        b"backup".to_vec(),
    );
    stores
        .objects
        .insert("s3://velero/secrets/keys.json".into(), b"keys".to_vec());
    let stores = Arc::new(stores);
    let dir = tempfile::tempdir().unwrap();
    let call = |mode: &str, path: &str, specs: &[&str]| {
        let mut inv = Invocation::new(grants(specs));
        inv.object_stores = stores.clone();
        h.discover(&p, inv, &props(&[("mode", mode), ("path", path)]))
    };
    let granted: &[&str] = &["files:s3://velero/aks"];
    let ok = call(
        "read",
        "S3://velero/aks/backups/b1/velero-backup.json",
        granted,
    )
    .unwrap();
    assert_eq!(ok[0].name, "backup");
    for (path, specs) in [
        ("s3://velero/secrets/keys.json", granted),
        ("s3://velero/aks/../secrets/keys.json", granted),
        ("s3://velero/aksx/keys.json", granted),
        ("azure://velero/aks/backups/b1/velero-backup.json", granted),
        (
            "s3://velero/aks/backups/b1/velero-backup.json",
            &["files:/"],
        ),
    ] {
        let e = call("read", path, specs).unwrap_err();
        assert!(
            matches!(
                e,
                PluginError::Failed {
                    code: ErrorCode::Denied,
                    ..
                }
            ),
            "{path}: {e}"
        );
    }
    // a bucket prefix is never a folder of this machine
    std::fs::write(dir.path().join("local.txt"), "local").unwrap();
    let local = dir.path().join("local.txt");
    assert!(call("read", local.to_str().unwrap(), granted).is_err());
    // and is never written, whatever is granted
    let e = call(
        "write",
        "s3://velero/aks/new.json",
        &["files:s3://velero/aks", "files-write:/"],
    )
    .unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
    assert_eq!(
        *stores.asked.lock().unwrap(),
        vec!["s3://velero/aks/backups/b1/velero-backup.json".to_string()],
        "the stores see only the granted read, normalised"
    );
    // without stores configured, the host says so
    let mut inv = Invocation::new(grants(granted));
    inv.object_stores = Arc::new(NoObjectStores);
    let e = h
        .discover(
            &p,
            inv,
            &props(&[("mode", "read"), ("path", "s3://velero/aks/b1")]),
        )
        .unwrap_err();
    assert!(e.to_string().contains("reads no object storage"), "{e}");
}
