//! Turning a repository location string into a backend.

use std::sync::Arc;

use rehydra_storage::{
    Backend, FileKind, Limited, LocalBackend, ObjectBackend, RetryPolicy, Retrying,
    StorageErrorKind, TokenSource,
};

use crate::Context;
use crate::error::{ApiError, Code, Result};

/// The admin's Azure identity as the storage crate asks for it.
#[derive(Debug)]
struct AzureIdentity(rehydra_azure::Identity);

impl TokenSource for AzureIdentity {
    fn bearer(&self, scope: &str) -> std::result::Result<String, String> {
        self.0
            .token(scope)
            .map(|t| t.secret().to_string())
            .map_err(|e| e.to_string())
    }
}

/// The admin's Azure identity, which signs Azure Storage requests when the environment
/// names no key; `None` when nobody signed in.
pub(crate) fn identity(ctx: &Context) -> Option<Arc<dyn TokenSource>> {
    crate::azure::current(ctx)
        .ok()
        .map(|id| Arc::new(AzureIdentity(id)) as Arc<dyn TokenSource>)
}

/// Connect to an object-store location, signing Azure requests with the admin's identity
/// when the environment names no key.
fn object_backend(ctx: &Context, location: &str) -> Result<ObjectBackend> {
    Ok(ObjectBackend::new(location, || identity(ctx))?)
}

/// Every backend behind the one retry policy (an SMB share hiccups as an object store
/// does), its transfers held to the context's bandwidth limits.
fn retrying(ctx: &Context, b: impl Backend + 'static) -> Arc<dyn Backend> {
    Arc::new(Retrying::new(
        Limited::new(b, ctx.bandwidth),
        RetryPolicy::default(),
    ))
}

/// `location` as the catalog records it: a local path made absolute (so the recent
/// repositories work from any folder), anything else as given.
pub(crate) fn recorded(location: &str) -> String {
    if object_store(location) || location.is_empty() {
        return location.to_string();
    }
    std::path::absolute(location).map_or_else(|_| location.to_string(), |p| p.display().to_string())
}

fn object_store(location: &str) -> bool {
    ["azure://", "az://", "s3://"]
        .iter()
        .any(|s| location.starts_with(s))
}

fn unsupported(location: &str) -> Option<ApiError> {
    for scheme in ["https://", "http://"] {
        if location.starts_with(scheme) {
            return Some(ApiError::new(
                Code::InvalidInput,
                format!(
                    "repository location `{location}`: {scheme} locations are not supported; use a folder, an SMB path, azure://CONTAINER/PREFIX or s3://BUCKET/PREFIX"
                ),
            ));
        }
    }
    None
}

/// The backend for an existing repository location (a folder, or an SMB/UNC path).
///
/// # Errors
/// Unsupported scheme or a location that does not exist.
pub fn backend_for(ctx: &Context, location: &str) -> Result<Arc<dyn Backend>> {
    if let Some(e) = unsupported(location) {
        return Err(e);
    }
    if object_store(location) {
        let b = retrying(ctx, object_backend(ctx, location)?);
        return match b.size(FileKind::Config, "config") {
            Ok(_) => Ok(b),
            Err(e) if e.kind() == StorageErrorKind::Missing => Err(ApiError::new(
                Code::NotARepository,
                format!(
                    "no repository at {location} (no config object); check the container and prefix, or create it with `rehydra init`"
                ),
            )),
            Err(e) => Err(e.into()),
        };
    }
    if location.is_empty() {
        return Err(ApiError::new(
            Code::InvalidInput,
            "no repository given: use -r/--repo or set REHYDRA_REPOSITORY",
        ));
    }
    let p = std::path::Path::new(location);
    if !p.exists() {
        return Err(ApiError::new(
            Code::NotARepository,
            format!(
                "repository {location} does not exist; check the path, or create it with `rehydra init`"
            ),
        ));
    }
    Ok(retrying(ctx, LocalBackend::new(p)))
}

/// A backend for a new repository: the folder must be absent or empty.
///
/// # Errors
/// Unsupported scheme, a non-empty folder, or a folder that cannot be created.
pub(crate) fn create_backend(ctx: &Context, location: &str) -> Result<Arc<dyn Backend>> {
    if let Some(e) = unsupported(location) {
        return Err(e);
    }
    if object_store(location) {
        let b = object_backend(ctx, location)?;
        if !RetryPolicy::default().run(|| b.is_empty())? {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "{location} is not empty; choose an empty container or a new prefix for a repository"
                ),
            ));
        }
        return Ok(retrying(ctx, b));
    }
    if location.is_empty() {
        return Err(ApiError::new(
            Code::InvalidInput,
            "no repository given: use -r/--repo or set REHYDRA_REPOSITORY",
        ));
    }
    let p = std::path::Path::new(location);
    if p.join("config").exists() {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!("{location} already holds a repository"),
        ));
    }
    if let Ok(mut rd) = std::fs::read_dir(p)
        && rd.next().is_some()
    {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!("{location} is not empty; choose an empty or new folder for a repository"),
        ));
    }
    let b = LocalBackend::new(p);
    b.create_layout()?;
    Ok(retrying(ctx, b))
}

/// What `check --storage` found.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct StorageCheck {
    /// The location checked.
    pub location: String,
    /// The scratch folder or prefix the checks ran in (removed afterwards).
    pub scratch: String,
    /// The rules of the storage contract it broke; empty when it can hold a repository.
    pub broken: Vec<String>,
}

/// Check that the storage at `location` (a folder, SMB path, container or bucket) behaves
/// as a repository needs: the conformance suite every backend passes, run in a new scratch
/// folder or prefix below it that is removed afterwards. No repository or password is needed.
///
/// # Errors
/// The location cannot be used at all (a missing folder, bad credentials, unreachable).
pub fn check_storage(ctx: &Context, location: &str) -> Result<StorageCheck> {
    if let Some(e) = unsupported(location) {
        return Err(e);
    }
    let name = format!(
        "rehydra-storage-check-{}",
        rehydra_core::Id::random().short()
    );
    let local = !object_store(location);
    let scratch = if local {
        let p = std::path::Path::new(location);
        if !p.is_dir() {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "{location} is not a folder; check the path (the storage check writes below it)"
                ),
            ));
        }
        p.join(&name).to_string_lossy().into_owned()
    } else {
        format!("{}/{name}", location.trim_end_matches('/'))
    };
    let b = create_backend(ctx, &scratch)?;
    let broken = rehydra_storage::conformance::check(b.as_ref());
    if local {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(StorageCheck {
        location: location.to_string(),
        scratch,
        broken,
    })
}
