//! The plugin host: loads workload plugins (WebAssembly components built against
//! `plugin-sdk/wit`) and calls their verbs under capability grants and limits.
//!
//! - A plugin file is one component with its manifest embedded and an ed25519 signature
//!   over everything ([`package`]); unsigned plugins load only in developer mode, signed
//!   ones only if the admin trusts the publisher's key.
//! - Capabilities are denied by default; [`Grants`] decides every call, a denial is an
//!   error for the plugin and an [`AuditEvent`] for the admin.
//! - Each call gets a fresh instance with limits on memory (all memories together),
//!   instances, tables, streams and spooled bytes, a time limit on wall time (its code,
//!   WASI waits and host calls; engine bulk work counts only 50 ms per call) that also
//!   ends waits, a cancel flag that does the same, and a slot in a bounded pool. Traps,
//!   endless loops, sleeps and memory bombs end that call with a [`PluginError`]; the
//!   host carries on. Audit events are capped per call (then summed up).
//! - Bulk data never enters the plugin: the engine capability hands paths to an
//!   [`EngineCapability`] supplied by the caller, which moves the bytes natively.
//! - Compiled components are cached on disk, keyed by the file's hash and the engine's
//!   compatibility hash.
//!
//! This crate knows nothing about repositories or the catalog: callers pass grants,
//! trusted keys and an engine in, and take DTOs and audit events out.

#[cfg(feature = "runtime")]
mod bindings;
#[cfg(feature = "runtime")]
mod cache;
#[cfg(feature = "runtime")]
mod convert;
mod dto;
mod error;
#[cfg(feature = "runtime")]
mod limits;
mod manifest;
pub mod package;
mod policy;
#[cfg(feature = "runtime")]
mod runtime;
mod settings;
#[cfg(feature = "runtime")]
mod state;
mod targets;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub use dto::*;
pub use error::{PluginError, Result};
pub use manifest::{CONTRACT_VERSION, CapabilityRequest, Limits, Manifest};
pub use policy::{CapabilityKind, Grant, Grants, TrustedKey, parse_public_key};
pub use rehydra_plugin_rules::ObjectPath;
pub use rehydra_plugin_rules::files::{Entry as FileEntry, EntryKind as FileEntryKind, LIST_MAX};
pub use rehydra_plugin_rules::points;
#[cfg(feature = "runtime")]
pub use runtime::{HostConfig, LoadInfo, LoadedPlugin, PluginHost, Signer};
pub use settings::{SettingDecl, SettingType, SettingVerb, check_settings};
#[cfg(feature = "runtime")]
pub use state::{DirectoryFound, SqlSignedIn, check_directory, check_sql_server};
pub use targets::{RemoteShell, Target};

/// Disk image formats the engine reads: the disk crate's own type. A plugin names one of
/// auto, raw, VHDX or VHD (the contract's `disk-format`); qcow2 images are read through
/// auto, which detects them.
pub use rehydra_core::disk::Format as DiskFormat;

/// What a plugin asked the engine to store; paths are already checked and resolved.
#[derive(Debug)]
pub enum Ingest {
    /// A folder tree (or a file with its metadata).
    Tree(PathBuf),
    /// One file as a stream.
    File(PathBuf),
    /// A byte range of a file.
    Range {
        /// File.
        path: PathBuf,
        /// Start.
        offset: u64,
        /// Length.
        length: u64,
    },
    /// A disk image.
    Disk {
        /// Image file.
        path: PathBuf,
        /// Format.
        format: DiskFormat,
    },
    /// A disk image read only where it changed since the previous restore point.
    DiskChanged {
        /// Image file.
        path: PathBuf,
        /// Format.
        format: DiskFormat,
        /// The previous restore point's item holding the same disk.
        since_item: String,
        /// Changed `(offset, length)` byte ranges of the virtual disk.
        ranges: Vec<(u64, u64)>,
    },
    /// An item of the previous restore point, kept without reading it again.
    Carried {
        /// The previous restore point's item.
        since_item: String,
    },
    /// A small document pushed by the plugin.
    Document(Vec<u8>),
    /// A pushed stream, spooled to a temporary file (positioned at its start).
    Spooled(File),
}

/// The engine behind the `engine` capability, supplied per call by the caller.
pub trait EngineCapability: Send {
    /// Store `source` as item `item` of the restore point being written.
    ///
    /// # Errors
    /// No backup in progress, unreadable source, storage failure.
    fn ingest(&mut self, item: &str, source: Ingest) -> Result<ItemSummary, HostError>;
    /// The newest restore point of the asset being backed up (same workload), if any.
    ///
    /// # Errors
    /// Not during a backup, or the repository cannot be read.
    fn previous(&mut self) -> Result<Option<RestorePointInfo>, HostError>;
    /// Contents of a small item of that previous restore point, at most `max` bytes.
    ///
    /// # Errors
    /// No previous restore point, unknown item, too large, corrupt data.
    fn read_previous(&mut self, item: &str, max: u64) -> Result<Vec<u8>, HostError>;
    /// Items of the restore point in hand.
    ///
    /// # Errors
    /// No restore point in hand.
    fn items(&mut self) -> Result<Vec<ItemInfo>, HostError>;
    /// Contents of a small item (document or stream), at most `max` bytes.
    ///
    /// # Errors
    /// Unknown item, too large, corrupt data.
    fn read_item(&mut self, item: &str, max: u64) -> Result<Vec<u8>, HostError>;
    /// Another restore point of the asset, workload and plugin of the one in hand, by id,
    /// unique id prefix or `latest` (for comparing two points).
    ///
    /// # Errors
    /// No restore point in hand, no such point of that asset, an ambiguous prefix.
    fn find_point(&mut self, id: &str) -> Result<RestorePointInfo, HostError>;
    /// Contents of a small item of a point [`Self::find_point`] finds, at most `max` bytes.
    ///
    /// # Errors
    /// As [`Self::find_point`] and [`Self::read_item`].
    fn read_point_item(&mut self, point: &str, item: &str, max: u64) -> Result<Vec<u8>, HostError>;
    /// Restore `item` to `target` (already checked against the write grants).
    ///
    /// # Errors
    /// Target exists without overwrite, corrupt data.
    fn restore_item(
        &mut self,
        item: &str,
        target: &Path,
        overwrite: bool,
    ) -> Result<u64, HostError>;
}

/// Supplies authentication for hosts; plugins never see what it returns.
pub trait Credentials: Send + Sync {
    /// Value of the `Authorization` header for `host` (the URL's host name, without
    /// port: which ports may be reached is decided by the grants), if any. Asked again
    /// for every try of a request, so a token that expired meanwhile is replaced.
    ///
    /// # Errors
    /// The host should carry credentials but none can be had (sign-in failed); the
    /// message says why in the admin's words and never contains a secret.
    fn authorization(&self, host: &str) -> Result<Option<String>, String>;

    /// The `Authorization` value for `scheme://host:port`: credentials that belong to
    /// one server of a host (a Kubernetes cluster's token) are told apart by scheme and
    /// port, so a token meant for TLS never goes out in clear. Default:
    /// [`Self::authorization`].
    ///
    /// # Errors
    /// As [`Self::authorization`].
    fn authorization_at(
        &self,
        _scheme: &str,
        host: &str,
        _port: u16,
    ) -> Result<Option<String>, String> {
        self.authorization(host)
    }

    /// The `Authorization` value to send the request again with, after
    /// `scheme://host:port` answered 401 with the `WWW-Authenticate` value `challenge` to
    /// a request that carried credentials; `None` (or the value sent) hands the 401 to the
    /// plugin. Asked at most once per request. Default: `None`.
    ///
    /// # Errors
    /// The challenge can be answered but signing in for it failed; the message says why
    /// and never contains a secret.
    fn answer_challenge(
        &self,
        _scheme: &str,
        _host: &str,
        _port: u16,
        _challenge: &str,
    ) -> Result<Option<String>, String> {
        Ok(None)
    }

    /// TLS of its own for `https://host:port` (a Kubernetes cluster's CA and client
    /// certificate from its kubeconfig), instead of the system's roots and no client
    /// certificate. Default: none.
    ///
    /// # Errors
    /// It is configured but cannot be read; the message never holds a secret.
    fn tls(&self, _host: &str, _port: u16) -> Result<Option<HostTls>, String> {
        Ok(None)
    }
}

/// TLS for one server: the CAs to trust (instead of the system's) and the client
/// certificate to present. Never seen by a plugin.
#[derive(Clone)]
pub struct HostTls {
    /// PEM certificates to trust; `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain followed by its private key.
    pub identity_pem: Option<zeroize::Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for HostTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTls")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("identity_pem", &self.identity_pem.is_some())
            .finish()
    }
}

/// No credentials.
pub struct NoCredentials;
impl Credentials for NoCredentials {
    fn authorization(&self, _host: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// How the host reaches and binds to a directory the admin configured (see
/// [`Directories`]). The password never reaches a plugin, a log or an event.
pub struct DirectoryAccess {
    /// `host:port` to connect to.
    pub address: String,
    /// StartTLS on the LDAP port instead of LDAPS.
    pub starttls: bool,
    /// How the host proves who it is.
    pub bind: DirectoryBind,
    /// PEM certificates to trust for this directory instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

/// How the host binds to a directory.
pub enum DirectoryBind {
    /// A simple bind over the TLS connection.
    Password {
        /// The account (a DN or `user@domain`).
        account: String,
        /// Its password (wiped from memory when dropped).
        password: zeroize::Zeroizing<String>,
    },
    /// Kerberos (SASL GSSAPI with the TLS channel binding) as whoever this process runs
    /// as: the ticket cache on Unix (`kinit`, `KRB5CCNAME`), the logged-on account or the
    /// service's account on Windows. No password is kept.
    Kerberos {
        /// The directory server's host name, as in its service principal `ldap/<host>`;
        /// the TLS certificate is checked against it too.
        host: String,
        /// Bind only as this principal (`user@REALM`), never as another the cache holds.
        principal: Option<String>,
    },
}

impl std::fmt::Debug for DirectoryAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bind = match &self.bind {
            DirectoryBind::Password { account, .. } => account.clone(),
            DirectoryBind::Kerberos { host, principal } => format!(
                "kerberos as {} to ldap/{host}",
                principal.as_deref().unwrap_or("the default principal")
            ),
        };
        f.debug_struct("DirectoryAccess")
            .field("address", &self.address)
            .field("starttls", &self.starttls)
            .field("bind", &bind)
            .finish_non_exhaustive()
    }
}

/// Supplies how to reach directories (`ldap:<server>` grants); plugins never see it.
pub trait Directories: Send + Sync {
    /// The access for `server` (as the admin named it, lower case), `None` if it is not
    /// configured.
    ///
    /// # Errors
    /// It is configured but its secret cannot be read; the message never holds a secret.
    fn directory(&self, server: &str) -> Result<Option<DirectoryAccess>, String>;
}

/// No directories.
pub struct NoDirectories;
impl Directories for NoDirectories {
    fn directory(&self, _server: &str) -> Result<Option<DirectoryAccess>, String> {
        Ok(None)
    }
}

/// How the host signs in to a SQL Server instance the admin configured (see
/// [`SqlServers`]). The password never reaches a plugin, a log or an event.
#[derive(Clone)]
pub struct SqlAccess {
    /// `host:port` to connect to.
    pub address: String,
    /// How to sign in.
    pub login: SqlLogin,
    /// Its password, or for [`SqlLogin::Entra`] the access token (wiped from memory when
    /// dropped; empty for [`SqlLogin::Integrated`]).
    pub password: zeroize::Zeroizing<String>,
    /// PEM certificates to trust for this instance besides the system's roots (the TLS
    /// library adds them to the platform's store).
    pub ca_pem: Option<Vec<u8>>,
    /// Where the batches run instead of a connection of the host's own (`None`: the host
    /// connects).
    pub via: Option<SqlVia>,
}

/// The domain and user of `login` when it is one Windows account's `DOMAIN\user`: neither
/// part empty nor holding another realm's `@`, a service's `/`, a `\` or a space.
#[must_use]
pub fn windows_account(login: &str) -> Option<(&str, &str)> {
    let (domain, user) = login.split_once('\\')?;
    let plain = |s: &str| {
        !s.is_empty() && !s.contains(['@', '/', '\\']) && !s.chars().any(char::is_whitespace)
    };
    (plain(domain) && plain(user)).then_some((domain, user))
}

/// Where the host runs an instance's batches through PowerShell's SQL client, signed in
/// as the account commands run as there (integrated security only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlVia {
    /// This machine's PowerShell 7 (`pwsh`).
    Local,
    /// A command target, over SSH.
    Target(Target),
}

/// The kind of account the host signs in to SQL Server with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlLogin {
    /// A SQL Server login.
    Sql(String),
    /// A Windows account (`DOMAIN\user`, see [`windows_account`]) and its password,
    /// signed in with NTLM on Windows and by Kerberos elsewhere.
    Windows(String),
    /// The account this process runs as, with no password: on Unix Kerberos through
    /// GSSAPI (the ticket cache, or a client keytab), asking for the service principal
    /// `MSSQLSvc/<host>:<port>` of the instance's configured name; on Windows SSPI's
    /// NTLM package as the signed-in or service account (the driver's; no principal).
    /// Either way the certificate is checked against the name's host; with a login
    /// (`DOMAIN\user`), the instance must say it signed in that login (`SUSER_SNAME()`)
    /// before anything else is sent.
    Integrated(Option<String>),
    /// The admin's Azure sign-in (Microsoft Entra ID): an access token for the instance's
    /// audience, sent in the login's federated authentication extension (TDS `FEDAUTH`,
    /// security token). The token is the access's `password`, fetched from the sign-in
    /// each time the access is asked for; the certificate is checked against the
    /// address, as for a SQL login.
    Entra,
}

impl std::fmt::Debug for SqlAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlAccess")
            .field("address", &self.address)
            .field("login", &self.login)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

/// Supplies how to reach SQL Server instances (`sql:<server>` grants); plugins never
/// see it.
pub trait SqlServers: Send + Sync {
    /// The access for `server` (as the admin named it, lower case), `None` if it is not
    /// configured.
    ///
    /// # Errors
    /// It is configured but its secret cannot be read; the message never holds a secret.
    fn sql_server(&self, server: &str) -> Result<Option<SqlAccess>, String>;
}

/// No SQL Server instances.
pub struct NoSqlServers;
impl SqlServers for NoSqlServers {
    fn sql_server(&self, _server: &str) -> Result<Option<SqlAccess>, String> {
        Ok(None)
    }
}

/// Reads folders of object storage for plugins (`files:s3://…`, `files:azure://…`
/// grants, already checked): what another tool keeps in a bucket, such as Velero's
/// backups. The credentials stay with the host.
pub trait ObjectStores: Send + Sync {
    /// The object at `path`, or the folder when objects lie under it (`not-found`
    /// otherwise).
    ///
    /// # Errors
    /// The store's answer, as a host error naming the path.
    fn stat(&self, path: &ObjectPath) -> Result<FileEntry, HostError>;
    /// The objects and folders directly under `path`, sorted by name (at most
    /// [`LIST_MAX`]). `tick` is the call's time limit and cancel flag: call it between
    /// requests and stop with what it returns.
    ///
    /// # Errors
    /// As [`Self::stat`]; what `tick` returns.
    fn list(
        &self,
        path: &ObjectPath,
        tick: &mut dyn FnMut() -> Result<(), HostError>,
    ) -> Result<Vec<FileEntry>, HostError>;
    /// The bytes of the object at `path`, at most `max` (`invalid-input` when larger).
    ///
    /// # Errors
    /// As [`Self::stat`].
    fn read(&self, path: &ObjectPath, max: u64) -> Result<Vec<u8>, HostError>;
}

/// No object storage: every read says so.
pub struct NoObjectStores;
impl NoObjectStores {
    fn none(path: &ObjectPath) -> HostError {
        HostError::new(
            ErrorCode::Unsupported,
            format!("{}: this host reads no object storage", path.url()),
        )
    }
}
impl ObjectStores for NoObjectStores {
    fn stat(&self, path: &ObjectPath) -> Result<FileEntry, HostError> {
        Err(Self::none(path))
    }
    fn list(
        &self,
        path: &ObjectPath,
        _tick: &mut dyn FnMut() -> Result<(), HostError>,
    ) -> Result<Vec<FileEntry>, HostError> {
        Err(Self::none(path))
    }
    fn read(&self, path: &ObjectPath, _max: u64) -> Result<Vec<u8>, HostError> {
        Err(Self::none(path))
    }
}

/// Log levels of plugin messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warning.
    Warn,
    /// Error.
    Error,
}

/// One audit-log entry: a capability use that was denied, or a sensitive one allowed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    /// RFC 3339 time (UTC).
    pub time: String,
    /// Plugin id.
    pub plugin: String,
    /// Verb being run.
    pub verb: String,
    /// Capability kind.
    pub capability: String,
    /// Path, host or command.
    pub target: String,
    /// Allowed or denied.
    pub allowed: bool,
    /// Reason or detail.
    pub detail: String,
}

/// Receives what plugins report while they run. All methods default to doing nothing.
pub trait Events: Send + Sync {
    /// A log line from the plugin.
    fn log(&self, _plugin: &str, _level: LogLevel, _message: &str) {}
    /// Progress of the current verb.
    fn progress(&self, _plugin: &str, _done: u64, _total: u64, _message: &str) {}
    /// A capability decision worth auditing.
    fn audit(&self, _event: &AuditEvent) {}
}

/// Ignores everything.
pub struct NoEvents;
impl Events for NoEvents {}

/// Everything one call runs with.
pub struct Invocation {
    /// What the admin granted this plugin.
    pub grants: Grants,
    /// Machines other than this one that granted commands may run on.
    pub targets: Vec<Target>,
    /// The engine (for backup, restore, verify).
    pub engine: Option<Box<dyn EngineCapability>>,
    /// Authentication for granted hosts.
    pub credentials: Arc<dyn Credentials>,
    /// Directories for `ldap` grants.
    pub directories: Arc<dyn Directories>,
    /// SQL Server instances for `sql` grants.
    pub sql_servers: Arc<dyn SqlServers>,
    /// Object storage for `files:s3://…` and `files:azure://…` grants.
    pub object_stores: Arc<dyn ObjectStores>,
    /// Log, progress and audit sink.
    pub events: Arc<dyn Events>,
    /// Set to stop the call: host calls refuse from then on, and the plugin is stopped
    /// at its next instruction or wait (the call ends as cancelled).
    pub cancel: Arc<AtomicBool>,
    /// Refuse every write the host can tell from a read: HTTP methods other than GET,
    /// HEAD and OPTIONS, LDAP add, modify, delete and rename, and writing files. An
    /// assessment's sweep runs so. Commands and SQL batches cannot be told apart and run
    /// as granted.
    pub read_only: bool,
}

impl Invocation {
    /// An invocation with `grants` and nothing else.
    pub fn new(grants: Grants) -> Self {
        Self {
            grants,
            targets: Vec::new(),
            engine: None,
            credentials: Arc::new(NoCredentials),
            directories: Arc::new(NoDirectories),
            sql_servers: Arc::new(NoSqlServers),
            object_stores: Arc::new(NoObjectStores),
            events: Arc::new(NoEvents),
            cancel: Arc::new(AtomicBool::new(false)),
            read_only: false,
        }
    }
}
