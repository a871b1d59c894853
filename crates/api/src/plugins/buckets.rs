//! Object storage a plugin reads through `files:s3://…` and `files:azure://…` grants
//! (Velero's backups in their bucket): one [`Bucket`] per container or bucket for the
//! call, with the repositories' credentials (the environment, else the admin's Azure
//! identity) and their retry policy. The plugin sees bytes and names, never a key.

use std::collections::HashMap;

use rehydra_plugin_host::{
    ErrorCode, FileEntry, FileEntryKind, HostError, LIST_MAX, ObjectPath, ObjectStores,
};
use rehydra_storage::{Bucket, BucketEntry, RetryPolicy, StorageError, StorageErrorKind};

use super::*;

/// The buckets one call reads, connected on first use.
pub(super) struct Buckets {
    ctx: Context,
    open: Mutex<HashMap<String, Arc<Bucket>>>,
}

impl Buckets {
    pub(super) fn new(ctx: &Context) -> Self {
        Self {
            ctx: ctx.clone(),
            open: Mutex::default(),
        }
    }

    fn run<T>(
        &self,
        path: &ObjectPath,
        op: impl Fn(&Bucket) -> std::result::Result<T, StorageError>,
    ) -> std::result::Result<T, HostError> {
        let store = path.store();
        let bucket = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            match open.get(&store) {
                Some(b) => b.clone(),
                None => {
                    let b = Arc::new(
                        Bucket::new(&store, || crate::location::identity(&self.ctx))
                            .map_err(host_error)?,
                    );
                    open.insert(store, b.clone());
                    b
                }
            }
        };
        RetryPolicy::default()
            .run(|| op(&bucket))
            .map_err(host_error)
    }
}

/// A storage failure as the plugin sees it; the message names the object, never a key.
fn host_error(e: StorageError) -> HostError {
    let code = match e.kind() {
        StorageErrorKind::Missing => ErrorCode::NotFound,
        StorageErrorKind::InvalidInput => ErrorCode::InvalidInput,
        StorageErrorKind::Temporary => ErrorCode::Unavailable,
        _ => ErrorCode::Failed,
    };
    HostError::new(code, e.to_string())
}

fn entry(e: BucketEntry) -> FileEntry {
    FileEntry {
        name: e.name,
        kind: if e.folder {
            FileEntryKind::Directory
        } else {
            FileEntryKind::File
        },
        size: e.size,
        modified: e.modified.max(0),
    }
}

impl ObjectStores for Buckets {
    fn stat(&self, path: &ObjectPath) -> std::result::Result<FileEntry, HostError> {
        self.run(path, |b| b.stat(&path.key)).map(entry)
    }
    fn list(&self, path: &ObjectPath) -> std::result::Result<Vec<FileEntry>, HostError> {
        self.run(path, |b| b.list(&path.key, LIST_MAX))
            .map(|l| l.into_iter().map(entry).collect())
    }
    fn read(&self, path: &ObjectPath, max: u64) -> std::result::Result<Vec<u8>, HostError> {
        self.run(path, |b| b.read(&path.key, max))
    }
}
