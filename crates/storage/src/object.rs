//! Repositories in object storage: `azure://CONTAINER/PREFIX` (Azure Blob) and
//! `s3://BUCKET/PREFIX` (S3 and compatible stores), through the `object_store` crate.
//!
//! The layout is the same as on disk (`config`, `keys/`, `packs/<2 hex>/`, `index/`, …),
//! so a repository can be moved between a folder and a container with any copy tool.
//! Credentials never appear in the location: they come from the environment the
//! `object_store` builders read (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`
//! or `AZURE_STORAGE_SAS_KEY`, `AZURE_STORAGE_USE_EMULATOR` with `AZURITE_BLOB_STORAGE_URL`;
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`,
//! `AWS_ALLOW_HTTP`). A put is atomic (readers see the whole object or none), which is
//! the guarantee the engine needs from `create`, and conditional (`If-None-Match: *`), so
//! an object is never replaced; there are no temporary files to clean. HTTP retries are
//! not object_store's: every failure is classified and [`crate::Retrying`] decides.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::list::PaginatedListStore;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, RetryConfig};

use crate::{Backend, FileInfo, FileKind, StorageError as Error, StorageErrorKind as ErrorKind};

/// Bearer tokens for Azure Storage from the admin's Azure identity (the one plugins use),
/// for when no key, SAS or emulator is configured.
pub trait TokenSource: Send + Sync + std::fmt::Debug {
    /// A token for `scope`, or why there is none.
    ///
    /// # Errors
    /// No identity signed in, or the sign-in failed.
    fn bearer(&self, scope: &str) -> Result<String, String>;
}

/// A repository under a prefix of a container or bucket.
pub struct ObjectBackend {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    location: String,
    rt: tokio::runtime::Runtime,
}

/// Classify an object_store failure. Its own retries are off, so a 429, a 5xx, a timeout
/// or a reset connection arrives here as `Generic` and may pass.
pub(crate) fn err(what: String, e: object_store::Error) -> Error {
    use object_store::Error as E;
    let kind = match &e {
        E::NotFound { .. } => ErrorKind::Missing,
        E::AlreadyExists { .. } | E::Precondition { .. } => ErrorKind::AlreadyExists,
        E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => ErrorKind::InvalidInput,
        E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::NotSupported { .. }
        | E::NotImplemented
        | E::NotModified { .. } => ErrorKind::Permanent,
        // the store refused the request itself (a key too long, a bad argument): trying
        // again gives the same answer
        _ if refused(&e.to_string()) => ErrorKind::Permanent,
        _ => ErrorKind::Temporary,
    };
    let message = match kind {
        ErrorKind::Missing => format!("{what}: not found"),
        ErrorKind::AlreadyExists => format!("{what}: already exists (objects are never replaced)"),
        _ => format!("{what}: {}", without_queries(&e.to_string())),
    };
    Error::new(kind, message).with_source(e)
}

/// True if object_store's message `text` reports a 4xx status other than 408 (timeout)
/// and 429 (throttled), and other than S3's `RequestTimeout`, which comes as a 400.
fn refused(text: &str) -> bool {
    let Some((_, rest)) = text.split_once("status code: ") else {
        return false;
    };
    if rest.contains("RequestTimeout") {
        return false;
    }
    rest.get(..3)
        .and_then(|c| c.parse::<u16>().ok())
        .is_some_and(|c| (400..500).contains(&c) && c != 408 && c != 429)
}

/// `text` with the query of every URL in it cut off: object_store's messages quote the
/// request's URL, whose query carries the SAS token when one signs the requests.
fn without_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_url = false;
    let mut cut = false;
    for (i, c) in text.char_indices() {
        // only white space ends a URL here: a key may hold `)`, `'`, `"` or `,`
        if c.is_whitespace() {
            in_url = false;
            cut = false;
        } else if !in_url && text[i..].starts_with("://") {
            in_url = true;
        }
        if in_url && c == '?' && !cut {
            cut = true;
            out.push_str("?…");
        }
        if !cut {
            out.push(c);
        }
    }
    out
}

/// No HTTP retries of object_store's own: the caller's policy decides. (The client options
/// stay the ones the builder read from the environment, `AWS_ALLOW_HTTP` among them.)
fn no_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 0,
        ..RetryConfig::default()
    }
}

/// A connection to one container or bucket: the store, and the runtime its requests run
/// on (shared by [`ObjectBackend`] and [`crate::Bucket`]).
pub(crate) struct Connection {
    pub(crate) store: Arc<dyn ObjectStore>,
    /// The same store, listed a page at a time.
    pub(crate) pages: Arc<dyn PaginatedListStore>,
    pub(crate) rt: tokio::runtime::Runtime,
}

impl Connection {
    /// Connect to `location` (`azure://…` or `s3://…`); nothing is read yet. `identity`
    /// signs Azure requests when the environment names no key, SAS or emulator. `what`
    /// names the location in errors ("repository location").
    pub(crate) fn new(
        what: &str,
        location: &str,
        identity: impl FnOnce() -> Option<Arc<dyn TokenSource>>,
    ) -> Result<Self, Error> {
        let bad =
            |e: String| Error::new(ErrorKind::InvalidInput, format!("{what} `{location}`: {e}"));
        let url = url::Url::parse(location).map_err(|e| bad(e.to_string()))?;
        let (store, pages): (Arc<dyn ObjectStore>, Arc<dyn PaginatedListStore>) = match url.scheme()
        {
            "azure" | "az" => {
                use object_store::azure::AzureConfigKey as K;
                let b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(location)
                    .with_retry(no_retries());
                // a key, a SAS, a token or the emulator in the environment decide; else the
                // admin's Azure identity (the one plugins use) signs the requests
                let explicit = [K::AccessKey, K::SasKey, K::Token, K::UseEmulator]
                    .iter()
                    .any(|k| {
                        b.get_config_value(k)
                            .is_some_and(|v| !v.is_empty() && v != "false")
                    });
                let b = match (explicit, identity()) {
                    (false, Some(id)) => b.with_credentials(Arc::new(IdentityCredentials(id))),
                    _ => b,
                };
                let s = Arc::new(b.build().map_err(|e| {
                    bad(format!("{e} (set AZURE_STORAGE_ACCOUNT_NAME, and sign in with `rehydra azure login` or set a key or SAS; see the README)"))
                })?);
                (s.clone(), s)
            }
            "s3" => {
                let s = Arc::new(
                    object_store::aws::AmazonS3Builder::from_env()
                        .with_url(location)
                        .with_retry(no_retries())
                        .build()
                        .map_err(|e| bad(format!("{e} (set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION or AWS_ENDPOINT, see the README)")))?,
                );
                (s.clone(), s)
            }
            s => return Err(bad(format!("unknown scheme `{s}`"))),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rehydra-object-store")
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the object-store runtime", e))?;
        Ok(Self { store, pages, rt })
    }
}

impl ObjectBackend {
    /// Connect to `location` (`azure://…` or `s3://…`); nothing is read yet. `identity`
    /// signs Azure requests when the environment names no key, SAS or emulator.
    ///
    /// # Errors
    /// A malformed location, an unknown scheme, or settings the store's builder refuses.
    pub fn new(
        location: &str,
        identity: impl FnOnce() -> Option<Arc<dyn TokenSource>>,
    ) -> Result<Self, Error> {
        let Connection { store, rt, .. } =
            Connection::new("repository location", location, identity)?;
        let prefix = url::Url::parse(location)
            .map(|u| u.path().trim_matches('/').to_string())
            .unwrap_or_default();
        Ok(Self {
            store,
            prefix,
            location: location.trim_end_matches('/').to_string(),
            rt,
        })
    }

    fn path(&self, kind: FileKind, name: &str) -> Path {
        let rel = match kind {
            FileKind::Config => name.to_string(),
            FileKind::Pack => format!("packs/{}/{name}", name.get(..2).unwrap_or("00")),
            _ => format!("{}/{name}", kind.dir()),
        };
        if self.prefix.is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn what(&self, p: &Path) -> String {
        let rel = p.as_ref().strip_prefix(&self.prefix).unwrap_or(p.as_ref());
        format!("{}/{}", self.location, rel.trim_start_matches('/'))
    }

    /// Whether anything at all lies under the prefix (for `init`).
    ///
    /// # Errors
    /// The listing failed.
    pub fn is_empty(&self) -> Result<bool, Error> {
        let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        let r = self
            .rt
            .block_on(self.store.list_with_delimiter(prefix.as_ref()))
            .map_err(|e| err(self.location.clone(), e))?;
        Ok(r.objects.is_empty() && r.common_prefixes.is_empty())
    }
}

impl Backend for ObjectBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn create(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), Error> {
        let p = self.path(kind, name);
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.rt
            .block_on(self.store.put_opts(&p, data.to_vec().into(), create))
            .map(|_| ())
            .map_err(|e| err(format!("writing {}", self.what(&p)), e))
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, Error> {
        let p = self.path(kind, name);
        self.rt
            .block_on(async { self.store.get(&p).await?.bytes().await })
            .map(Vec::from)
            .map_err(|e| err(format!("reading {}", self.what(&p)), e))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, Error> {
        let p = self.path(kind, name);
        let b = self
            .rt
            .block_on(self.store.get_range(&p, offset..offset + u64::from(len)))
            .map_err(|e| err(format!("reading {}", self.what(&p)), e))?;
        if b.len() != len as usize {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "{}: {} bytes at {offset} asked, {} there (truncated object)",
                    self.what(&p),
                    len,
                    b.len()
                ),
            ));
        }
        Ok(Vec::from(b)) // no copy when the body is one buffer
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64, Error> {
        let p = self.path(kind, name);
        self.rt
            .block_on(self.store.head(&p))
            .map(|m| m.size)
            .map_err(|e| err(format!("reading {}", self.what(&p)), e))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>, Error> {
        let dir = [self.prefix.as_str(), kind.dir()]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        let prefix = (!dir.is_empty()).then(|| Path::from(dir.as_str()));
        let metas: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on(async {
                if kind == FileKind::Config {
                    // the top level only
                    Ok(self
                        .store
                        .list_with_delimiter(prefix.as_ref())
                        .await?
                        .objects)
                } else {
                    self.store.list(prefix.as_ref()).try_collect().await
                }
            })
            .map_err(|e| err(format!("listing {}", self.location), e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_string();
                Some(FileInfo { name, size: m.size })
            })
            .collect())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), Error> {
        let p = self.path(kind, name);
        match self.rt.block_on(self.store.delete(&p)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(format!("deleting {}", self.what(&p)), e)),
        }
    }

    fn clean_leftovers(&self, _age: std::time::Duration) -> Result<usize, Error> {
        Ok(0) // puts are atomic: an interrupted write leaves nothing
    }
}

/// Azure Blob requests signed with the admin's Azure identity (Storage audience).
#[derive(Debug)]
struct IdentityCredentials(Arc<dyn TokenSource>);

/// The token scope of Azure Storage.
const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

#[async_trait::async_trait]
impl object_store::CredentialProvider for IdentityCredentials {
    type Credential = object_store::azure::AzureCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<Self::Credential>> {
        let id = self.0.clone();
        let fail = |e: String| object_store::Error::Generic {
            store: "MicrosoftAzure",
            source: format!("signing in to Azure Storage: {e}").into(),
        };
        let token = tokio::task::spawn_blocking(move || id.bearer(STORAGE_SCOPE))
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(fail)?;
        Ok(Arc::new(object_store::azure::AzureCredential::BearerToken(
            token,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::{refused, without_queries};

    #[test]
    fn messages_never_quote_a_query() {
        let m = "Error performing GET https://acct.blob.core.windows.net/c/k?sv=2022&sig=SECRET in 0.1s - (https://x/y?sig=TWO), \"https://z/?a=b\" https://c/p/x'y),z?sig=THREE a?b";
        let r = without_queries(m);
        for secret in ["SECRET", "TWO", "a=b", "THREE"] {
            assert!(!r.contains(secret), "{secret}: {r}");
        }
        assert!(
            r.contains("https://acct.blob.core.windows.net/c/k?… in 0.1s"),
            "{r}"
        );
        assert!(r.ends_with(" a?b"), "text that is no URL is kept: {r}");
    }

    #[test]
    fn a_request_the_store_refuses_is_not_tried_again() {
        let m = |s: &str| {
            format!(
                "Error performing GET http://h/b/k in 1ms - Server returned non-2xx status code: {s}: <Error/>"
            )
        };
        assert!(refused(&m("400 Bad Request")));
        assert!(refused(&m("403 Forbidden")));
        assert!(!refused(&m("429 Too Many Requests")));
        assert!(!refused(&m("408 Request Timeout")));
        assert!(!refused(&m("400 Bad Request").replace(
            "<Error/>",
            "<Error><Code>RequestTimeout</Code></Error>"
        )));
        assert!(!refused(&m("503 Service Unavailable")));
        assert!(!refused("connection reset"));
    }
}
