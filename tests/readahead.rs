//! Restores from a slow store: chunks of many small files share requests, and requests
//! overlap instead of waiting for each other (what makes a restore from Azure Blob or S3
//! bandwidth-bound rather than latency-bound). The backend here wraps a real local
//! repository and answers every ranged read after a delay, counting them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rehydra_core::archiver::{self, BackupOptions, Source, SourceItem};
use rehydra_core::backend::{Backend, FileInfo, FileKind, LocalBackend, StorageError};
use rehydra_core::KdfParams;
use rehydra_core::{Cancel, NoProgress};
use rehydra_core::restorer::{self, RestoreOptions};
use rehydra_core::{InitOptions, OpenOptions, Repository};
use rehydra_integration_tests::random_bytes;

type Result<T> = std::result::Result<T, StorageError>;

/// A local store whose ranged reads take `delay`, counted.
struct Slow {
    inner: LocalBackend,
    delay: Duration,
    reads: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl Backend for Slow {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.inner.create(kind, name, data)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.inner.read(kind, name)
    }
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u32) -> Result<Vec<u8>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.inner.read_range(kind, name, offset, len)
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.inner.size(kind, name)
    }
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        self.inner.list(kind)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.inner.remove(kind, name)
    }
    fn clean_leftovers(&self, age: Duration) -> Result<usize> {
        self.inner.clean_leftovers(age)
    }
}

fn same_tree(a: &Path, b: &Path) {
    for e in std::fs::read_dir(a).expect("source") {
        let e = e.expect("entry");
        let name = e.file_name();
        assert_eq!(
            std::fs::read(e.path()).expect("source file"),
            std::fs::read(b.join(&name)).expect("restored file"),
            "{name:?} restored differently"
        );
    }
}

#[test]
fn a_restore_batches_small_files_and_overlaps_its_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = LocalBackend::new(dir.path().join("repo"));
    local.create_layout().expect("layout");
    let slow = Arc::new(Slow {
        inner: local,
        delay: Duration::from_millis(50),
        reads: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    });
    let init = InitOptions {
        kdf: KdfParams::insecure_for_tests(),
        pack_size: 4 << 20,
        ..InitOptions::default()
    };
    let repo = Repository::init(slow.clone(), b"pw", init, OpenOptions::default()).expect("init");
    let src = dir.path().join("src");
    std::fs::create_dir(&src).expect("src");
    for i in 0..300u64 {
        std::fs::write(src.join(format!("small-{i:03}")), random_bytes(3000, i)).expect("write");
    }
    std::fs::write(src.join("large"), random_bytes(12 << 20, 999)).expect("write");
    let item = SourceItem {
        name: "tree".into(),
        source: Source::Path(src.clone()),
    };
    let (progress, cancel) = (NoProgress, Cancel::default());
    let made = archiver::backup(&repo, vec![item], &BackupOptions::default(), &progress, &cancel)
        .expect("backup");

    slow.reads.store(0, Ordering::SeqCst);
    let target = dir.path().join("out");
    let opts = RestoreOptions::default();
    restorer::restore(&repo, &made.restore_point, &target, &opts, &progress, &cancel)
        .expect("restore");
    same_tree(&src, &target);

    // 300 small files and 768 chunks of the large one: one request per file or chunk
    // would be 1,000 and more; neighbouring chunks share a request across files
    let reads = slow.reads.load(Ordering::SeqCst);
    assert!(reads <= 30, "{reads} ranged reads for 301 files");
    let peak = slow.peak.load(Ordering::SeqCst);
    assert!(peak >= 2, "reads never overlapped (at most {peak} in flight)");
}
