//! The storage error: what failed, whether trying again can help, and where.

/// What class of failure a [`StorageError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The file or object does not exist.
    Missing,
    /// `create` found the name taken (files are never overwritten).
    AlreadyExists,
    /// Fewer bytes than asked were there (a truncated file or object).
    Truncated,
    /// The storage is full or over quota.
    NoSpace,
    /// A name or location the backend cannot use.
    InvalidInput,
    /// A failure that may pass: a timeout, a reset connection, throttling, a 5xx.
    /// [`crate::Retrying`] tries these again.
    Temporary,
    /// A failure that will not pass by itself: permissions, authentication, a bad request.
    Permanent,
    /// The job this transfer was for was cancelled while it waited for the bandwidth
    /// limit (see [`crate::heed_cancel`]).
    Cancelled,
}

/// A storage failure, naming the file or object concerned.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    kind: StorageErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Result alias of this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// A new error of `kind`.
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attach the cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What class of failure this is.
    pub fn kind(&self) -> StorageErrorKind {
        self.kind
    }

    /// Whether trying again may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind == StorageErrorKind::Temporary
    }

    /// An I/O error on a local file, classified.
    pub fn io(context: impl std::fmt::Display, err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match err.raw_os_error() {
            Some(28 | 122) => StorageErrorKind::NoSpace, // ENOSPC, EDQUOT
            _ => match err.kind() {
                K::NotFound => StorageErrorKind::Missing,
                K::AlreadyExists => StorageErrorKind::AlreadyExists,
                K::UnexpectedEof => StorageErrorKind::Truncated,
                K::StorageFull | K::QuotaExceeded => StorageErrorKind::NoSpace,
                // an SMB share or NFS mount that hiccups
                K::TimedOut
                | K::Interrupted
                | K::WouldBlock
                | K::ConnectionReset
                | K::ConnectionAborted
                | K::NetworkDown
                | K::NetworkUnreachable
                | K::HostUnreachable
                | K::ResourceBusy => StorageErrorKind::Temporary,
                _ => StorageErrorKind::Permanent,
            },
        };
        let hint = if kind == StorageErrorKind::NoSpace {
            " (no space left: free space or choose another location; nothing already stored was lost)"
        } else {
            ""
        };
        Self::new(kind, format!("{context}: {err}{hint}")).with_source(err)
    }
}
