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

/// What a figure ARCHITECTURE.md quotes must match in the code.
enum Source {
    /// Each text stands in the file (the constant's definition).
    Code(&'static str, &'static [&'static str]),
    /// The file has fewer lines than this.
    FewerLines(&'static str, usize),
    /// A measurement, not a constant (re-measured with the benchmarks).
    Measured,
}

/// Every figure with a unit that ARCHITECTURE.md quotes, the words around it as they
/// stand there (white space aside), and where the code says the same.
const FIGURES: &[(&str, Source)] = &[
    (
        "names (1–4096 bytes",
        Source::Code(
            "crates/core/src/manifest.rs",
            &["MAX_ITEM_NAME: usize = 4096"],
        ),
    ),
    (
        "gaps under 256 KiB",
        Source::Code("crates/core/src/fetch.rs", &["MAX_GAP: u64 = 256 << 10"]),
    ),
    (
        "reads up to 8 MiB",
        Source::Code("crates/core/src/fetch.rs", &["MAX_READ: u64 = 8 << 20"]),
    ),
    (
        "reads a content map 64 chunks at a time",
        Source::Code("crates/core/src/contentmap.rs", &["MAP_BATCH: usize = 64"]),
    ),
    (
        "chunked and stored in 2 MiB batches (`store_map`)",
        Source::Code(
            "crates/core/src/archiver.rs",
            &["BATCH_BYTES: usize = 2 << 20"],
        ),
    ),
    (
        "keeps the next 16 MiB of chunks in flight on four reader threads",
        Source::Code(
            "crates/core/src/restorer/readahead.rs",
            &["AHEAD: u64 = 16 << 20", "READERS: usize = 4"],
        ),
    ),
    (
        "one `syncfs` per batch of 512 files or 256 MiB (or 128 folders)",
        Source::Code(
            "crates/target/src/cursor.rs",
            &[
                "BATCH_FILES: usize = 512",
                "BATCH_BYTES: u64 = 256 << 20",
                "BATCH_FOLDERS: usize = 128",
            ],
        ),
    ),
    (
        "a 10 ms ticker",
        Source::Code(
            "crates/plugin-host/src/runtime.rs",
            &["TICK: Duration = Duration::from_millis(10)"],
        ),
    ),
    (
        "bulk work beyond 50 ms per call",
        Source::Code(
            "crates/plugin-host/src/limits.rs",
            &["ENGINE_CALL_CHARGE: Duration = Duration::from_millis(50)"],
        ),
    ),
    (
        "clock beyond 50 ms per call",
        Source::Code(
            "crates/plugin-host/src/limits.rs",
            &["ENGINE_CALL_CHARGE: Duration = Duration::from_millis(50)"],
        ),
    ),
    (
        "no redirects, 64 MiB bodies",
        Source::Code(
            "crates/plugin-rules/src/http.rs",
            &["BODY_MAX: usize = 64 << 20"],
        ),
    ),
    (
        "64 MiB per page",
        Source::Code(
            "crates/plugin-host/src/state/ldap.rs",
            &["PAGE_BYTES_MAX: usize = 64 << 20"],
        ),
    ),
    (
        "64 MiB per answer",
        Source::Code(
            "crates/plugin-host/src/state/sql.rs",
            &["ANSWER_BYTES_MAX: usize = 64 << 20"],
        ),
    ),
    (
        "4096 bytes and 128 components",
        Source::Code(
            "crates/plugin-rules/src/grants.rs",
            &[
                "PATH_MAX_BYTES: usize = 4096",
                "PATH_MAX_DEPTH: usize = 128",
            ],
        ),
    ),
    (
        "(the worked example, < 100 lines)",
        Source::FewerLines("plugins/example-files/src/lib.rs", 100),
    ),
    (
        "chunks into 2 MiB batches →",
        Source::Code(
            "crates/core/src/archiver.rs",
            &["BATCH_BYTES: usize = 2 << 20"],
        ),
    ),
    (
        "every 8 packs",
        Source::Code("crates/core/src/writer.rs", &["PACKS_PER_INDEX: usize = 8"]),
    ),
    (
        "2 batches of 2 MiB in flight, one 16 MiB pack",
        Source::Code("crates/core/src/repository.rs", &["pack_size: 16 << 20"]),
    ),
    ("(0.13 bytes per chunk)", Source::Measured),
];

/// The units a quoted figure carries.
const UNITS: &[&str] = &[
    "KiB",
    "MiB",
    "GiB",
    "ms",
    "bytes",
    "files",
    "chunks",
    "packs",
    "lines",
    "components",
    "folders",
    "threads",
];

fn one_spaced(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Byte ranges of `text` holding a number followed by a unit (`16 MiB`, `8 packs`).
fn figures_in(text: &str) -> Vec<std::ops::Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.' || b[j] == b',') {
            j += 1;
        }
        let rest = text[j..].trim_start_matches(' ');
        if let Some(u) = UNITS.iter().find(|u| {
            rest.starts_with(*u) && !rest[u.len()..].starts_with(|c: char| c.is_alphanumeric())
        }) {
            let end = text.len() - rest.len() + u.len();
            out.push(i..end);
            i = end;
        } else {
            i = j;
        }
    }
    out
}

#[test]
fn every_figure_it_quotes_is_the_codes() {
    let text = one_spaced(
        &std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md"),
    );
    let mut covered = Vec::new();
    for (quote, source) in FIGURES {
        let at: Vec<usize> = text.match_indices(quote).map(|(at, _)| at).collect();
        assert!(
            !at.is_empty(),
            "ARCHITECTURE.md no longer says `{quote}`: update FIGURES here"
        );
        covered.extend(at.iter().map(|a| *a..a + quote.len()));
        match source {
            Source::Code(file, needles) => {
                let code = one_spaced(&std::fs::read_to_string(root().join(file)).expect(file));
                for n in *needles {
                    assert!(
                        code.contains(n),
                        "ARCHITECTURE.md says `{quote}`, but {file} no longer has `{n}`"
                    );
                }
            }
            Source::FewerLines(file, max) => {
                let lines = std::fs::read_to_string(root().join(file))
                    .expect(file)
                    .lines()
                    .count();
                assert!(
                    lines < *max,
                    "ARCHITECTURE.md says `{quote}`, but {file} has {lines} lines"
                );
            }
            Source::Measured => {}
        }
    }
    let unchecked: Vec<&str> = figures_in(&text)
        .into_iter()
        .filter(|f| !covered.iter().any(|c| c.start <= f.start && f.end <= c.end))
        .map(|f| &text[f])
        .collect();
    assert!(
        unchecked.is_empty(),
        "figures ARCHITECTURE.md quotes that FIGURES does not check: {unchecked:?}"
    );
}

#[test]
fn figures_are_found_with_their_units() {
    let found: Vec<_> = figures_in("a 10 ms tick, 2 MiB, x86_64 bits, 1.5 bytes, v2 files")
        .into_iter()
        .collect();
    assert_eq!(found, [2..7, 14..19, 34..43]);
}
