//! A container or bucket read as folders of objects: what another tool keeps in object
//! storage (Velero's backups), for the plugins' `files` capability. Read-only; the same
//! connection and credentials as [`crate::ObjectBackend`].

use std::sync::Arc;

use object_store::path::Path;

use crate::object::{Connection, err};
use crate::{Result, StorageError as Error, StorageErrorKind as ErrorKind, TokenSource};

/// One entry of a listing: an object, or a folder (a common prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketEntry {
    /// Its last segment.
    pub name: String,
    /// A folder: objects lie under it (object storage has no folders of its own).
    pub folder: bool,
    /// Bytes (0 for a folder).
    pub size: u64,
    /// Last modified, seconds since 1970 (0 for a folder).
    pub modified: i64,
}

/// Read access to one container or bucket.
pub struct Bucket {
    conn: Connection,
    root: String,
}

impl Bucket {
    /// Connect to the container or bucket `root` (`azure://CONTAINER`, `s3://BUCKET`);
    /// nothing is read yet. `identity` as for [`crate::ObjectBackend::new`].
    ///
    /// # Errors
    /// A malformed location, an unknown scheme, or settings the store's builder refuses.
    pub fn new(
        root: &str,
        identity: impl FnOnce() -> Option<Arc<dyn TokenSource>>,
    ) -> Result<Self> {
        Ok(Self {
            conn: Connection::new("object storage", root, identity)?,
            root: root.trim_end_matches('/').to_string(),
        })
    }

    fn url(&self, key: &str) -> String {
        if key.is_empty() {
            self.root.clone()
        } else {
            format!("{}/{key}", self.root)
        }
    }

    /// The objects and folders directly under the folder `key` (empty: the top), sorted
    /// by name; more than `max` is an error, as is a folder with nothing under it.
    ///
    /// # Errors
    /// The listing failed; `Missing` when nothing lies under `key`; `InvalidInput` over
    /// `max` entries.
    pub fn list(&self, key: &str, max: usize) -> Result<Vec<BucketEntry>> {
        let url = self.url(key);
        let prefix = (!key.is_empty()).then(|| Path::from(key));
        let r = self
            .conn
            .rt
            .block_on(self.conn.store.list_with_delimiter(prefix.as_ref()))
            .map_err(|e| err(format!("listing {url}"), e))?;
        let folders = r.common_prefixes.into_iter().filter_map(|p| {
            Some(BucketEntry {
                name: p.filename()?.to_string(),
                folder: true,
                size: 0,
                modified: 0,
            })
        });
        let objects = r.objects.into_iter().filter_map(|m| {
            Some(BucketEntry {
                name: m.location.filename()?.to_string(),
                folder: false,
                size: m.size,
                modified: m.last_modified.timestamp(),
            })
        });
        let mut out: Vec<BucketEntry> = folders.chain(objects).collect();
        if out.len() > max {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{url} has more than {max} entries"),
            ));
        }
        if out.is_empty() && !key.is_empty() {
            return Err(Error::new(ErrorKind::Missing, format!("{url}: not found")));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The object `key`, or the folder `key` when objects lie under it.
    ///
    /// # Errors
    /// As [`Self::list`]; `Missing` when there is neither.
    pub fn stat(&self, key: &str) -> Result<BucketEntry> {
        let name = key.rsplit('/').next().unwrap_or_default().to_string();
        if !key.is_empty() {
            let head = self
                .conn
                .rt
                .block_on(self.conn.store.head(&Path::from(key)));
            match head {
                Ok(m) => {
                    return Ok(BucketEntry {
                        name,
                        folder: false,
                        size: m.size,
                        modified: m.last_modified.timestamp(),
                    });
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(err(format!("reading {}", self.url(key)), e)),
            }
        }
        self.list(key, usize::MAX).map(|_| BucketEntry {
            name,
            folder: true,
            size: 0,
            modified: 0,
        })
    }

    /// The bytes of the object `key`, if it holds at most `max`.
    ///
    /// # Errors
    /// The read failed; `Missing`; `InvalidInput` when larger than `max` (nothing more
    /// than its size is fetched then); `Truncated` when fewer bytes came than it holds.
    pub fn read(&self, key: &str, max: u64) -> Result<Vec<u8>> {
        let url = self.url(key);
        let p = Path::from(key);
        let bytes = self
            .conn
            .rt
            .block_on(async {
                let r = self.conn.store.get(&p).await?;
                if r.meta.size > max {
                    return Ok(Err(r.meta.size));
                }
                let size = r.meta.size;
                r.bytes().await.map(|b| Ok((b, size)))
            })
            .map_err(|e| err(format!("reading {url}"), e))?;
        let (bytes, size) = bytes.map_err(|size| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{url} holds {size} bytes, more than {max}"),
            )
        })?;
        if bytes.len() as u64 != size {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!("{url}: {} of its {size} bytes came", bytes.len()),
            ));
        }
        Ok(Vec::from(bytes))
    }
}
