//! Object storage a plugin reads through `files:s3://…` and `files:azure://…` grants
//! (Velero's backups in their bucket): one [`Bucket`] per container or bucket for the
//! call, with the repositories' credentials (the environment, else the admin's Azure
//! identity) and their retry policy. The plugin sees bytes, names and statuses, never a
//! key or the store's own answer.

use std::collections::HashMap;

use rehydra_plugin_host::{
    ErrorCode, FileEntry, FileEntryKind, HostError, LIST_MAX, ObjectPath, ObjectStores,
};
use rehydra_storage::{Bucket, BucketEntry, StorageError, StorageErrorKind};

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

    /// The bucket of `path`, connected on first use.
    fn bucket(&self, path: &ObjectPath) -> std::result::Result<Arc<Bucket>, HostError> {
        let store = path.store();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = open.get(&store) {
            return Ok(b.clone());
        }
        let b = Arc::new(
            Bucket::new(&store, || crate::location::identity(&self.ctx)).map_err(host_error)?,
        );
        open.insert(store, b.clone());
        Ok(b)
    }
}

/// A storage failure as the plugin sees it: what failed and the status, never the
/// store's answer itself (an S3 error body names the access key and what was signed).
fn host_error(e: StorageError) -> HostError {
    let code = match e.kind() {
        StorageErrorKind::Missing => ErrorCode::NotFound,
        StorageErrorKind::InvalidInput => ErrorCode::InvalidInput,
        StorageErrorKind::Temporary => ErrorCode::Unavailable,
        _ => ErrorCode::Failed,
    };
    HostError::new(code, without_answer(&e.to_string()))
}

/// `message` without the body of the store's answer that object_store quotes after the
/// status (`… status code: 403 Forbidden: <Error>…`, `… error response: <body>`).
fn without_answer(message: &str) -> String {
    if let Some((head, rest)) = message.split_once("status code: ") {
        let status = rest.split_once(": ").map_or(rest, |(s, _)| s);
        return format!("{head}status code: {status}");
    }
    if let Some((head, _)) = message.split_once("error response: ") {
        return format!("{head}error response");
    }
    message.to_string()
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
        self.bucket(path)?
            .stat(&path.key)
            .map(entry)
            .map_err(host_error)
    }
    fn list(
        &self,
        path: &ObjectPath,
        tick: &mut dyn FnMut() -> std::result::Result<(), HostError>,
    ) -> std::result::Result<Vec<FileEntry>, HostError> {
        // the call's limit, carried through the storage error and given back as it was
        let mut stopped = None;
        let listed = self.bucket(path)?.list(&path.key, LIST_MAX, || {
            tick().map_err(|e| {
                stopped = Some(e);
                StorageError::new(StorageErrorKind::Permanent, "stopped")
            })
        });
        match (listed, stopped) {
            (_, Some(e)) => Err(e),
            (r, None) => r
                .map(|l| l.into_iter().map(entry).collect())
                .map_err(host_error),
        }
    }
    fn read(&self, path: &ObjectPath, max: u64) -> std::result::Result<Vec<u8>, HostError> {
        self.bucket(path)?.read(&path.key, max).map_err(host_error)
    }
}

#[cfg(test)]
mod tests {
    use super::without_answer;

    #[test]
    fn plugins_get_the_status_not_the_stores_answer() {
        let m = "reading s3://v/k: Error performing GET http://h/v/k in 1ms - Server returned non-2xx status code: 403 Forbidden: <Error><AWSAccessKeyId>AKIA</AWSAccessKeyId></Error>";
        assert_eq!(
            without_answer(m),
            "reading s3://v/k: Error performing GET http://h/v/k in 1ms - Server returned non-2xx status code: 403 Forbidden"
        );
        let m = "listing azure://c: Error performing GET x in 1ms - Server returned error response: secret body";
        assert!(!without_answer(m).contains("secret"));
        assert_eq!(without_answer("s3://v/k: not found"), "s3://v/k: not found");
    }
}
