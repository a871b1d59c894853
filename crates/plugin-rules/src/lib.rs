//! The rules every plugin capability call follows, in one place for the two hosts that
//! apply them: the real host (`rehydra-plugin-host`, wasmtime) and the SDK's mock host
//! (`rehydra-plugin-sdk`'s `mock`, for plugins' native unit tests).
//!
//! Pure rules and plain types only: no wasmtime, no bindings, no async. Each host
//! converts [`HostError`] and [`files::Entry`] into its own bindings of the WIT
//! contract.
//!
//! - [`grants`]: what a grant (`kind[:scope]`) allows; paths bounded and resolved.
//! - [`files`]: the read side of the `files` capability (stat, list, small reads).
//! - [`objects`]: folders of object storage a plugin reads through `files`.
//! - [`http`]: which answers are retried and how long `Retry-After` asks to wait.
//! - [`points`]: which other restore points a call may name.
//! - [`error`]: the contract's error codes and how an OS error maps onto them.

pub mod error;
pub mod files;
pub mod grants;
pub mod http;
pub mod objects;
pub mod points;

pub use error::{ErrorCode, HostError};
pub use objects::ObjectPath;
pub use grants::{CapabilityKind, Grant, Grants, InvalidGrant, PATH_MAX_BYTES, PATH_MAX_DEPTH};
