//! One vocabulary (ARCHITECTURE.md, "Glossary"): the code says *restore point*, never
//! *snapshot*, except for the few names that are format or someone else's word.

use std::path::{Path, PathBuf};

/// This package's folder as cargo gives it when it runs the test (a binary built from
/// another checkout sharing the build folder would otherwise read that checkout's files).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        std::path::PathBuf::from,
    )
}

/// Words containing "snapshot" that may appear, and why.
const ALLOWED: &[&str] = &[
    // the repository folder keeps its first name (format), and the CLI's hidden alias
    "snapshots",
    // Hyper-V's own cmdlets, parameters and WMI classes (a checkpoint, not ours)
    "Get-VMSnapshot",
    "Remove-VMSnapshot",
    "-VMSnapshot",
    "-SnapshotName",
    "AffectedSnapshot",
    "Msvm_VirtualSystemSnapshotService",
    // a column of SQL Server's RESTORE HEADERONLY answer (the SQL stand-in serves it)
    "IsSnapshot",
    // Kubernetes CSI's kinds and resources (a volume's copy in the storage, not ours), a
    // field of Velero's Backup resource, and the rule about the first
    "VolumeSnapshot",
    "VolumeSnapshotClass",
    "VolumeSnapshotClassList",
    "VolumeSnapshotContent",
    "volumesnapshotclass",
    "volumesnapshotclasses",
    "volumesnapshots",
    "volumesnapshotcontents",
    "volumeSnapshotClassName",
    "volumeSnapshotRef",
    "boundVolumeSnapshotContentName",
    "snapshotHandle",
    // the project that ships the CSI snapshot controller (the stand-in plays it)
    "external-snapshotter",
    "snapshotVolumes",
    "no-snapshot-class",
];

/// The AEAD label of manifests (format).
const LABEL: &str = "rehydra-v1:snapshot";

/// Kubernetes CSI's API group and annotation names (someone else's word, with dots).
const FOREIGN: &[&str] = &["snapshot.storage.k8s.io", "snapshot.storage.kubernetes.io"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "node_modules" || name == "target" || name == "gen" || name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            sources(&p, out);
        } else if ["rs", "ts", "tsx", "wit", "py", "mjs"]
            .iter()
            .any(|x| p.extension().is_some_and(|e| e == *x))
        {
            out.push(p);
        }
    }
}

/// Every word containing "snapshot" (any case) in `text`, with its line number.
fn words(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = FOREIGN
            .iter()
            .fold(line.replace(LABEL, ""), |l, f| l.replace(f, ""));
        for w in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
            if w.to_ascii_lowercase().contains("snapshot") && !ALLOWED.contains(&w) {
                out.push((n + 1, w.to_string()));
            }
        }
    }
    out
}

#[test]
fn code_says_restore_point() {
    let dir = manifest_dir();
    let root = dir.parent().unwrap();
    let mut files = Vec::new();
    for d in [
        "crates",
        "src-tauri/src",
        "tests",
        "ui/src",
        "ui/e2e",
        "plugin-sdk",
        "plugins",
        "xtask",
        "fuzz/fuzz_targets",
    ] {
        sources(&root.join(d), &mut files);
    }
    assert!(
        files.len() > 100,
        "the walk found only {} files",
        files.len()
    );
    let me = Path::new(file!()).file_name().unwrap();
    let mut bad = Vec::new();
    for f in files.iter().filter(|f| f.file_name() != Some(me)) {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (n, w) in words(&text) {
            bad.push(format!(
                "{}:{n}: `{w}`",
                f.strip_prefix(root).unwrap().display()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "say \"restore point\" (see ARCHITECTURE.md, Glossary), or add the word to ALLOWED with the reason:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_check_catches_a_snapshot() {
    assert_eq!(
        words("let snapshot_id = 1;"),
        vec![(1, "snapshot_id".to_string())]
    );
    assert_eq!(words("struct SnapshotDto;").len(), 1);
    assert!(words("seal(\"rehydra-v1:snapshot\", x); dir = \"snapshots\"").is_empty());
    assert!(words("url = \"/apis/snapshot.storage.k8s.io/v1\"").is_empty());
    assert_eq!(words("a snapshot.storage.k8s.io snapshot").len(), 1);
}
