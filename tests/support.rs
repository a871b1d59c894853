//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rehydra_api::{Context, InitOptions, KdfParams, Session};

/// Password used by the tests.
pub const PW: &[u8] = b"correct horse battery staple";

/// A temporary repository with its own catalog and cache.
pub struct TestRepo {
    /// Holds everything; removed on drop.
    pub dir: tempfile::TempDir,
    /// Context used to open it.
    pub ctx: Context,
}

impl TestRepo {
    /// A new repository with cheap key derivation and small packs (many packs per test).
    pub fn new() -> Self {
        Self::with(InitOptions {
            kdf: KdfParams::insecure_for_tests(),
            pack_size: 1 << 20,
            ..InitOptions::default()
        })
    }

    /// A new repository with the given options.
    pub fn with(opts: InitOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = Context {
            catalog: Some(dir.path().join("catalog.db")),
            cache_dir: Some(dir.path().join("cache")),
            ..Context::default()
        };
        rehydra_api::init(&ctx, &Self::loc(dir.path()), PW, opts).expect("init");
        Self { dir, ctx }
    }

    fn loc(dir: &Path) -> String {
        dir.join("repo").display().to_string()
    }

    /// Repository folder.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// Location string.
    pub fn location(&self) -> String {
        Self::loc(self.dir.path())
    }

    /// Open it.
    pub fn open(&self) -> Session {
        rehydra_api::open(&self.ctx, &self.location(), PW).expect("open")
    }

    /// A fresh folder inside the test folder.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }
}

impl Default for TestRepo {
    fn default() -> Self {
        Self::new()
    }
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

/// Compressible text-like bytes.
pub fn text_bytes(len: usize, seed: u64) -> Vec<u8> {
    let words = [
        "alpha ", "bravo ", "charlie ", "delta ", "echo ", "foxtrot ", "golf\n", "hotel ",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(words[rng.gen_range(0..words.len())].as_bytes());
    }
    v.truncate(len);
    v
}

/// Every file under `dir` (recursively), sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}

/// Compare two trees (content, type, symlink targets); panics with the first difference.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let mut ea: Vec<_> = std::fs::read_dir(a)
        .expect("read a")
        .map(|e| e.expect("entry").file_name())
        .collect();
    let mut eb: Vec<_> = std::fs::read_dir(b)
        .expect("read b")
        .map(|e| e.expect("entry").file_name())
        .collect();
    ea.sort();
    eb.sort();
    assert_eq!(ea, eb, "entries of {} vs {}", a.display(), b.display());
    for n in ea {
        let (pa, pb) = (a.join(&n), b.join(&n));
        let (ma, mb) = (
            std::fs::symlink_metadata(&pa).expect("stat"),
            std::fs::symlink_metadata(&pb).expect("stat"),
        );
        assert_eq!(
            ma.file_type().is_dir(),
            mb.file_type().is_dir(),
            "{}",
            pa.display()
        );
        if ma.file_type().is_symlink() {
            assert_eq!(std::fs::read_link(&pa).ok(), std::fs::read_link(&pb).ok());
        } else if ma.is_dir() {
            assert_same_tree(&pa, &pb);
        } else {
            assert!(
                std::fs::read(&pa).expect("read") == std::fs::read(&pb).expect("read"),
                "content of {} differs",
                pb.display()
            );
            assert_eq!(
                ma.modified().ok(),
                mb.modified().ok(),
                "mtime of {}",
                pb.display()
            );
        }
    }
}
