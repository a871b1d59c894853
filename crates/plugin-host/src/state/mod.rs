//! The store data of one plugin call, and the capability imports it serves, one module
//! per capability (`engine`, `files`, `http`, `commands`, `ldap`, `sql`; log and progress here).
//!
//! Every capability call starts with [`State::enter`] (the call's time budget and the
//! cancel flag) and goes through one check (`State::check`) that consults the plugin's
//! grants; a denial becomes `error-code::denied` for the plugin and an audit event for
//! the admin (rate-capped per call, see [`crate::limits::AuditGate`]). Time in host calls
//! counts against the plugin's limit, except engine bulk work beyond
//! [`crate::limits::ENGINE_CALL_CHARGE`] per call.

mod commands;
mod engine;
mod files;
mod http;
mod ldap;
mod sql;
#[cfg(unix)]
mod sql_password_kerberos;
mod sql_values;
mod sql_via;
mod sql_wire;

pub(crate) use http::client as http_client;
pub use ldap::{DirectoryFound, check_directory};
pub use sql::{SqlSignedIn, check_sql_server};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::rehydra::plugin::{host, types};
use crate::bindings::wit;
use crate::dto::{ErrorCode, HostError};
use crate::limits::{AuditGate, Budget, Limiter, Stop, clip};
use crate::policy::{CapabilityKind, Grants};
use crate::targets::Target;
use crate::{
    AuditEvent, Credentials, Directories, EngineCapability, Events, LogLevel, ObjectStores,
    SqlServers,
};

pub use engine::StreamWriter;

/// Largest small payload a plugin may read or write in one piece.
pub(crate) use rehydra_plugin_rules::files::SMALL_MAX;
/// Longest log message kept, in characters.
pub(crate) const LOG_MESSAGE_MAX: usize = 4096;

/// `s` with control characters as spaces, at most `n` characters: what a log line or a
/// message may hold of text a plugin or a remote side wrote.
pub(super) fn tame(s: &str, n: usize) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(n)
        .collect()
}

/// Per-call store data.
pub(crate) struct State {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) plugin: String,
    pub(crate) verb: &'static str,
    pub(crate) grants: Grants,
    /// Writes are refused ([`crate::Invocation::read_only`]).
    pub(crate) read_only: bool,
    pub(crate) targets: Vec<Target>,
    pub(crate) engine: Option<Box<dyn EngineCapability>>,
    pub(crate) credentials: Arc<dyn Credentials>,
    pub(crate) directories: Arc<dyn Directories>,
    /// Connections to directories opened during this call.
    pub(crate) ldap: ldap::Connections,
    pub(crate) sql_servers: Arc<dyn SqlServers>,
    pub(crate) object_stores: Arc<dyn ObjectStores>,
    /// The host's HTTP client (shared by every call).
    pub(crate) http: reqwest::Client,
    /// Clients with TLS of their own (`Credentials::tls`), by `host:port`, for this call.
    pub(crate) tls_clients: std::collections::HashMap<String, reqwest::Client>,
    pub(crate) events: Arc<dyn Events>,
    pub(crate) budget: Arc<Budget>,
    pub(crate) audit_gate: AuditGate,
    pub(crate) streams_opened: u32,
    pub(crate) spooled: u64,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

type Res<T> = Result<T, wit::Error>;

fn err(code: ErrorCode, msg: impl Into<String>) -> wit::Error {
    HostError::new(code, msg).into()
}

fn io_err(what: &str, e: &std::io::Error) -> wit::Error {
    HostError::io(what, e).into()
}

/// The error a host call returns once the call has been stopped.
fn stop_err(stop: Stop, budget: &Budget) -> HostError {
    match stop {
        Stop::Cancelled => HostError::new(ErrorCode::Cancelled, "cancelled by the user"),
        Stop::Timeout => HostError::new(
            ErrorCode::Failed,
            format!(
                "the plugin's time limit of {} s is used up",
                budget.limit().as_secs()
            ),
        ),
    }
}

/// Run blocking host work outside the async runtime's context, so that what it calls
/// (the caller's engine, credentials) may block on runtimes of its own.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

impl State {
    /// Start of every host call: refuse once the call is cancelled or out of time (the
    /// plugin is then stopped at its next instruction or wait).
    fn enter(&self) -> Res<()> {
        self.budget
            .check()
            .map_err(|stop| stop_err(stop, &self.budget).into())
    }

    /// Run engine bulk work: only [`crate::limits::ENGINE_CALL_CHARGE`] of it counts.
    fn engine_work<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let t = Instant::now();
        let out = blocking(|| f(self));
        self.budget.exclude_engine_work(t.elapsed());
        out
    }

    /// The one permission check: record and refuse, or allow.
    fn check(
        &mut self,
        kind: CapabilityKind,
        target: &str,
        allowed: Result<(), String>,
    ) -> Res<()> {
        match allowed {
            Ok(()) => Ok(()),
            Err(reason) => {
                self.audit(kind, target, false, &reason);
                Err(err(ErrorCode::Denied, format!("denied: {reason}")))
            }
        }
    }

    fn audit(&mut self, kind: CapabilityKind, target: &str, allowed: bool, detail: &str) {
        if !self.audit_gate.admit(kind.name(), allowed) {
            return;
        }
        self.events.audit(&AuditEvent {
            time: chrono_now(),
            plugin: self.plugin.clone(),
            verb: self.verb.to_string(),
            capability: kind.name().to_string(),
            target: clip(target),
            allowed,
            detail: clip(detail),
        });
    }

    /// One summary event per kind of audit event that was only counted; at the end of a call.
    pub(crate) fn finish_audit(&mut self) {
        for (capability, allowed, detail) in self.audit_gate.summaries() {
            self.events.audit(&AuditEvent {
                time: chrono_now(),
                plugin: self.plugin.clone(),
                verb: self.verb.to_string(),
                capability: capability.to_string(),
                target: "(many)".into(),
                allowed,
                detail,
            });
        }
    }

    /// Refuse `what`, a write, when the call is read-only.
    fn writable(&mut self, kind: CapabilityKind, target: &str, what: &str) -> Res<()> {
        if self.read_only {
            self.check(
                kind,
                target,
                Err(format!(
                    "{what} writes, and this call only reads (an assessment never changes what it looks at)"
                )),
            )?;
        }
        Ok(())
    }

    fn path(&mut self, kind: CapabilityKind, path: &str) -> Res<PathBuf> {
        let r = self
            .grants
            .path(kind, path)
            .map_err(|e| e.replace("<plugin>", &self.plugin));
        match r {
            Ok(p) => Ok(p),
            Err(reason) => {
                self.check(kind, path, Err(reason))?;
                unreachable!("check returns Err for Err")
            }
        }
    }

    fn engine(&mut self, what: &str) -> Res<&mut Box<dyn EngineCapability>> {
        self.enter()?;
        if !self.grants.has(CapabilityKind::Engine) {
            self.check(CapabilityKind::Engine, what, Err("the `engine` capability is not granted (rehydra plugins grant <plugin> engine)".into()))?;
        }
        let verb = self.verb;
        self.engine.as_mut().ok_or_else(|| {
            err(
                ErrorCode::Unsupported,
                format!(
                    "the engine is not available in `{verb}` (only in backup, restore and verify)"
                ),
            )
        })
    }
}

pub(crate) fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl types::Host for State {}

impl host::Host for State {
    fn log(&mut self, level: host::Level, message: String) {
        if self.budget.check().is_err() {
            return;
        }
        let level = match level {
            host::Level::Trace => LogLevel::Trace,
            host::Level::Debug => LogLevel::Debug,
            host::Level::Info => LogLevel::Info,
            host::Level::Warn => LogLevel::Warn,
            host::Level::Error => LogLevel::Error,
        };
        let msg = crate::convert::shown(message.chars().take(LOG_MESSAGE_MAX).collect());
        self.events.log(&self.plugin, level, &msg);
    }
    fn progress(&mut self, done: u64, total: u64, message: String) {
        if self.budget.check().is_err() {
            return;
        }
        let msg = crate::convert::shown(message.chars().take(LOG_MESSAGE_MAX).collect());
        self.events.progress(&self.plugin, done, total, &msg);
    }
    fn cancelled(&mut self) -> bool {
        self.budget.check().is_err()
    }
}
