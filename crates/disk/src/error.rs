//! Errors that name the image and the problem.

use std::path::Path;

/// A disk-image error.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// Image.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The image is damaged or not what it claims to be.
    #[error("{path}: {what}")]
    Malformed {
        /// Image.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// A valid image using something this build does not implement.
    #[error("{path}: {what}")]
    Unsupported {
        /// Image.
        path: String,
        /// What is missing.
        what: String,
    },
}

impl DiskError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
    pub(crate) fn malformed(path: &Path, what: impl Into<String>) -> Self {
        Self::Malformed {
            path: path.display().to_string(),
            what: what.into(),
        }
    }
    pub(crate) fn unsupported(path: &Path, what: impl Into<String>) -> Self {
        Self::Unsupported {
            path: path.display().to_string(),
            what: what.into(),
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, DiskError>;
