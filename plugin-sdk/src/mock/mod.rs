//! A mock host, to unit-test a plugin's verbs natively with `cargo test`: no packing,
//! signing, installing or repository.
//!
//! On targets other than `wasm32`, the host modules ([`crate::engine`], [`crate::files`],
//! [`crate::http`], [`crate::commands`], [`crate::host`]) keep their signatures and
//! dispatch to the [`MockHost`] running the current verb on this thread. The mock
//! behaves like the host where that is cheap to model: grants (`engine`,
//! `files:<folder>`, `files-write:<folder>`, `http:<host>`, `command:<program>[@<target>]`)
//! are checked with the host's rules and a call without its grant is `denied`, naming the
//! capability; files are real files under the granted folders; the engine keeps items in
//! memory with their bytes, so a restore writes them back; each verb may use only the
//! engine calls the contract allows it.
//!
//! ```
//! use rehydra_plugin_sdk::mock::{MockHost, backup_request};
//! use rehydra_plugin_sdk::{engine, prelude::*};
//!
//! struct Notes;
//! impl Plugin for Notes {
//!     fn describe() -> PluginInfo {
//!         info("notes", "Notes", "0.1.0", &["notes"], "keeps a note")
//!     }
//!     fn backup(req: BackupRequest) -> Result<BackupReport> {
//!         engine::put_document("note", req.asset.id.as_bytes())?;
//!         Ok(BackupReport::new("crash"))
//!     }
//! }
//!
//! // without the `engine` grant the call is denied, and nothing is recorded
//! let e = MockHost::new().backup::<Notes>(backup_request("n1", &[])).unwrap_err();
//! assert_eq!(e.code, ErrorCode::Denied);
//!
//! let mock = MockHost::new().grant("engine");
//! mock.backup::<Notes>(backup_request("n1", &[])).unwrap();
//! assert_eq!(mock.item_bytes("note").unwrap(), b"n1");
//! assert_eq!(mock.last_point().unwrap().plugin_id, "notes");
//! ```
//!
//! Not modelled: the WebAssembly sandbox (a plugin that works natively may still use
//! something the component cannot), time and memory limits, signing and manifests
//! (declared settings are not checked), the audit log's rate caps, real HTTP and
//! commands (the test answers them), disk image formats (a disk item holds the image
//! file's bytes), chunk-level deduplication. The real host remains the reference.

#![forbid(unsafe_code)]

pub(crate) mod commands;
pub(crate) mod engine;
pub(crate) mod files;
pub(crate) mod host;
pub(crate) mod http;
pub(crate) mod ldap;
pub(crate) mod sql;
mod state;
mod store;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

pub use store::MockPoint;

use state::{Call, Inner, Installed};
use store::{Content, Node, StoredItem};

use crate::commands::Output;
use crate::host::Level;
use crate::http::{Request, Response};
use crate::{
    Asset, BackupReport, BackupRequest, Finding, ItemInfo, Plugin, Property, ProtectionFlags,
    RestorePlan, RestorePoint, RestoreReport, RestoreRequest, Result, VerifyReport,
};

/// The verb a call runs as: it decides which engine calls are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `discover`: no engine.
    Discover,
    /// `assess`: no engine.
    Assess,
    /// `backup`: ingest, documents, streams, `previous`.
    Backup,
    /// `plan-restore`: `items` and `read-document` of the restore point; writes nothing.
    PlanRestore,
    /// `restore`: `items`, `read-document` and `restore-item`.
    Restore,
    /// `verify`: `items` and `read-document`; writes nothing.
    Verify,
}

impl Verb {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Discover => "discover",
            Self::Assess => "assess",
            Self::Backup => "backup",
            Self::PlanRestore => "plan-restore",
            Self::Restore => "restore",
            Self::Verify => "verify",
        }
    }
}

/// A command the plugin ran, as the test's stand-in sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// `local` or a command target.
    pub target: String,
    /// The program (`powershell` for [`crate::commands::powershell`]).
    pub program: String,
    /// Its arguments (empty for PowerShell).
    pub args: Vec<String>,
    /// The PowerShell script, for [`crate::commands::powershell`].
    pub script: Option<String>,
    /// The command's own time limit, for [`crate::commands::run_within`] (the stand-in
    /// decides whether it is passed: return the host's error when it should be).
    pub timeout_secs: Option<u32>,
}

/// A SQL batch the plugin ran, as the test's stand-in sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlBatch {
    /// The instance, as granted (lower case).
    pub server: String,
    /// The T-SQL text.
    pub batch: String,
    /// The values bound to `@P1`, `@P2`, ….
    pub params: Vec<String>,
}

/// A capability decision the host would write to the admin's audit log: every denial,
/// and the sensitive uses that were allowed (writes, restores, commands, requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// `engine`, `files`, `files-write`, `http` or `command`.
    pub capability: String,
    /// The path, host or `program@target`.
    pub target: String,
    /// Allowed or denied.
    pub allowed: bool,
    /// The reason of a denial, or what was done.
    pub detail: String,
}

/// Name/value pairs as [`Property`] records (settings, options).
pub fn props(pairs: &[(&str, &str)]) -> Vec<Property> {
    pairs
        .iter()
        .map(|(n, v)| Property {
            name: (*n).into(),
            value: (*v).into(),
        })
        .collect()
}

/// The request the host sends for a backup of asset `id`: as the app does, an asset of
/// that id and name with no kind, properties or flags.
pub fn backup_request(id: &str, options: &[(&str, &str)]) -> BackupRequest {
    BackupRequest {
        asset: Asset {
            kind: String::new(),
            id: id.into(),
            name: id.into(),
            parent: None,
            properties: Vec::new(),
            flags: ProtectionFlags::empty(),
        },
        options: props(options),
    }
}

/// An HTTP answer with `status` and `body`, no headers.
pub fn response(status: u16, body: impl Into<Vec<u8>>) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body: body.into(),
    }
}

/// A finished command with `status` and `stdout`, nothing on stderr.
pub fn output(status: i32, stdout: impl Into<Vec<u8>>) -> Output {
    Output {
        status,
        stdout: stdout.into(),
        stderr: Vec::new(),
    }
}

/// A host for tests: grants, local files, an in-memory engine, HTTP and commands answered
/// by the test, and what the plugin logged. Cloning gives another handle on the same
/// host (for a closure that cancels the call, say).
#[derive(Clone, Default)]
pub struct MockHost {
    pub(crate) inner: Rc<RefCell<Inner>>,
}

impl std::fmt::Debug for MockHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.borrow();
        f.debug_struct("MockHost")
            .field("grants", &s.grants)
            .field("points", &s.points.len())
            .finish_non_exhaustive()
    }
}

impl MockHost {
    /// A host that grants nothing and holds no restore point.
    pub fn new() -> Self {
        Self::default()
    }

    /// Grant a capability as the admin writes it: `engine`, `files:<folder>`,
    /// `files-write:<folder>` (which also allows reading there), `http:<host>[:<port>]`
    /// (`*.domain` for its subdomains), `command:<program>[@<target>]`.
    ///
    /// # Panics
    /// A malformed grant (the host refuses it too).
    #[must_use]
    pub fn grant(self, spec: &str) -> Self {
        let g = rehydra_plugin_rules::Grant::parse(spec)
            .unwrap_or_else(|e| panic!("grant `{spec}`: {e}"));
        self.inner.borrow_mut().grants.0.push(g);
        self
    }

    /// Grant reading under `folder` (absolute, e.g. a `tempfile::TempDir`'s path).
    ///
    /// # Panics
    /// As [`Self::grant`].
    #[must_use]
    pub fn grant_files(self, folder: impl AsRef<Path>) -> Self {
        let spec = format!("files:{}", folder.as_ref().display());
        self.grant(&spec)
    }

    /// Grant writing (and reading) under `folder`.
    ///
    /// # Panics
    /// As [`Self::grant`].
    #[must_use]
    pub fn grant_files_write(self, folder: impl AsRef<Path>) -> Self {
        let spec = format!("files-write:{}", folder.as_ref().display());
        self.grant(&spec)
    }

    /// Serve the bucket or container `store` (`s3://NAME`, `azure://NAME`) from the local
    /// `folder`: its keys are the paths under it, and a folder stands for a common
    /// prefix. Reads still need a `files:` grant on a prefix of it, as with the host.
    #[must_use]
    pub fn bucket(self, store: &str, folder: impl AsRef<Path>) -> Self {
        let p = rehydra_plugin_rules::ObjectPath::parse(store)
            .unwrap_or_else(|e| panic!("bucket `{store}`: {e}"));
        self.inner
            .borrow_mut()
            .buckets
            .insert(p.store(), folder.as_ref().to_path_buf());
        self
    }

    /// Configure command target `name` (a machine other than `local`).
    #[must_use]
    pub fn target(self, name: &str) -> Self {
        self.inner.borrow_mut().targets.push(name.into());
        self
    }

    /// Hold restore point `point`: the newest one of its asset is the `previous` of a
    /// backup of that asset, and a restore request naming its id reads it.
    #[must_use]
    pub fn with_point(self, point: MockPoint) -> Self {
        self.inner.borrow_mut().points.push(point);
        self
    }

    /// Answer `method url` (exactly as the plugin sends it) with `answer`. Several
    /// answers for one request are given in order, the last one again and again.
    #[must_use]
    pub fn http_answer(self, method: &str, url: &str, answer: Response) -> Self {
        self.inner
            .borrow_mut()
            .http_answers
            .entry((method.to_ascii_uppercase(), url.into()))
            .or_default()
            .push_back(Ok(answer));
        self
    }

    /// Answer the requests no [`Self::http_answer`] matches with `f` (an `unavailable`
    /// error stands for an endpoint that cannot be reached).
    #[must_use]
    pub fn on_http(self, f: impl FnMut(&Request) -> Result<Response> + 'static) -> Self {
        self.inner.borrow_mut().http_handler = Some(Rc::new(RefCell::new(Box::new(f))));
        self
    }

    /// Stand in for `program` (`powershell` for PowerShell scripts) on every target.
    #[must_use]
    pub fn on_command(
        self,
        program: &str,
        f: impl FnMut(&Command) -> Result<Output> + 'static,
    ) -> Self {
        self.inner
            .borrow_mut()
            .commands
            .insert(program.into(), Rc::new(RefCell::new(Box::new(f))));
        self
    }

    /// Stand in for every SQL Server instance: `f` answers each batch (with its server,
    /// text and parameters) that passes the host's checks.
    #[must_use]
    pub fn on_sql(
        self,
        f: impl FnMut(&SqlBatch) -> Result<Vec<crate::sql::ResultSet>> + 'static,
    ) -> Self {
        self.inner.borrow_mut().sql = Some(Rc::new(RefCell::new(Box::new(f))));
        self
    }

    /// Set (or clear) the user's cancel: `host::cancelled` answers true and every
    /// capability call returns `cancelled`.
    pub fn set_cancelled(&self, cancelled: bool) {
        self.inner.borrow_mut().cancelled = cancelled;
    }

    /// Run `f` as plugin code of `verb` (for helpers that are not a whole verb). For
    /// `plan-restore`, `restore` and `verify` the restore point in hand is the newest one
    /// the mock holds; a backup's items are kept ([`Self::items`]) but no restore point is
    /// recorded.
    pub fn run<T>(&self, verb: Verb, f: impl FnOnce() -> T) -> T {
        let point = self
            .inner
            .borrow()
            .points
            .last()
            .map(|p| p.record.id.clone());
        self.call(verb, None, String::new(), point, f)
    }

    /// Run the plugin's `discover`.
    ///
    /// # Errors
    /// What the plugin returns.
    pub fn discover<P: Plugin>(&self, settings: Vec<Property>) -> Result<Vec<Asset>> {
        let info = Some(P::describe());
        self.call(Verb::Discover, info, String::new(), None, || {
            P::discover(settings)
        })
    }

    /// Run the plugin's `assess`.
    ///
    /// # Errors
    /// What the plugin returns.
    pub fn assess<P: Plugin>(
        &self,
        assets: Vec<Asset>,
        settings: Vec<Property>,
    ) -> Result<Vec<Finding>> {
        let info = Some(P::describe());
        self.call(Verb::Assess, info, String::new(), None, || {
            P::assess(assets, settings)
        })
    }

    /// Run the plugin's `backup`. When it succeeds, its items become a new restore point
    /// (see [`Self::last_point`]); when it fails, nothing is recorded, as with the host
    /// (the items it stored stay readable through [`Self::items`]).
    ///
    /// # Errors
    /// What the plugin returns.
    pub fn backup<P: Plugin>(&self, req: BackupRequest) -> Result<BackupReport> {
        let info = P::describe();
        let asset = req.asset.id.clone();
        let report = self.call(
            Verb::Backup,
            Some(info.clone()),
            asset.clone(),
            None,
            || P::backup(req),
        )?;
        let mut s = self.inner.borrow_mut();
        let items = s.pending.clone();
        let mut point = MockPoint::new(&asset)
            .workload(info.workloads.first().map_or("", String::as_str))
            .plugin(&info.id, &info.version)
            .consistency(&report.consistency);
        point.items = items;
        s.points.push(point);
        Ok(report)
    }

    /// Run the plugin's `plan-restore` on the restore point `req` names.
    ///
    /// # Errors
    /// What the plugin returns.
    pub fn plan_restore<P: Plugin>(&self, req: RestoreRequest) -> Result<RestorePlan> {
        let point = Some(req.restore_point.id.clone());
        self.call(
            Verb::PlanRestore,
            Some(P::describe()),
            String::new(),
            point,
            || P::plan_restore(req),
        )
    }

    /// Run the plugin's `restore` on the restore point `req` names (the verb alone: the
    /// app runs it only when `plan-restore` reported no blockers).
    ///
    /// # Errors
    /// What the plugin returns.
    pub fn restore<P: Plugin>(&self, req: RestoreRequest) -> Result<RestoreReport> {
        let point = Some(req.restore_point.id.clone());
        self.call(
            Verb::Restore,
            Some(P::describe()),
            String::new(),
            point,
            || P::restore(req),
        )
    }

    /// Run the plugin's `verify` on the restore point `req` names.
    ///
    /// # Errors
    /// What the plugin returns.
    pub fn verify<P: Plugin>(&self, req: RestoreRequest) -> Result<VerifyReport> {
        let point = Some(req.restore_point.id.clone());
        self.call(
            Verb::Verify,
            Some(P::describe()),
            String::new(),
            point,
            || P::verify(req),
        )
    }

    /// A request to restore the newest restore point to `target`, with `options`.
    ///
    /// # Panics
    /// The mock holds no restore point, or `target` is not UTF-8.
    pub fn restore_request(
        &self,
        target: impl AsRef<Path>,
        options: &[(&str, &str)],
    ) -> RestoreRequest {
        let restore_point = self
            .last_point()
            .expect("no restore point yet: run a backup first, or add one with with_point");
        let target = target
            .as_ref()
            .to_str()
            .expect("a UTF-8 target")
            .to_string();
        RestoreRequest {
            restore_point,
            target,
            options: props(options),
        }
    }

    /// Items the last backup stored (also when it failed).
    pub fn items(&self) -> Vec<ItemInfo> {
        let s = self.inner.borrow();
        s.pending.iter().map(|i| i.info.clone()).collect()
    }

    /// The bytes of item `name` of the last backup: a document, stream or disk, or a tree
    /// of one file.
    pub fn item_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let s = self.inner.borrow();
        let item: &StoredItem = s.pending.iter().find(|i| i.info.name == name)?;
        match &item.content {
            Content::Bytes(b) => Some(b.clone()),
            Content::Tree(nodes) => match nodes.as_slice() {
                [n] => match &n.node {
                    Node::File(b) => Some(b.clone()),
                    _ => None,
                },
                _ => None,
            },
        }
    }

    /// The restore points the mock holds, oldest first.
    pub fn points(&self) -> Vec<RestorePoint> {
        self.inner
            .borrow()
            .points
            .iter()
            .map(MockPoint::record)
            .collect()
    }

    /// The newest restore point.
    pub fn last_point(&self) -> Option<RestorePoint> {
        self.inner.borrow().points.last().map(MockPoint::record)
    }

    /// Log lines of the last call.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.inner.borrow().record.logs.clone()
    }

    /// Progress reports of the last call: done, total, message.
    pub fn progress(&self) -> Vec<(u64, u64, String)> {
        self.inner.borrow().record.progress.clone()
    }

    /// Capability decisions of the last call the host would audit.
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.inner.borrow().record.audit.clone()
    }

    /// Engine warnings of the last call (files of a tree that could not be read, links
    /// not restored).
    pub fn warnings(&self) -> Vec<String> {
        self.inner.borrow().record.warnings.clone()
    }

    /// HTTP requests the last call sent (those the checks let through).
    pub fn http_requests(&self) -> Vec<Request> {
        self.inner.borrow().record.http.clone()
    }

    /// Commands the last call ran (those the checks let through).
    pub fn commands(&self) -> Vec<Command> {
        self.inner.borrow().record.commands.clone()
    }

    /// The SQL batches run so far, in order.
    pub fn sql_batches(&self) -> Vec<SqlBatch> {
        self.inner.borrow().record.sql.clone()
    }

    /// Run `f` as one call of `verb`, this mock installed for the thread.
    fn call<T>(
        &self,
        verb: Verb,
        info: Option<crate::PluginInfo>,
        asset: String,
        point: Option<String>,
        f: impl FnOnce() -> T,
    ) -> T {
        {
            let mut s = self.inner.borrow_mut();
            assert!(s.call.is_none(), "a MockHost runs one verb at a time");
            s.record = state::Record::default();
            s.streams.clear();
            if verb == Verb::Backup {
                s.pending.clear();
            }
            let info = info.unwrap_or_else(|| crate::info("<plugin>", "", "", &[], ""));
            s.call = Some(Call {
                verb,
                plugin: info.id,
                workload: info.workloads.first().cloned().unwrap_or_default(),
                version: info.version,
                asset,
                point,
                streams_opened: 0,
                named: Default::default(),
                spooled: 0,
            });
        }
        let _running = Running {
            host: self.clone(),
            _installed: Installed::new(self),
        };
        f()
    }
}

/// A call in progress: ends it (also when the plugin panics).
struct Running {
    host: MockHost,
    _installed: Installed,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut s) = self.host.inner.try_borrow_mut() {
            s.call = None;
            s.streams.clear();
        }
    }
}
