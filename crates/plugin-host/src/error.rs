//! Errors of the plugin host. Each names the plugin and says what to do.

use std::path::PathBuf;

/// Result of host operations.
pub type Result<T, E = PluginError> = std::result::Result<T, E>;

/// Why loading or calling a plugin failed. The host itself always survives.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a WebAssembly component (or is damaged).
    #[error("{path}: not a valid plugin: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The embedded manifest is missing or invalid.
    #[error("{path}: plugin manifest: {reason}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No signature and developer mode is off.
    #[error(
        "plugin `{id}` is not signed; only signed plugins load (for your own builds, enable developer mode with --dev or REHYDRA_PLUGIN_DEV=1)"
    )]
    Unsigned {
        /// Plugin id.
        id: String,
    },
    /// The signature does not match the bytes: the file was changed after signing.
    #[error(
        "plugin `{id}`: signature does not match the file (it was modified after signing); reinstall it from its publisher"
    )]
    BadSignature {
        /// Plugin id.
        id: String,
    },
    /// Signed by a key that is not trusted for its publisher.
    #[error(
        "plugin `{id}` is signed by publisher `{publisher}` with key {key}, which is not trusted; if you trust it: rehydra plugins trust {publisher} {key}"
    )]
    UnknownPublisher {
        /// Plugin id.
        id: String,
        /// Publisher named in the manifest.
        publisher: String,
        /// Signing key (hex).
        key: String,
    },
    /// Built against a contract this host does not speak.
    #[error(
        "plugin `{id}` was built for {found}; this Rehydra speaks rehydra:plugin@{supported} (rebuild the plugin with a matching plugin-sdk, or update Rehydra)"
    )]
    ContractMismatch {
        /// Plugin id.
        id: String,
        /// What the plugin uses.
        found: String,
        /// What the host offers.
        supported: String,
    },
    /// The component could not be compiled or linked.
    #[error("plugin `{id}` cannot be loaded: {reason}")]
    Link {
        /// Plugin id.
        id: String,
        /// The cause.
        reason: String,
    },
    /// No such plugin is installed.
    #[error("no plugin `{0}` is installed (see: rehydra plugins list)")]
    NotInstalled(String),
    /// The plugin trapped (panicked, hit `unreachable`, …) and was stopped.
    #[error("plugin `{plugin}` crashed in `{verb}` and was stopped: {message}")]
    Trap {
        /// Plugin id.
        plugin: String,
        /// The verb.
        verb: String,
        /// Trap and last stderr lines.
        message: String,
    },
    /// The plugin ran past its time limit and was stopped.
    #[error("plugin `{plugin}` exceeded its time limit of {secs} s in `{verb}` and was stopped")]
    Timeout {
        /// Plugin id.
        plugin: String,
        /// The verb.
        verb: String,
        /// The limit.
        secs: u64,
    },
    /// The plugin tried to use more memory than allowed and was stopped.
    #[error("plugin `{plugin}` exceeded its memory limit of {mib} MiB in `{verb}` and was stopped")]
    MemoryLimit {
        /// Plugin id.
        plugin: String,
        /// The verb.
        verb: String,
        /// The limit.
        mib: u64,
    },
    /// The plugin returned an error.
    #[error("plugin `{plugin}` failed in `{verb}`: {message}")]
    Failed {
        /// Plugin id.
        plugin: String,
        /// The verb.
        verb: String,
        /// Error code reported by the plugin.
        code: crate::ErrorCode,
        /// Its message.
        message: String,
    },
    /// Bad input to the host (a grant, a key, a setting).
    #[error("{0}")]
    Invalid(String),
}

impl PluginError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<rehydra_plugin_rules::InvalidGrant> for PluginError {
    fn from(e: rehydra_plugin_rules::InvalidGrant) -> Self {
        Self::Invalid(e.0)
    }
}
