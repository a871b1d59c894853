//! The local folder passes the conformance suite, directly and behind the retry policy;
//! the retry policy tries temporary failures again and nothing else.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rehydra_storage::{
    Backend, FileInfo, FileKind, LocalBackend, Result, RetryPolicy, Retrying, StorageError,
    StorageErrorKind, conformance,
};

fn local() -> (tempfile::TempDir, LocalBackend) {
    let d = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(d.path().join("repo"));
    b.create_layout().unwrap();
    (d, b)
}

#[test]
fn local_folder_conforms() {
    let (_d, b) = local();
    let bad = conformance::check(&b);
    assert!(bad.is_empty(), "{bad:#?}");
}

/// A backend whose first `fail` calls of each operation fail with `kind`; a create that
/// "fails" temporarily has in fact landed, as when an answer is lost on the network.
struct Flaky {
    inner: LocalBackend,
    fail: u32,
    kind: StorageErrorKind,
    calls: AtomicU32,
}

impl Flaky {
    fn trip(&self) -> Result<()> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail {
            return Err(StorageError::new(self.kind, "injected failure"));
        }
        Ok(())
    }
}

impl Backend for Flaky {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        if let Err(e) = self.trip() {
            if e.is_temporary() {
                let _ = self.inner.create(kind, name, data); // landed, answer lost
            }
            return Err(e);
        }
        self.inner.create(kind, name, data)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.trip()?;
        self.inner.read(kind, name)
    }
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u32) -> Result<Vec<u8>> {
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

fn flaky(fail: u32, kind: StorageErrorKind) -> (tempfile::TempDir, Retrying<Flaky>) {
    let (d, inner) = local();
    let policy = RetryPolicy {
        attempts: 4,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(5),
    };
    let f = Flaky {
        inner,
        fail,
        kind,
        calls: AtomicU32::new(0),
    };
    (d, Retrying::new(f, policy))
}

#[test]
fn temporary_failures_are_retried_and_a_landed_create_counts() {
    let (_d, b) = flaky(2, StorageErrorKind::Temporary);
    b.create(FileKind::Index, "aa11", b"data").unwrap();
    // three creates (two failed temporarily, the third found its own file) and the read-back
    assert_eq!(b.inner().calls.load(Ordering::SeqCst), 4);
    assert_eq!(b.read(FileKind::Index, "aa11").unwrap(), b"data");
}

#[test]
fn a_retried_create_that_finds_other_content_fails() {
    let (_d, b) = flaky(1, StorageErrorKind::Temporary);
    b.inner()
        .inner
        .create(FileKind::Index, "bb22", b"someone else")
        .unwrap();
    let e = b.create(FileKind::Index, "bb22", b"mine").unwrap_err();
    assert_eq!(e.kind(), StorageErrorKind::AlreadyExists, "{e}");
    assert_eq!(b.read(FileKind::Index, "bb22").unwrap(), b"someone else");
}

#[test]
fn permanent_failures_return_at_once_and_spent_retries_say_so() {
    let (_d, b) = flaky(10, StorageErrorKind::Permanent);
    assert!(b.read(FileKind::Index, "cc33").is_err());
    assert_eq!(
        b.inner().calls.load(Ordering::SeqCst),
        1,
        "no retry of a permanent failure"
    );

    let (_d, b) = flaky(10, StorageErrorKind::Temporary);
    let e = b.read(FileKind::Index, "cc33").unwrap_err();
    assert_eq!(b.inner().calls.load(Ordering::SeqCst), 4);
    assert!(e.to_string().contains("tried 4 times"), "{e}");
    assert!(e.is_temporary());
}

#[test]
fn a_local_create_never_replaces_a_file() {
    let (_d, b) = local();
    b.create(FileKind::Key, "dd44", b"first").unwrap();
    let e = b.create(FileKind::Key, "dd44", b"second").unwrap_err();
    assert_eq!(e.kind(), StorageErrorKind::AlreadyExists, "{e}");
    assert_eq!(b.read(FileKind::Key, "dd44").unwrap(), b"first");
    assert_eq!(
        b.clean_leftovers(Duration::ZERO).unwrap(),
        0,
        "no temporary file left behind"
    );
}
