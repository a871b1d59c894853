//! The engine's one public error type.
//!
//! Every error carries a [`ErrorKind`] (what went wrong, stable for callers and exit codes),
//! a message that names the object concerned, and where there is one a [`Hint`]: the fix,
//! as a fact each shell says in its own words (the CLI names its flags, the app its
//! controls). Engine messages never name a flag.

use std::fmt;

/// What class of failure an error is: one vocabulary for the engine, the plugin host and
/// the API, sent to the UI in kebab case (as `Code`). Shells switch on it, never on message
/// text, and map it to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
#[ts(rename = "Code")]
pub enum ErrorKind {
    /// The password opened no key slot.
    WrongPassword,
    /// The path holds no Rehydra repository.
    NotARepository,
    /// The repository was written by a newer format version than this build reads.
    UnsupportedVersion,
    /// Stored data failed authentication or its hash: corruption or tampering.
    Corrupt,
    /// A referenced object is missing from the repository.
    Missing,
    /// A restore target already exists and overwriting was not allowed.
    TargetExists,
    /// Another process holds the exclusive lock.
    Locked,
    /// The caller gave input that cannot be used (bad id, bad path, bad option).
    InvalidInput,
    /// The storage ran out of space.
    NoSpace,
    /// Any other I/O failure.
    Io,
    /// The operation was cancelled by the caller.
    Cancelled,
    /// A plugin was refused (unsigned, untrusted, tampered, wrong contract, malformed).
    /// Raised above the engine, by the plugin host.
    PluginRejected,
    /// A plugin failed, crashed or was stopped at a limit. Raised by the plugin host.
    PluginFailed,
    /// A plan has blockers (a prerequisite is missing): nothing was touched.
    Blocked,
}

/// What the user can do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum Hint {
    /// Check the repository's structure.
    Check,
    /// Check the repository reading all data, to find the restore points concerned.
    CheckReadData,
    /// Check the repository location, or create a repository there.
    LocationOrInit,
    /// Give the repository's password.
    Password,
    /// List the key slots to find the right one.
    ListKeySlots,
    /// List the restore points to find the right one.
    ListRestorePoints,
    /// Restore one item at a time (choose the item).
    OneItem,
    /// Choose an empty target, or allow replacing what exists.
    Overwrite,
    /// Allow writing over the existing disk or device, in place.
    OverwriteInPlace,
    /// Say what to back up.
    Sources,
}

/// The engine's error: a kind, a message naming what went wrong, and a hint.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<Hint>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// Say what the user can do about it.
    #[must_use]
    pub fn with_hint(mut self, hint: Hint) -> Self {
        self.hint = Some(hint);
        self
    }

    /// What the user can do about it, if the engine knows.
    pub fn hint(&self) -> Option<Hint> {
        self.hint
    }

    /// Attach the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What class of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Corruption error naming the object.
    pub(crate) fn corrupt(what: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::Corrupt,
            format!("{what}: data is corrupt or was tampered with (authentication failed)"),
        )
        .with_hint(Hint::CheckReadData)
    }

    /// Wrap an I/O error with the path or object it concerned. What counts as "no space"
    /// (and its hint) is decided once, by the storage crate.
    pub(crate) fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        use rehydra_storage::StorageErrorKind as S;
        let e = rehydra_storage::StorageError::io(context, err);
        let kind = match e.kind() {
            S::NoSpace => ErrorKind::NoSpace,
            S::Missing => ErrorKind::Missing,
            _ => ErrorKind::Io,
        };
        Self::new(kind, e.to_string()).with_source(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<rehydra_storage::StorageError> for Error {
    fn from(e: rehydra_storage::StorageError) -> Self {
        use rehydra_storage::StorageErrorKind as S;
        let kind = match e.kind() {
            S::Missing => ErrorKind::Missing,
            S::Truncated => ErrorKind::Corrupt,
            S::NoSpace => ErrorKind::NoSpace,
            S::InvalidInput => ErrorKind::InvalidInput,
            S::AlreadyExists | S::Temporary | S::Permanent => ErrorKind::Io,
            S::Cancelled => ErrorKind::Cancelled,
        };
        Self::new(kind, e.to_string()).with_source(e)
    }
}

impl From<rehydra_target::TargetError> for Error {
    fn from(e: rehydra_target::TargetError) -> Self {
        use rehydra_target::TargetError as T;
        match e {
            T::Io { what, source } => {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    Self::new(ErrorKind::TargetExists, format!("{what}: {source}"))
                } else {
                    Self::io(what, source)
                }
            }
            e @ (T::NotAFolder { .. } | T::BadName { .. }) => {
                Self::new(ErrorKind::InvalidInput, e.to_string())
            }
        }
    }
}
