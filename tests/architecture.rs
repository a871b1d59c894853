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

/// What a figure ARCHITECTURE.md quotes must match.
enum Source {
    /// Each text stands in the file as a whole token (the constant's definition).
    Code(&'static str, &'static [&'static str]),
    /// A file whose path starts so exists (a catalog migration's number).
    FileStarting(&'static str),
    /// The file has fewer lines than this.
    FewerLines(&'static str, usize),
    /// A fact of the outside world (an HTTP status, an OS release), not of this code.
    Outside,
    /// A measurement, not a constant (re-measured with the benchmarks).
    Measured,
}

use Source::{Code, FewerLines, FileStarting, Measured, Outside};

/// Every number ARCHITECTURE.md says, the words around it as they stand there (white
/// space aside), and where the same number stands in the code.
const FIGURES: &[(&str, Source)] = &[
    (
        "(Tauri 2 commands",
        Code("src-tauri/Cargo.toml", &["tauri = { version = \"2."]),
    ),
    (
        "WIT: rehydra:plugin@0.1.5",
        Code(
            "plugin-sdk/wit/plugin.wit",
            &["package rehydra:plugin@0.1.5;"],
        ),
    ),
    (
        "a Unix socket of mode 0660",
        Code(
            "crates/api/src/service/operators/unix.rs",
            &["Permissions::from_mode(0o660)"],
        ),
    ),
    (
        "at most 16 such threads",
        Code(
            "crates/plugin-host/src/state/sql.rs",
            &["const THREADS_MAX: usize = 16;"],
        ),
    ),
    (
        "at most 256 deep",
        Code("crates/core/src/contentmap.rs", &["MAX_DEPTH: usize = 256"]),
    ),
    (
        "names (1–4096 bytes",
        Code(
            "crates/core/src/manifest.rs",
            &["MAX_ITEM_NAME: usize = 4096"],
        ),
    ),
    (
        "gaps under 256 KiB",
        Code("crates/core/src/fetch.rs", &["MAX_GAP: u64 = 256 << 10"]),
    ),
    (
        "reads up to 8 MiB",
        Code("crates/core/src/fetch.rs", &["MAX_READ: u64 = 8 << 20"]),
    ),
    (
        "reads a content map 64 chunks at a time",
        Code("crates/core/src/contentmap.rs", &["MAP_BATCH: usize = 64"]),
    ),
    (
        "chunked and stored in 2 MiB batches (`store_map`)",
        Code(
            "crates/core/src/archiver.rs",
            &["BATCH_BYTES: usize = 2 << 20"],
        ),
    ),
    (
        "read a window of 1,024 at a time",
        Code("crates/core/src/vdisk.rs", &["WINDOW: u64 = 1024"]),
    ),
    (
        "keeps the next 16 MiB of chunks in flight on four reader threads",
        Code(
            "crates/core/src/restorer/readahead.rs",
            &["AHEAD: u64 = 16 << 20", "READERS: usize = 4"],
        ),
    ),
    (
        "loops and depth > 64 refused",
        Code("crates/disk/src/chain.rs", &["MAX_DEPTH: usize = 64"]),
    ),
    (
        "on Linux 5.17+ with the target on ext4, XFS, Btrfs, F2FS or tmpfs, one `syncfs` per batch of 256 files or 256 MiB (or 128 folders)",
        Code(
            "crates/target/src/cursor.rs",
            &[
                "SYNCFS_SINCE: (u32, u32) = (5, 17)",
                "BATCH_FILES: usize = 256",
                "BATCH_BYTES: u64 = 256 << 20",
                "BATCH_FOLDERS: usize = 128",
            ],
        ),
    ),
    (
        "Temporary files are `0600`",
        Code(
            "crates/target/src/lib.rs",
            &["cap_std::fs::OpenOptionsExt::mode(&mut opts, 0o600)"],
        ),
    ),
    (
        "reqwest 0.12 client",
        Code(
            "crates/plugin-host/Cargo.toml",
            &["reqwest = { version = \"0.12\""],
        ),
    ),
    ("a file system at sector 0 is one volume", Outside),
    (
        "log lines (0005)",
        FileStarting("crates/catalog/migrations/0005_"),
    ),
    (
        "audit (0002;",
        FileStarting("crates/catalog/migrations/0002_"),
    ),
    (
        "since 0006",
        FileStarting("crates/catalog/migrations/0006_"),
    ),
    (
        "command targets (0003)",
        FileStarting("crates/catalog/migrations/0003_"),
    ),
    (
        "policies (0004)",
        FileStarting("crates/catalog/migrations/0004_"),
    ),
    (
        "settings (0007:",
        FileStarting("crates/catalog/migrations/0007_"),
    ),
    (
        "directories (0008:",
        FileStarting("crates/catalog/migrations/0008_"),
    ),
    (
        "instances (0009:",
        FileStarting("crates/catalog/migrations/0009_"),
    ),
    (
        "clusters (0011)",
        FileStarting("crates/catalog/migrations/0011_"),
    ),
    (
        "service (0012,",
        FileStarting("crates/catalog/migrations/0012_"),
    ),
    (
        "migration 0004",
        FileStarting("crates/catalog/migrations/0004_"),
    ),
    (
        "a 10 ms ticker",
        Code(
            "crates/plugin-host/src/runtime.rs",
            &["TICK: Duration = Duration::from_millis(10)"],
        ),
    ),
    (
        "bulk work beyond 50 ms per call",
        Code(
            "crates/plugin-host/src/limits.rs",
            &["ENGINE_CALL_CHARGE: Duration = Duration::from_millis(50)"],
        ),
    ),
    (
        "100 denials and 1000 allowed",
        Code(
            "crates/plugin-host/src/limits.rs",
            &[
                "AUDIT_DENIALS_MAX: u32 = 100",
                "AUDIT_ALLOWED_MAX: u32 = 1_000",
            ],
        ),
    ),
    (
        "no redirects, 64 MiB bodies",
        Code(
            "crates/plugin-rules/src/http.rs",
            &["BODY_MAX: usize = 64 << 20"],
        ),
    ),
    ("after a 401 whose challenge", Outside),
    (
        "64 MiB per page",
        Code(
            "crates/plugin-host/src/state/ldap.rs",
            &["PAGE_BYTES_MAX: usize = 64 << 20"],
        ),
    ),
    (
        "64 MiB per answer",
        Code(
            "crates/plugin-host/src/state/sql.rs",
            &["ANSWER_BYTES_MAX: usize = 64 << 20"],
        ),
    ),
    (
        "136 MiB read per connection",
        Code(
            "crates/plugin-host/src/state/sql.rs",
            &[
                "ANSWER_BYTES_MAX: usize = 64 << 20",
                "WIRE_BYTES_MAX: usize = 2 * ANSWER_BYTES_MAX + (8 << 20)",
            ],
        ),
    ),
    (
        "272 MiB by all open at once",
        Code(
            "crates/plugin-host/src/state/sql.rs",
            &["WIRE_BYTES_ALL_MAX: usize = 2 * WIRE_BYTES_MAX"],
        ),
    ),
    (
        "over 8.5 MiB each",
        Code(
            "crates/plugin-host/src/state/sql_wire.rs",
            &["this.read > this.limit / 16"],
        ),
    ),
    (
        "4096 bytes and 128 components",
        Code(
            "crates/plugin-rules/src/grants.rs",
            &[
                "PATH_MAX_BYTES: usize = 4096",
                "PATH_MAX_DEPTH: usize = 128",
            ],
        ),
    ),
    (
        "clock beyond 50 ms per call",
        Code(
            "crates/plugin-host/src/limits.rs",
            &["ENGINE_CALL_CHARGE: Duration = Duration::from_millis(50)"],
        ),
    ),
    (
        "(the worked example, < 100 lines)",
        FewerLines("plugins/example-files/src/lib.rs", 100),
    ),
    (
        "Key Vault 7.5",
        Code(
            "plugins/keyvault/src/client.rs",
            &["KV_API: &str = \"7.5\""],
        ),
    ),
    (
        "`UPDATE_BINDINGS=1",
        Code("src-tauri/src/bindings.rs", &["UPDATE_BINDINGS=1"]),
    ),
    (
        "a quiet exit 141",
        Code("crates/cli/src/main.rs", &["=> 141"]),
    ),
    ("answers 400 to any PUT", Outside),
    ("Debian 12's Wine", Outside),
    ("the CLI's 64-bit installer", Outside),
    (
        "(100 M index entries)",
        Code(
            "crates/core/examples/index_scale.rs",
            &["unwrap_or(100_000_000)"],
        ),
    ),
    (
        "chunks into 2 MiB batches →",
        Code(
            "crates/core/src/archiver.rs",
            &["BATCH_BYTES: usize = 2 << 20"],
        ),
    ),
    (
        "every 8 packs",
        Code("crates/core/src/writer.rs", &["PACKS_PER_INDEX: usize = 8"]),
    ),
    (
        "parallel batches of 64",
        Code("crates/core/src/copy.rs", &["BATCH: usize = 64"]),
    ),
    (
        "(2 batches of 2 MiB in flight, one 16 MiB pack",
        Code(
            "crates/core/src/archiver.rs",
            &[
                "BATCH_BYTES: usize = 2 << 20",
                "bounded::<std::io::Result<Vec<Piece>>>(1)",
            ],
        ),
    ),
    (
        "one 16 MiB pack being built",
        Code("crates/core/src/repository.rs", &["pack_size: 16 << 20"]),
    ),
    ("(0.13 bytes per chunk)", Measured),
    (
        "catalog every 15 s",
        Code(
            "src-tauri/src/tray.rs",
            &["EVERY: Duration = Duration::from_secs(15)"],
        ),
    ),
];

fn one_spaced(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `needle` stands in `text` as a whole: not inside a longer name or number
/// (`= 512` does not match `= 5120`, `AHEAD` not `READ_AHEAD`).
fn has_token(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        let starts_word = needle.starts_with(word_char);
        let ends_word = needle.ends_with(word_char);
        !(starts_word && before.is_some_and(word_char) || ends_word && after.is_some_and(word_char))
    })
}

/// Byte ranges of `text` holding a number of the prose: digits (with `.` or `,` inside)
/// that are not part of a name, a path or code in backticks.
fn numbers_in(text: &str) -> Vec<std::ops::Range<usize>> {
    let b = text.as_bytes();
    let glued = |c: u8| c.is_ascii_alphanumeric() || b"_`/".contains(&c);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && (glued(b[i - 1]) || b".-".contains(&b[i - 1]))) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len()
            && (b[j].is_ascii_digit()
                || (b".,".contains(&b[j]) && b.get(j + 1).is_some_and(u8::is_ascii_digit)))
        {
            j += 1;
        }
        if !b.get(j).is_some_and(|c| glued(*c)) {
            out.push(i..j);
        }
        i = j;
    }
    out
}

#[test]
fn every_number_it_says_is_checked() {
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
            Code(file, needles) => {
                let code = one_spaced(&std::fs::read_to_string(root().join(file)).expect(file));
                for n in *needles {
                    assert!(
                        has_token(&code, n),
                        "ARCHITECTURE.md says `{quote}`, but {file} no longer has `{n}`"
                    );
                }
            }
            FileStarting(prefix) => {
                let (dir, start) = prefix.rsplit_once('/').expect("a folder");
                let found = std::fs::read_dir(root().join(dir))
                    .expect(dir)
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(start));
                assert!(
                    found,
                    "ARCHITECTURE.md says `{quote}`, but no {prefix}* exists"
                );
            }
            FewerLines(file, max) => {
                let lines = std::fs::read_to_string(root().join(file))
                    .expect(file)
                    .lines()
                    .count();
                assert!(
                    lines < *max,
                    "ARCHITECTURE.md says `{quote}`, but {file} has {lines} lines"
                );
            }
            Outside | Measured => {}
        }
    }
    let unchecked: Vec<&str> = numbers_in(&text)
        .into_iter()
        .filter(|f| !covered.iter().any(|c| c.start <= f.start && f.end <= c.end))
        .map(|f| &text[f])
        .collect();
    assert!(
        unchecked.is_empty(),
        "numbers ARCHITECTURE.md says that FIGURES does not check: {unchecked:?}"
    );
}

#[test]
fn numbers_and_tokens_are_found_as_prose_and_code_have_them() {
    let t = "a 10 ms tick, 2 MiB, x86_64 and `0644`, v2, 1.5 or 1,024 at 5.17+; end 3.";
    let found: Vec<&str> = numbers_in(t).into_iter().map(|r| &t[r]).collect();
    assert_eq!(found, ["10", "2", "1.5", "1,024", "5.17", "3"]);
    assert!(has_token("const N: usize = 512;", "N: usize = 512"));
    assert!(!has_token("const N: usize = 5120;", "N: usize = 512"));
    assert!(!has_token("const READ_AHEAD: u64 = 1;", "AHEAD: u64 = 1"));
    assert!(has_token("x => 141,", "=> 141"));
}
