//! The contract's error codes (`error-code` in `plugin-sdk/wit/plugin.wit`) and the one
//! mapping of OS errors onto them.

/// Error codes of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum ErrorCode {
    /// Not granted.
    Denied,
    /// Does not exist.
    NotFound,
    /// Bad argument.
    InvalidInput,
    /// Endpoint unreachable.
    Unavailable,
    /// Cancelled by the user.
    Cancelled,
    /// Not supported here.
    Unsupported,
    /// Anything else.
    Failed,
}

/// An error a host call returns to the plugin: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[error("{message}")]
pub struct HostError {
    /// Code.
    pub code: ErrorCode,
    /// Message.
    pub message: String,
}

impl HostError {
    /// An error with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An OS error while doing `what` (usually the path the plugin named): not found,
    /// permission denied (`denied`), already exists (`invalid-input`), anything else
    /// (`failed`).
    pub fn io(what: &str, e: &std::io::Error) -> Self {
        let code = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorCode::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorCode::Denied,
            std::io::ErrorKind::AlreadyExists => ErrorCode::InvalidInput,
            _ => ErrorCode::Failed,
        };
        Self::new(code, format!("{what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_map_onto_the_contract() {
        let e = |kind| HostError::io("/x", &std::io::Error::from(kind)).code;
        assert_eq!(e(std::io::ErrorKind::NotFound), ErrorCode::NotFound);
        assert_eq!(e(std::io::ErrorKind::PermissionDenied), ErrorCode::Denied);
        assert_eq!(
            e(std::io::ErrorKind::AlreadyExists),
            ErrorCode::InvalidInput
        );
        assert_eq!(e(std::io::ErrorKind::Interrupted), ErrorCode::Failed);
        let m = HostError::io("/x", &std::io::Error::other("boom")).message;
        assert_eq!(m, "/x: boom");
    }
}
