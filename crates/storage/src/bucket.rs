//! A container or bucket read as folders of objects: what another tool keeps in object
//! storage (Velero's backups), for the plugins' `files` capability. Read-only; the same
//! connection and credentials as [`crate::ObjectBackend`].

use std::sync::Arc;

use object_store::list::PaginatedListOptions;
use object_store::path::Path;

use crate::object::{Connection, err};
use crate::{
    Result, RetryPolicy, StorageError as Error, StorageErrorKind as ErrorKind, TokenSource,
};

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

    /// Nothing lies at or under `key`.
    fn missing(&self, key: &str) -> Error {
        Error::new(ErrorKind::Missing, format!("{}: not found", self.url(key)))
    }

    /// One page (at most `max_keys`) of what lies directly under the folder `key` (empty:
    /// the top), from `token`; the next page's token.
    fn page(
        &self,
        key: &str,
        max_keys: usize,
        token: Option<String>,
    ) -> Result<(Vec<BucketEntry>, Option<String>)> {
        // the trailing delimiter is not added for a paginated list
        let prefix = (!key.is_empty()).then(|| format!("{key}/"));
        let opts = PaginatedListOptions {
            delimiter: Some("/".into()),
            max_keys: Some(max_keys),
            page_token: token,
            ..PaginatedListOptions::default()
        };
        let r = RetryPolicy::default().run(|| {
            self.conn
                .rt
                .block_on(
                    self.conn
                        .pages
                        .list_paginated(prefix.as_deref(), opts.clone()),
                )
                .map_err(|e| err(format!("listing {}", self.url(key)), e))
        })?;
        let folders = r.result.common_prefixes.into_iter().filter_map(|p| {
            Some(BucketEntry {
                name: p.filename()?.to_string(),
                folder: true,
                size: 0,
                modified: 0,
            })
        });
        let objects = r.result.objects.into_iter().filter_map(|m| {
            Some(BucketEntry {
                name: m.location.filename()?.to_string(),
                folder: false,
                size: m.size,
                modified: m.last_modified.timestamp(),
            })
        });
        Ok((folders.chain(objects).collect(), r.page_token))
    }

    /// The objects and folders directly under the folder `key` (empty: the top), sorted
    /// by name, read a page of 1000 at a time; `tick` is called after each page (the
    /// caller's time limit and cancel flag), and more than `max` entries stop the listing
    /// there, so a bucket's size never decides the memory or time it takes.
    ///
    /// # Errors
    /// The listing failed (each page is tried again as [`RetryPolicy`] says); `Missing`
    /// when nothing lies under `key`; `InvalidInput` over `max` entries; what `tick`
    /// returns.
    pub fn list(
        &self,
        key: &str,
        max: usize,
        mut tick: impl FnMut() -> Result<()>,
    ) -> Result<Vec<BucketEntry>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let (entries, next) = self.page(key, 1000, token)?;
            out.extend(entries);
            if out.len() > max {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{} has more than {max} entries", self.url(key)),
                ));
            }
            tick()?;
            match next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        if out.is_empty() && !key.is_empty() {
            return Err(self.missing(key));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The object `key`, or the folder `key` when something lies under it (one entry
    /// is asked for, however many there are).
    ///
    /// # Errors
    /// The request failed; `Missing` when there is neither.
    pub fn stat(&self, key: &str) -> Result<BucketEntry> {
        let name = key.rsplit('/').next().unwrap_or_default().to_string();
        if !key.is_empty() {
            let head = RetryPolicy::default().run(|| {
                match self
                    .conn
                    .rt
                    .block_on(self.conn.store.head(&Path::from(key)))
                {
                    Ok(m) => Ok(Some(m)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(err(format!("reading {}", self.url(key)), e)),
                }
            })?;
            if let Some(m) = head {
                return Ok(BucketEntry {
                    name,
                    folder: false,
                    size: m.size,
                    modified: m.last_modified.timestamp(),
                });
            }
        }
        let (first, _) = self.page(key, 1, None)?;
        if first.is_empty() && !key.is_empty() {
            return Err(self.missing(key));
        }
        Ok(BucketEntry {
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
        let bytes = RetryPolicy::default().run(|| {
            self.conn
                .rt
                .block_on(async {
                    let r = self.conn.store.get(&p).await?;
                    if r.meta.size > max {
                        return Ok(Err(r.meta.size));
                    }
                    let size = r.meta.size;
                    r.bytes().await.map(|b| Ok((b, size)))
                })
                .map_err(|e| err(format!("reading {url}"), e))
        })?;
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
