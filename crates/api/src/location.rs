//! Turning a repository location string into a backend.

use std::sync::Arc;

use rehydra_core::backend::{Backend, FileKind, LocalBackend};

use crate::Context;
use crate::error::{ApiError, Code, Result};
use crate::object_backend::ObjectBackend;

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
        let b = ObjectBackend::new(location, || crate::azure::current(ctx).ok())?;
        return match b.size(FileKind::Config, "config") {
            Ok(_) => Ok(Arc::new(b)),
            Err(e) if e.kind() == rehydra_core::ErrorKind::Missing => Err(ApiError::new(
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
    Ok(Arc::new(LocalBackend::new(p)))
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
        let b = ObjectBackend::new(location, || crate::azure::current(ctx).ok())?;
        if !b.is_empty()? {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "{location} is not empty; choose an empty container or a new prefix for a repository"
                ),
            ));
        }
        return Ok(Arc::new(b));
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
    Ok(Arc::new(b))
}
