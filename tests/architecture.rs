//! ARCHITECTURE.md stays true: every path it names exists, and every crate of the
//! workspace has its place in the codemap.

use std::path::{Path, PathBuf};

/// This package's folder as cargo gives it when it runs the test (a binary built from
/// another checkout sharing the build folder would otherwise read that checkout's files).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        std::path::PathBuf::from,
    )
}

/// Names in backticks that look like paths but are not source paths.
const NOT_SOURCE: &[&str] = &[
    "/",          // the root, in prose
    "snapshots/", // a folder inside a repository (format), not in this tree
];

fn root() -> PathBuf {
    manifest_dir().join("..")
}

/// Every file and folder of the tree, relative, with `/` separators.
fn tree(dir: &Path, rel: &str, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // build output (the root's `target`, not the `crates/target` crate) and vendored code
        let output = rel.is_empty() && name == "target";
        if output || [".git", "node_modules", "dist"].contains(&name.as_str()) {
            continue;
        }
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(format!("{path}/"));
            tree(&e.path(), &path, out);
        } else {
            out.push(path);
        }
    }
}

/// Backticked words that name paths: `a/b.rs`, `dir/`, `x.rs::item`, `{a,b}.rs`.
fn named_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, word) in text.split('`').enumerate() {
        let path = word.split("::").next().unwrap_or_default();
        let looks = i % 2 == 1
            && !path.is_empty()
            && path.contains('/')
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-./{},".contains(c));
        if !looks || NOT_SOURCE.contains(&path) {
            continue;
        }
        // expand one {a,b} group
        match (path.find('{'), path.find('}')) {
            (Some(a), Some(b)) if a < b => {
                for alt in path[a + 1..b].split(',') {
                    out.push(format!("{}{alt}{}", &path[..a], &path[b + 1..]));
                }
            }
            _ => out.push(path.to_string()),
        }
    }
    out
}

#[test]
fn every_path_architecture_names_exists() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut all = Vec::new();
    tree(&root(), "", &mut all);
    let exists = |p: &str| {
        // a full path from the root, or a path inside a crate named by its tail
        let dir = format!("{}/", p.trim_end_matches('/'));
        all.iter().any(|f| {
            f == p || f == &dir || f.ends_with(&format!("/{p}")) || f.ends_with(&format!("/{dir}"))
        })
    };
    let missing: Vec<String> = named_paths(&text)
        .into_iter()
        .filter(|p| !exists(p))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist (moved or renamed?): {missing:?}"
    );
}

#[test]
fn every_crate_has_its_place_in_the_codemap() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let members = manifest
        .lines()
        .find(|l| l.starts_with("members"))
        .expect("workspace members");
    let absent: Vec<&str> = members
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|m| !text.contains(&format!("`{m}`")) && !text.contains(&format!("`{m}/`")))
        .collect();
    assert!(
        absent.is_empty(),
        "crates missing from ARCHITECTURE.md's codemap: {absent:?}"
    );
}

#[test]
fn the_check_sees_paths_and_expands_groups() {
    assert_eq!(
        named_paths("see `a/b.rs::f` and `tests/{x,y}.rs`, not `--flag` or `x`"),
        ["a/b.rs", "tests/x.rs", "tests/y.rs"]
    );
}

/// The plugin host takes only the engine's vocabulary from `rehydra-core` (what an item
/// holds, which disk formats there are): never its operations, and nothing of `api` or
/// the catalog, so the host stays a platform that any caller supplies grants and an
/// engine to.
#[test]
fn the_plugin_host_takes_only_vocabulary_from_the_engine() {
    const VOCABULARY: &[&str] = &["rehydra_core::ItemKind", "rehydra_core::disk::Format"];
    let mut files = Vec::new();
    let src = root().join("crates/plugin-host/src");
    tree(&src, "", &mut files);
    for f in files.iter().filter(|f| f.ends_with(".rs")) {
        let text = std::fs::read_to_string(src.join(f)).expect("read");
        for (at, _) in text.match_indices("rehydra_core") {
            let rest = &text[at..];
            assert!(
                VOCABULARY.iter().any(|v| rest.starts_with(v)),
                "crates/plugin-host/src/{f} uses `{}` from the engine; the host takes only {VOCABULARY:?}",
                rest.split([';', ' ', '\n']).next().unwrap_or_default()
            );
        }
        for other in ["rehydra_api", "rehydra_catalog"] {
            assert!(
                !text.contains(other),
                "crates/plugin-host/src/{f} uses {other}"
            );
        }
    }
    let manifest = std::fs::read_to_string(root().join("crates/plugin-host/Cargo.toml")).unwrap();
    assert!(!manifest.contains("rehydra-api") && !manifest.contains("rehydra-catalog"));
}
