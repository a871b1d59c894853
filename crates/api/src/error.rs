//! The API's error: a stable code (for exit codes and the UI) and a message.

pub use rehydra_core::Hint;
use serde::Serialize;

/// Stable error codes, the engine's error classes: one enum from the engine to the UI.
pub use rehydra_core::ErrorKind as Code;

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
        Self {
            code: e.kind(),
            message: e.to_string(),
            hint: e.hint(),
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, ApiError>;

/// Refuses to go on with a plan that has blockers ([`Code::Blocked`], every blocker named).
/// `refused` says what did not happen, e.g. "the restore plan is blocked, nothing was
/// touched".
pub(crate) fn refuse_blocked(refused: &str, blockers: &[String]) -> Result<()> {
    if blockers.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        Code::Blocked,
        format!("{refused}: {}", blockers.join("; ")),
    ))
}
