//! What a mock host holds, the thread's current mock, and the checks every capability
//! call starts with (cancel flag, grants, audit), as the real host's `state/mod.rs`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;

use rehydra_plugin_rules::{CapabilityKind, Grants, HostError, ObjectPath};

use super::store::{MockPoint, StoredItem};
use super::{AuditEntry, Command, MockHost, Verb};
use crate::commands::Output;
use crate::host::Level;
use crate::http::{Request, Response};
use crate::{Error, ErrorCode};

pub(crate) type Res<T> = Result<T, Error>;

/// A test's answer to HTTP requests.
pub(crate) type HttpHandler = Rc<RefCell<Box<dyn FnMut(&Request) -> Res<Response>>>>;
/// A test's stand-in for a program.
pub(crate) type SqlHandler =
    Rc<RefCell<Box<dyn FnMut(&super::SqlBatch) -> Res<Vec<crate::sql::ResultSet>>>>>;
pub(crate) type CommandHandler = Rc<RefCell<Box<dyn FnMut(&Command) -> Res<Output>>>>;

/// A pushed stream being written.
pub(crate) struct OpenStream {
    pub(crate) item: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) finished: bool,
}

/// What the current (or last) call recorded, for the test to read.
#[derive(Default)]
pub(crate) struct Record {
    pub(crate) logs: Vec<(Level, String)>,
    pub(crate) progress: Vec<(u64, u64, String)>,
    pub(crate) audit: Vec<AuditEntry>,
    pub(crate) warnings: Vec<String>,
    pub(crate) http: Vec<Request>,
    pub(crate) commands: Vec<Command>,
    pub(crate) sql: Vec<super::SqlBatch>,
}

/// The verb being run and what it runs on.
pub(crate) struct Call {
    pub(crate) verb: Verb,
    /// Plugin id, workload and version (for messages and new restore points).
    pub(crate) plugin: String,
    pub(crate) workload: String,
    pub(crate) version: String,
    /// Backup: the asset being backed up.
    pub(crate) asset: String,
    /// Restore, plan, verify: the id of the restore point in hand.
    pub(crate) point: Option<String>,
    pub(crate) streams_opened: u32,
    /// The other restore points named to `find-point`.
    pub(crate) named: rehydra_plugin_rules::points::Named,
    pub(crate) spooled: u64,
}

/// Everything a mock host holds.
#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) grants: Grants,
    pub(crate) targets: Vec<String>,
    /// Buckets (`s3://NAME`, `azure://NAME`) and the local folders that hold their keys.
    pub(crate) buckets: BTreeMap<String, PathBuf>,
    pub(crate) cancelled: bool,
    pub(crate) call: Option<Call>,
    /// Committed restore points, oldest first.
    pub(crate) points: Vec<MockPoint>,
    /// Items stored by the current or last backup.
    pub(crate) pending: Vec<StoredItem>,
    /// Hashes of contents stored so far (for `new-bytes`).
    pub(crate) seen: HashSet<u64>,
    pub(crate) streams: HashMap<u64, OpenStream>,
    pub(crate) record: Record,
    pub(crate) http_answers: BTreeMap<(String, String), VecDeque<Res<Response>>>,
    pub(crate) http_handler: Option<HttpHandler>,
    pub(crate) commands: BTreeMap<String, CommandHandler>,
    pub(crate) sql: Option<SqlHandler>,
}

pub(crate) fn err(code: ErrorCode, msg: impl Into<String>) -> Error {
    Error::new(code, msg)
}

/// An OS error as the host reports it.
pub(crate) fn io_err(what: &str, e: &std::io::Error) -> Error {
    HostError::io(what, e).into()
}

impl From<HostError> for Error {
    fn from(e: HostError) -> Self {
        use rehydra_plugin_rules::ErrorCode as Rule;
        let code = match e.code {
            Rule::Denied => ErrorCode::Denied,
            Rule::NotFound => ErrorCode::NotFound,
            Rule::InvalidInput => ErrorCode::InvalidInput,
            Rule::Unavailable => ErrorCode::Unavailable,
            Rule::Cancelled => ErrorCode::Cancelled,
            Rule::Unsupported => ErrorCode::Unsupported,
            Rule::Failed => ErrorCode::Failed,
        };
        Self::new(code, e.message)
    }
}

impl Inner {
    /// The plugin's id for messages (`<plugin>` outside a verb).
    pub(crate) fn plugin(&self) -> String {
        self.call
            .as_ref()
            .map_or_else(|| "<plugin>".into(), |c| c.plugin.clone())
    }

    pub(crate) fn verb(&self) -> Option<Verb> {
        self.call.as_ref().map(|c| c.verb)
    }

    /// Start of every capability call: refuse once the user cancelled.
    pub(crate) fn enter(&self) -> Res<()> {
        if self.cancelled {
            return Err(err(ErrorCode::Cancelled, "cancelled by the user"));
        }
        Ok(())
    }

    /// Record a capability decision, as the host's audit log does.
    pub(crate) fn audit(
        &mut self,
        kind: CapabilityKind,
        target: &str,
        allowed: bool,
        detail: &str,
    ) {
        self.record.audit.push(AuditEntry {
            capability: kind.name().into(),
            target: target.into(),
            allowed,
            detail: detail.into(),
        });
    }

    /// The one refusal: audited, and `denied` for the plugin.
    pub(crate) fn deny(&mut self, kind: CapabilityKind, target: &str, reason: &str) -> Error {
        let reason = reason.replace("<plugin>", &self.plugin());
        self.audit(kind, target, false, &reason);
        err(ErrorCode::Denied, format!("denied: {reason}"))
    }

    /// `path` checked against the roots granted for `kind`, resolved.
    pub(crate) fn path(&mut self, kind: CapabilityKind, path: &str) -> Res<PathBuf> {
        self.grants
            .path(kind, path)
            .map_err(|reason| self.deny(kind, path, &reason))
    }

    /// `files`' path when it names object storage (`s3://…`, `azure://…`; the engine
    /// never takes one), checked as the real host checks it (granted prefix, read only),
    /// as the local file that holds it in the test's bucket folder; `None` for other
    /// paths.
    pub(crate) fn object(&mut self, kind: CapabilityKind, path: &str) -> Res<Option<PathBuf>> {
        if !ObjectPath::is_url(path) {
            return Ok(None);
        }
        if kind != CapabilityKind::Files {
            return Err(self.deny(kind, path, "object storage is read-only for plugins"));
        }
        let p = self
            .grants
            .object(path)
            .map_err(|reason| self.deny(kind, path, &reason))?;
        self.audit(kind, &p.url(), true, "object storage");
        let folder = self.buckets.get(&p.store()).ok_or_else(|| {
            err(
                ErrorCode::Unavailable,
                format!(
                    "{}: no such bucket in this test (MockHost::bucket(\"{}\", folder))",
                    p.url(),
                    p.store()
                ),
            )
        })?;
        Ok(Some(if p.key.is_empty() {
            folder.clone()
        } else {
            folder.join(&p.key)
        }))
    }

    /// The local path `files` reads for `path`: a file under a granted root, or an object
    /// of a test bucket.
    pub(crate) fn file(&mut self, path: &str) -> Res<PathBuf> {
        match self.object(CapabilityKind::Files, path)? {
            Some(p) => Ok(p),
            None => self.path(CapabilityKind::Files, path),
        }
    }

    /// The engine capability: granted, and available in this verb (not in discover and
    /// assess).
    pub(crate) fn engine(&mut self, what: &str) -> Res<Verb> {
        self.enter()?;
        if !self.grants.has(CapabilityKind::Engine) {
            return Err(self.deny(
                CapabilityKind::Engine,
                what,
                "the `engine` capability is not granted (rehydra plugins grant <plugin> engine)",
            ));
        }
        match self.verb() {
            Some(v @ (Verb::Backup | Verb::PlanRestore | Verb::Restore | Verb::Verify)) => Ok(v),
            other => Err(err(
                ErrorCode::Unsupported,
                format!(
                    "the engine is not available in `{}` (only in backup, restore and verify)",
                    other.map_or("no verb", Verb::name)
                ),
            )),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<MockHost>> = const { RefCell::new(None) };
}

/// The mock installed on this thread.
pub(crate) fn current() -> MockHost {
    CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(|| {
        panic!(
            "no MockHost is installed on this thread: run plugin code through MockHost::backup, \
             ::restore, … or MockHost::run (the host imports only exist inside a verb)"
        )
    })
}

/// Run `f` on the current mock's state.
pub(crate) fn with<T>(f: impl FnOnce(&mut Inner) -> T) -> T {
    let host = current();
    let mut inner = host.inner.borrow_mut();
    f(&mut inner)
}

/// The mock installed on this thread, if any (for drops that may outlive it).
pub(crate) fn try_with(f: impl FnOnce(&mut Inner)) {
    if let Some(host) = CURRENT.with(|c| c.borrow().clone())
        && let Ok(mut inner) = host.inner.try_borrow_mut()
    {
        f(&mut inner);
    }
}

/// Installs a mock for the current thread until dropped (the previous one comes back).
pub(crate) struct Installed {
    previous: Option<MockHost>,
}

impl Installed {
    pub(crate) fn new(host: &MockHost) -> Self {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(host.clone()));
        Self { previous }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}
