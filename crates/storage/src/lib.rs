//! Where repositories live: the [`Backend`] contract and its implementations.
//!
//! The contract is shaped for object stores: whole-object create (never partial, never
//! overwrite), whole or ranged reads, listing that may lag behind writes, delete. There is
//! no rename and no append. [`LocalBackend`] (a folder, including SMB/UNC paths on Windows)
//! gets atomicity from write-temp, fsync, link; [`ObjectBackend`] (Azure Blob, S3) from
//! conditional puts. Every failure says whether it may pass ([`StorageError::is_temporary`]);
//! [`Retrying`] is the one retry policy, [`Limited`] holds transfers to a [`Bandwidth`],
//! and [`conformance`] is the suite every backend
//! passes (the local one here, Azurite and moto in the CLI's object-storage tests).
//! [`Bucket`] reads what other tools keep in a container or bucket (Velero's backups).

mod bucket;
pub mod conformance;
mod error;
mod limit;
mod local;
mod object;
mod retry;

pub use bucket::{Bucket, BucketEntry};
pub use error::{Result, StorageError, StorageErrorKind};
pub use limit::{Bandwidth, Heeding, Limited, heed_cancel};
pub use local::LocalBackend;
pub use object::{ObjectBackend, TokenSource};
pub use retry::{RetryPolicy, Retrying};

/// The kinds of file a repository holds, each in its own folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `config` (one file, plaintext JSON).
    Config,
    /// `keys/<id>`: key slots.
    Key,
    /// `packs/<2 hex>/<id>`: pack files.
    Pack,
    /// `index/<id>`: index files.
    Index,
    /// `snapshots/<id>`: restore-point manifests (the folder keeps its first name: format).
    RestorePoint,
    /// `locks/<id>`: lock and presence files.
    Lock,
    /// `prune/<id>`: pending deletion plans (two-phase delete).
    PrunePlan,
}

impl FileKind {
    /// Folder name in the repository.
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Config => "",
            FileKind::Key => "keys",
            FileKind::Pack => "packs",
            FileKind::Index => "index",
            FileKind::RestorePoint => "snapshots",
            FileKind::Lock => "locks",
            FileKind::PrunePlan => "prune",
        }
    }
}

/// A listed file: name and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Name (hex id, or `config`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// A place that stores repository files.
pub trait Backend: Send + Sync {
    /// Where this is, for messages.
    fn location(&self) -> String;

    /// Store a whole file atomically and durably. Readers see all of it or nothing; an
    /// existing file of that name is never replaced.
    ///
    /// # Errors
    /// [`StorageErrorKind::AlreadyExists`] when the name is taken, I/O failure or no
    /// space; a partial object is never left visible.
    fn create(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()>;

    /// Read a whole file.
    ///
    /// # Errors
    /// [`StorageErrorKind::Missing`] when absent, or I/O failure.
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>>;

    /// Read `len` bytes at `offset`.
    ///
    /// # Errors
    /// Missing file, [`StorageErrorKind::Truncated`] on a short read, I/O failure.
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u32) -> Result<Vec<u8>>;

    /// Size of a file.
    ///
    /// # Errors
    /// Missing file or I/O failure.
    fn size(&self, kind: FileKind, name: &str) -> Result<u64>;

    /// All files of a kind (may lag behind recent creates on object stores).
    ///
    /// # Errors
    /// I/O failure.
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>>;

    /// Delete a file; deleting a missing file is not an error.
    ///
    /// # Errors
    /// I/O failure.
    fn remove(&self, kind: FileKind, name: &str) -> Result<()>;

    /// Remove leftovers of interrupted writes older than `age` (temporary files).
    /// Returns how many were removed.
    ///
    /// # Errors
    /// I/O failure.
    fn clean_leftovers(&self, age: std::time::Duration) -> Result<usize>;
}
