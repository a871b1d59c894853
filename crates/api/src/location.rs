//! Turning a repository location string into a backend.

use std::sync::Arc;

use rehydra_core::backend::{Backend, LocalBackend};

use crate::error::{ApiError, Code, Result};

fn unsupported(location: &str) -> Option<ApiError> {
    for scheme in ["azure://", "az://", "s3://", "https://", "http://"] {
        if location.starts_with(scheme) {
            return Some(ApiError::new(
                Code::InvalidInput,
                format!(
                    "repository location `{location}`: the {scheme} backend is not available in this build yet; use a local folder or an SMB path"
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
pub fn backend_for(location: &str) -> Result<Arc<dyn Backend>> {
    if let Some(e) = unsupported(location) {
        return Err(e);
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
pub(crate) fn create_backend(location: &str) -> Result<Arc<dyn Backend>> {
    if let Some(e) = unsupported(location) {
        return Err(e);
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
