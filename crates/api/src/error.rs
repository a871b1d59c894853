//! The API's error: a stable code (for exit codes and the UI) and a message.

use rehydra_core::ErrorKind;
pub use rehydra_core::Hint;
use serde::Serialize;

/// Stable error codes. Shells switch on these, never on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// Wrong password.
    WrongPassword,
    /// No repository at the location.
    NotARepository,
    /// Newer format.
    UnsupportedVersion,
    /// Corrupt data.
    Corrupt,
    /// Missing object.
    Missing,
    /// Restore target exists.
    TargetExists,
    /// Locked by another prune.
    Locked,
    /// Bad input.
    InvalidInput,
    /// No space left.
    NoSpace,
    /// I/O or other failure.
    Io,
    /// Cancelled.
    Cancelled,
    /// A plugin was refused (unsigned, untrusted, tampered, wrong contract, malformed).
    PluginRejected,
    /// A plugin failed, crashed or was stopped at a limit.
    PluginFailed,
    /// A plan has blockers (a prerequisite is missing): nothing was touched.
    Blocked,
}

impl Code {
    /// The CLI exit code for this error (documented in the README).
    pub fn exit_code(self) -> i32 {
        match self {
            Code::InvalidInput => 2,
            Code::NotARepository => 10,
            // restic's numbers: 10 no repository, 11 locked, 12 wrong password
            Code::Locked => 11,
            Code::WrongPassword => 12,
            Code::TargetExists => 13,
            Code::Corrupt | Code::Missing => 14,
            Code::UnsupportedVersion => 15,
            Code::NoSpace => 16,
            Code::Cancelled => 130,
            Code::PluginRejected => 17,
            Code::PluginFailed => 18,
            Code::Blocked => 19,
            Code::Io => 1,
        }
    }
}

/// An API error.
#[derive(Debug, thiserror::Error, Serialize)]
#[error("{message}")]
pub struct ApiError {
    /// Code.
    pub code: Code,
    /// What went wrong, naming the object concerned.
    pub message: String,
    /// What the user can do about it, for each shell to say in its own words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<Hint>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }
}

impl From<rehydra_storage::StorageError> for ApiError {
    fn from(e: rehydra_storage::StorageError) -> Self {
        rehydra_core::Error::from(e).into()
    }
}

impl From<rehydra_core::Error> for ApiError {
    fn from(e: rehydra_core::Error) -> Self {
        let code = match e.kind() {
            ErrorKind::WrongPassword => Code::WrongPassword,
            ErrorKind::NotARepository => Code::NotARepository,
            ErrorKind::UnsupportedVersion => Code::UnsupportedVersion,
            ErrorKind::Corrupt => Code::Corrupt,
            ErrorKind::Missing => Code::Missing,
            ErrorKind::TargetExists => Code::TargetExists,
            ErrorKind::Locked => Code::Locked,
            ErrorKind::InvalidInput => Code::InvalidInput,
            ErrorKind::NoSpace => Code::NoSpace,
            ErrorKind::Io => Code::Io,
            ErrorKind::Cancelled => Code::Cancelled,
        };
        Self {
            code,
            message: e.to_string(),
            hint: e.hint(),
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, ApiError>;
