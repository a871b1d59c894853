//! The store data of one plugin call, and the capability imports it serves.
//!
//! Every capability call goes through one check (`State::check`) that consults the
//! plugin's grants; a denial becomes `error-code::denied` for the plugin and an audit
//! event for the admin. Time spent here (in the host) does not count against the
//! plugin's time limit.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::rehydra::plugin::{commands, engine, files, host, http, types};
use crate::bindings::wit;
use crate::dto::{ErrorCode, HostError};
use crate::policy::{CapabilityKind, Grants};
use crate::targets::Target;
use crate::{AuditEvent, Credentials, EngineCapability, Events, Ingest, LogLevel};

/// Largest small payload a plugin may read or write in one piece.
pub(crate) const SMALL_MAX: u64 = 16 << 20;
const STREAM_MAX: u64 = 256 << 20;
const WRITE_CHUNK_MAX: usize = 4 << 20;
const HTTP_BODY_MAX: u64 = 64 << 20;
const LIST_MAX: usize = 100_000;

/// A pushed stream being spooled to a temporary file until `finish`.
pub struct StreamWriter {
    item: String,
    file: Option<std::fs::File>,
    written: u64,
}

/// Memory limiter that remembers whether the limit was hit.
pub(crate) struct Limiter {
    pub(crate) max_bytes: usize,
    pub(crate) hit: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Per-call store data.
pub(crate) struct State {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) plugin: String,
    pub(crate) verb: &'static str,
    pub(crate) grants: Grants,
    pub(crate) targets: Vec<Target>,
    pub(crate) engine: Option<Box<dyn EngineCapability>>,
    pub(crate) credentials: Arc<dyn Credentials>,
    pub(crate) events: Arc<dyn Events>,
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) started: Instant,
    pub(crate) host_time: Duration,
    pub(crate) timeout: Duration,
    pub(crate) timed_out: bool,
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
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorCode::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorCode::Denied,
        std::io::ErrorKind::AlreadyExists => ErrorCode::InvalidInput,
        _ => ErrorCode::Failed,
    };
    err(code, format!("{what}: {e}"))
}

impl State {
    /// Run host work, keeping its time out of the plugin's budget.
    fn timed<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let t = Instant::now();
        let out = f(self);
        self.host_time += t.elapsed();
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

    fn audit(&self, kind: CapabilityKind, target: &str, allowed: bool, detail: &str) {
        self.events.audit(&AuditEvent {
            time: chrono_now(),
            plugin: self.plugin.clone(),
            verb: self.verb.to_string(),
            capability: kind.name().to_string(),
            target: target.to_string(),
            allowed,
            detail: detail.to_string(),
        });
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
        if !self.grants.has(CapabilityKind::Engine) {
            self.check(CapabilityKind::Engine, what, Err("the `engine` capability is not granted (rehydra plugins grant <plugin> engine)".into()))?;
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err(err(ErrorCode::Cancelled, "cancelled by the user"));
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

    fn ingest(
        &mut self,
        item: String,
        path: &str,
        make: impl FnOnce(PathBuf) -> Ingest,
    ) -> Res<wit::ItemSummary> {
        self.timed(|s| {
            let p = s.path(CapabilityKind::Files, path)?;
            let e = s.engine(&item)?;
            e.ingest(&item, make(p)).map(Into::into).map_err(Into::into)
        })
    }
}

pub(crate) fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl types::Host for State {}

impl engine::Host for State {
    fn ingest_path(&mut self, item: String, path: String) -> Res<wit::ItemSummary> {
        self.ingest(item, &path, Ingest::Tree)
    }
    fn ingest_file(&mut self, item: String, path: String) -> Res<wit::ItemSummary> {
        self.ingest(item, &path, Ingest::File)
    }
    fn ingest_range(
        &mut self,
        item: String,
        path: String,
        offset: u64,
        length: u64,
    ) -> Res<wit::ItemSummary> {
        self.ingest(item, &path, |path| Ingest::Range {
            path,
            offset,
            length,
        })
    }
    fn ingest_disk(
        &mut self,
        item: String,
        path: String,
        format: wit::DiskFormat,
    ) -> Res<wit::ItemSummary> {
        let format = disk_format(format);
        self.ingest(item, &path, |path| Ingest::Disk { path, format })
    }
    fn ingest_disk_changed(
        &mut self,
        item: String,
        path: String,
        format: wit::DiskFormat,
        since_item: String,
        changed: Vec<wit::DiskRange>,
    ) -> Res<wit::ItemSummary> {
        let format = disk_format(format);
        let ranges: Vec<(u64, u64)> = changed.iter().map(|r| (r.offset, r.length)).collect();
        self.ingest(item, &path, |path| Ingest::DiskChanged {
            path,
            format,
            since_item,
            ranges,
        })
    }
    fn previous(&mut self) -> Res<Option<wit::RestorePoint>> {
        self.timed(|s| {
            Ok(s.engine("previous")?
                .previous()?
                .as_ref()
                .map(crate::convert::restore_point_out))
        })
    }
    fn read_previous_document(&mut self, item: String) -> Res<Vec<u8>> {
        self.timed(|s| Ok(s.engine(&item)?.read_previous(&item, SMALL_MAX)?))
    }
    fn put_document(&mut self, item: String, body: Vec<u8>) -> Res<wit::ItemSummary> {
        if body.len() as u64 > SMALL_MAX {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("document `{item}` is larger than 16 MiB; use ingest-file or a stream"),
            ));
        }
        self.timed(|s| {
            s.engine(&item)?
                .ingest(&item, Ingest::Document(body))
                .map(Into::into)
                .map_err(Into::into)
        })
    }
    fn open_stream(&mut self, item: String) -> Res<Resource<StreamWriter>> {
        self.engine(&item)?;
        let file = tempfile::tempfile().map_err(|e| io_err("spooling a stream", &e))?;
        self.table
            .push(StreamWriter {
                item,
                file: Some(file),
                written: 0,
            })
            .map_err(|e| err(ErrorCode::Failed, e.to_string()))
    }
    fn items(&mut self) -> Res<Vec<wit::ItemInfo>> {
        self.timed(|s| {
            Ok(s.engine("items")?
                .items()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }
    fn read_document(&mut self, item: String) -> Res<Vec<u8>> {
        self.timed(|s| Ok(s.engine(&item)?.read_item(&item, SMALL_MAX)?))
    }
    fn restore_item(&mut self, item: String, target: String, overwrite: bool) -> Res<u64> {
        self.timed(|s| {
            let p = s.path(CapabilityKind::FilesWrite, &target)?;
            s.audit(
                CapabilityKind::FilesWrite,
                &target,
                true,
                &format!("restore item {item}"),
            );
            Ok(s.engine(&item)?.restore_item(&item, &p, overwrite)?)
        })
    }
}

impl engine::HostStreamWriter for State {
    fn write(&mut self, w: Resource<StreamWriter>, bytes: Vec<u8>) -> Res<()> {
        if bytes.len() > WRITE_CHUNK_MAX {
            return Err(err(ErrorCode::InvalidInput, "at most 4 MiB per write"));
        }
        let sw = self
            .table
            .get_mut(&w)
            .map_err(|e| err(ErrorCode::Failed, e.to_string()))?;
        if sw.written + bytes.len() as u64 > STREAM_MAX {
            return Err(err(
                ErrorCode::InvalidInput,
                format!(
                    "stream `{}` is larger than 256 MiB; write it to a file and use ingest-file",
                    sw.item
                ),
            ));
        }
        let f = sw
            .file
            .as_mut()
            .ok_or_else(|| err(ErrorCode::InvalidInput, "stream already finished"))?;
        f.write_all(&bytes)
            .map_err(|e| io_err("spooling a stream", &e))?;
        sw.written += bytes.len() as u64;
        Ok(())
    }
    fn finish(&mut self, w: Resource<StreamWriter>) -> Res<wit::ItemSummary> {
        let sw = self
            .table
            .get_mut(&w)
            .map_err(|e| err(ErrorCode::Failed, e.to_string()))?;
        let item = sw.item.clone();
        let mut f = sw
            .file
            .take()
            .ok_or_else(|| err(ErrorCode::InvalidInput, "stream already finished"))?;
        use std::io::Seek;
        f.rewind().map_err(|e| io_err("spooling a stream", &e))?;
        self.timed(|s| {
            s.engine(&item)?
                .ingest(&item, Ingest::Spooled(f))
                .map(Into::into)
                .map_err(Into::into)
        })
    }
    fn drop(&mut self, w: Resource<StreamWriter>) -> wasmtime::Result<()> {
        self.table.delete(w)?;
        Ok(())
    }
}

fn entry(name: String, md: &std::fs::Metadata) -> files::Entry {
    let kind = if md.is_symlink() {
        files::EntryKind::Symlink
    } else if md.is_dir() {
        files::EntryKind::Directory
    } else if md.is_file() {
        files::EntryKind::File
    } else {
        files::EntryKind::Other
    };
    let modified = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    files::Entry {
        name,
        kind,
        size: md.len(),
        modified,
    }
}

impl files::Host for State {
    fn stat(&mut self, path: String) -> Res<files::Entry> {
        self.timed(|s| {
            let p = s.path(CapabilityKind::Files, &path)?;
            let md = std::fs::symlink_metadata(&p).map_err(|e| io_err(&path, &e))?;
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(entry(name, &md))
        })
    }
    fn list_dir(&mut self, path: String) -> Res<Vec<files::Entry>> {
        self.timed(|s| {
            let p = s.path(CapabilityKind::Files, &path)?;
            let mut out = Vec::new();
            for e in std::fs::read_dir(&p).map_err(|e| io_err(&path, &e))? {
                let e = e.map_err(|e| io_err(&path, &e))?;
                let md = e
                    .metadata()
                    .map_err(|err| io_err(&e.path().to_string_lossy(), &err))?;
                out.push(entry(e.file_name().to_string_lossy().into_owned(), &md));
                if out.len() > LIST_MAX {
                    return Err(err(
                        ErrorCode::InvalidInput,
                        format!("{path} has more than {LIST_MAX} entries"),
                    ));
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
    }
    fn read_file(&mut self, path: String) -> Res<Vec<u8>> {
        self.timed(|s| {
            let p = s.path(CapabilityKind::Files, &path)?;
            let f = std::fs::File::open(&p).map_err(|e| io_err(&path, &e))?;
            let mut buf = Vec::new();
            f.take(SMALL_MAX + 1)
                .read_to_end(&mut buf)
                .map_err(|e| io_err(&path, &e))?;
            if buf.len() as u64 > SMALL_MAX {
                return Err(err(
                    ErrorCode::InvalidInput,
                    format!("{path} is larger than 16 MiB; ask the engine to ingest it instead"),
                ));
            }
            Ok(buf)
        })
    }
    fn write_file(&mut self, path: String, contents: Vec<u8>, overwrite: bool) -> Res<()> {
        self.timed(|s| {
            let p = s.path(CapabilityKind::FilesWrite, &path)?;
            if !overwrite && std::fs::symlink_metadata(&p).is_ok() {
                return Err(err(
                    ErrorCode::InvalidInput,
                    format!("{path} exists; pass overwrite to replace it"),
                ));
            }
            s.audit(
                CapabilityKind::FilesWrite,
                &path,
                true,
                &format!("{} bytes", contents.len()),
            );
            write_atomic(&p, &contents).map_err(|e| io_err(&path, &e))
        })
    }
}

/// Write through a temporary file in the same folder, fsync, rename, fsync the folder.
fn write_atomic(p: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = p
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent folder"))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(p).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

const FORBIDDEN_REQUEST_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];
const HIDDEN_RESPONSE_HEADERS: [&str; 2] = ["set-cookie", "authorization"];

impl http::Host for State {
    fn send(&mut self, req: http::Request) -> Res<http::Response> {
        self.timed(|s| {
            let url = url::Url::parse(&req.url).map_err(|e| {
                err(
                    ErrorCode::InvalidInput,
                    format!("`{}` is not a URL: {e}", req.url),
                )
            })?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(err(
                    ErrorCode::InvalidInput,
                    format!("only http and https are supported, not `{}`", url.scheme()),
                ));
            }
            let host = url.host_str().unwrap_or_default().to_string();
            let allowed = if s.grants.host(&host, url.port()) {
                Ok(())
            } else {
                Err(format!(
                    "host `{host}` is not granted (rehydra plugins grant {} http:{host})",
                    s.plugin
                ))
            };
            s.check(CapabilityKind::Http, &host, allowed)?;
            if let Some((name, _)) = req
                .headers
                .iter()
                .find(|(n, _)| FORBIDDEN_REQUEST_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
            {
                let reason = format!(
                    "plugins may not set the `{name}` header; the host authenticates requests"
                );
                s.check(CapabilityKind::Http, &host, Err(reason))?;
            }
            let agent = ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(Duration::from_secs(120))
                .build();
            let mut r = agent.request(&req.method, url.as_str());
            for (n, v) in &req.headers {
                r = r.set(n, v);
            }
            let loopback = url.host().is_some_and(|h| match h {
                url::Host::Ipv4(a) => a.is_loopback(),
                url::Host::Ipv6(a) => a.is_loopback(),
                url::Host::Domain(d) => d == "localhost",
            });
            // credentials only travel encrypted (or stay on this machine)
            if url.scheme() == "https" || loopback {
                if let Some(auth) = s.credentials.authorization(&host) {
                    r = r.set("Authorization", &auth);
                }
            }
            s.audit(
                CapabilityKind::Http,
                &host,
                true,
                &format!("{} {}", req.method, url.path()),
            );
            let resp = match r.send_bytes(&req.body) {
                Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
                Err(e) => return Err(err(ErrorCode::Unavailable, format!("{host}: {e}"))),
            };
            let status = resp.status();
            let headers = resp
                .headers_names()
                .into_iter()
                .filter(|n| !HIDDEN_RESPONSE_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
                .flat_map(|n| {
                    resp.all(&n)
                        .into_iter()
                        .map(|v| (n.clone(), v.to_string()))
                        .collect::<Vec<_>>()
                })
                .collect();
            let mut body = Vec::new();
            resp.into_reader()
                .take(HTTP_BODY_MAX + 1)
                .read_to_end(&mut body)
                .map_err(|e| err(ErrorCode::Unavailable, format!("{host}: {e}")))?;
            if body.len() as u64 > HTTP_BODY_MAX {
                return Err(err(
                    ErrorCode::InvalidInput,
                    format!("response from {host} is larger than 64 MiB"),
                ));
            }
            Ok(http::Response {
                status,
                headers,
                body,
            })
        })
    }
}

impl State {
    /// Check the grant for `program` on `target` and say where it runs: `None` for this
    /// machine, the configured target otherwise.
    fn command_check(&mut self, target: &str, program: &str) -> Res<Option<Target>> {
        let allowed = if self.grants.command(program, target) {
            Ok(())
        } else {
            Err(format!(
                "`{program}` on `{target}` is not granted (rehydra plugins grant {} command:{program}@{target})",
                self.plugin
            ))
        };
        self.check(
            CapabilityKind::Command,
            &format!("{program}@{target}"),
            allowed,
        )?;
        if target == "local" {
            return Ok(None);
        }
        match self.targets.iter().find(|t| t.name == target) {
            Some(t) => Ok(Some(t.clone())),
            None => Err(err(
                ErrorCode::NotFound,
                format!(
                    "command target `{target}` is not configured (rehydra plugins target add {target} --ssh <user@host>)"
                ),
            )),
        }
    }
}

impl commands::Host for State {
    fn run(&mut self, target: String, program: String, args: Vec<String>) -> Res<commands::Output> {
        self.timed(|s| {
            let remote = s.command_check(&target, &program)?;
            s.audit(
                CapabilityKind::Command,
                &format!("{program}@{target}"),
                true,
                &args.join(" "),
            );
            match remote {
                None => run_command(&program, &args, s.timeout),
                Some(t) => run_remote(&t, &t.program_line(&program, &args), s.timeout),
            }
        })
    }
    fn powershell(&mut self, target: String, script: String) -> Res<commands::Output> {
        self.timed(|s| {
            let remote = s.command_check(&target, "powershell")?;
            s.audit(
                CapabilityKind::Command,
                &format!("powershell@{target}"),
                true,
                "script",
            );
            match remote {
                None => match run_command(
                    "pwsh",
                    &[
                        "-NoProfile".into(),
                        "-NonInteractive".into(),
                        "-Command".into(),
                        script,
                    ],
                    s.timeout,
                ) {
                    Err(e) if e.code == wit::ErrorCode::NotFound => Err(err(
                        ErrorCode::Unsupported,
                        "PowerShell 7 (pwsh) is not installed on this machine",
                    )),
                    r => r,
                },
                Some(t) => run_remote(&t, &t.powershell_line(&script), s.timeout),
            }
        })
    }
}

/// Run `line` on `target` over SSH. Exit status 255 is ssh's own failure (unreachable,
/// host key unknown, authentication refused) and is reported as the target being
/// unavailable, with ssh's message.
fn run_remote(target: &Target, line: &str, timeout: Duration) -> Res<commands::Output> {
    let mut args = target.ssh_args();
    args.push(line.to_string());
    let out = run_command("ssh", &args, timeout).map_err(|e| {
        err(
            ErrorCode::Unavailable,
            format!(
                "command target `{}` ({}): {}",
                target.name, target.ssh, e.message
            ),
        )
    })?;
    if out.status == 255 {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(err(
            ErrorCode::Unavailable,
            format!(
                "command target `{}` ({}) could not be reached over SSH: {why}",
                target.name, target.ssh
            ),
        ));
    }
    Ok(out)
}

/// Run a program without a shell and with a clean environment (no secrets inherited),
/// killing it after `timeout`; output is capped at 16 MiB per stream.
fn run_command(program: &str, args: &[String], timeout: Duration) -> Res<commands::Output> {
    let mut child = std::process::Command::new(program)
        .args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("LANG", "C")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| io_err(&format!("starting {program}"), &e))?;
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(SMALL_MAX).read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let errs = reader(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| io_err(program, &e))? {
            Some(st) => break st,
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(
                    ErrorCode::Failed,
                    format!(
                        "{program} did not finish within {} s and was killed",
                        timeout.as_secs()
                    ),
                ));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    Ok(commands::Output {
        status: status.code().unwrap_or(-1),
        stdout: out.join().unwrap_or_default(),
        stderr: errs.join().unwrap_or_default(),
    })
}

impl host::Host for State {
    fn log(&mut self, level: host::Level, message: String) {
        let level = match level {
            host::Level::Trace => LogLevel::Trace,
            host::Level::Debug => LogLevel::Debug,
            host::Level::Info => LogLevel::Info,
            host::Level::Warn => LogLevel::Warn,
            host::Level::Error => LogLevel::Error,
        };
        let msg: String = message.chars().take(4096).collect();
        self.events.log(&self.plugin, level, &msg);
    }
    fn progress(&mut self, done: u64, total: u64, message: String) {
        self.events.progress(&self.plugin, done, total, &message);
    }
    fn cancelled(&mut self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

fn disk_format(f: wit::DiskFormat) -> crate::DiskFormat {
    match f {
        wit::DiskFormat::Auto => crate::DiskFormat::Auto,
        wit::DiskFormat::Raw => crate::DiskFormat::Raw,
        wit::DiskFormat::Vhdx => crate::DiskFormat::Vhdx,
        wit::DiskFormat::Vhd => crate::DiskFormat::Vhd,
    }
}
