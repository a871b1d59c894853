//! Loading plugins (signature, manifest, contract, compile cache) and calling their verbs
//! under limits.
//!
//! Calls run asynchronously inside wasmtime (WASI waits are futures) on a small tokio
//! runtime owned by the host, raced against the call's time budget and cancel flag:
//! wasm code is stopped by epoch interruption, a pending WASI wait by dropping the call's
//! future, and host calls check the budget themselves. The public API stays synchronous.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::Invocation;
use crate::bindings::{Plugin as Bindings, PluginPre};
use crate::convert as dto;
use crate::dto::{
    Asset, BackupReport, Finding, PluginInfo, Property, RestorePlan, RestoreReport, RestoreRequest,
    VerifyReport,
};
use crate::error::{PluginError, Result};
use crate::limits::{AuditGate, Budget, Limiter, MAX_RESOURCES, Stop};
use crate::manifest::{CONTRACT_VERSION, Manifest};
use crate::package;
use crate::policy::TrustedKey;
use crate::state::State;

const TICK: Duration = Duration::from_millis(10);
const STDERR_CAPACITY: usize = 1 << 20;

/// Host settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where compiled components are cached (`None`: compile on every load).
    pub cache_dir: Option<PathBuf>,
    /// Load unsigned plugins and plugins of untrusted publishers (never tampered ones).
    pub developer_mode: bool,
    /// Plugin instances running at once; further calls wait.
    pub max_concurrency: usize,
    /// The admin's caps on what any plugin's calls may use (never above
    /// [`Limits::HIGHEST`]); a plugin gets the lower of what it asks and these.
    pub caps: crate::Limits,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            developer_mode: false,
            max_concurrency: 4,
            caps: crate::Limits::HIGHEST,
        }
    }
}

/// Who vouches for a loaded plugin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Signer {
    /// Signed with a key the admin trusts for the manifest's publisher.
    Trusted {
        /// Publisher.
        publisher: String,
        /// Key (hex).
        key: String,
    },
    /// Signed, valid, but the key is not trusted (developer mode only).
    Untrusted {
        /// Key (hex).
        key: String,
    },
    /// Not signed (developer mode only).
    Unsigned,
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Trusted { publisher, key } => {
                write!(
                    f,
                    "trusted key {}… of {publisher}",
                    &key[..key.len().min(16)]
                )
            }
            Self::Untrusted { key } => write!(
                f,
                "key {}…, NOT trusted (developer mode)",
                &key[..key.len().min(16)]
            ),
            Self::Unsigned => f.write_str("unsigned (developer mode)"),
        }
    }
}

impl Signer {
    /// Who the admin's grants are bound to: the signing key (hex), or `unsigned` for an
    /// unsigned developer-mode plugin. Grants of another signer of the same plugin id do
    /// not apply.
    pub fn grant_key(&self) -> String {
        match self {
            Self::Trusted { key, .. } | Self::Untrusted { key } => key.clone(),
            Self::Unsigned => "unsigned".into(),
        }
    }
}

/// How a load went.
#[derive(Debug, Clone, Copy, serde::Serialize, ts_rs::TS)]
pub struct LoadInfo {
    /// Compiled code came from the cache.
    pub cached: bool,
    /// Wall time of the load, milliseconds.
    pub millis: f64,
}

/// A plugin ready to be called.
pub struct LoadedPlugin {
    /// Its manifest.
    pub manifest: Manifest,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// Who signed it.
    pub signer: Signer,
    /// Load statistics.
    pub load: LoadInfo,
    pre: PluginPre<State>,
}

struct Slots {
    active: usize,
    peak: usize,
}

/// Loads and runs plugins. Cheap to share across threads (`&self` everywhere).
pub struct PluginHost {
    engine: Engine,
    linker: Linker<State>,
    cfg: HostConfig,
    slots: Arc<(Mutex<Slots>, Condvar)>,
    rt: Runtime,
    http: reqwest::Client,
}

/// The host's tokio runtime (timers for WASI waits and the watchdog); shut down without
/// waiting, so that dropping the host never blocks or panics inside another runtime.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0
            .as_ref()
            .expect("the runtime lives as long as the host")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl PluginHost {
    /// The limits `plugin`'s calls run under: what its manifest asks, capped by the admin.
    pub fn limits(&self, plugin: &LoadedPlugin) -> crate::Limits {
        plugin.manifest.limits.capped(self.cfg.caps)
    }

    /// A host with `cfg`; starts the epoch ticker thread.
    ///
    /// # Errors
    /// The engine cannot be configured on this platform.
    pub fn new(cfg: HostConfig) -> Result<Self> {
        let mut c = Config::new();
        c.epoch_interruption(true);
        c.wasm_component_model(true);
        let engine = Engine::new(&c).map_err(|e| PluginError::Invalid(format!("wasmtime: {e}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| PluginError::Invalid(format!("wasi: {e}")))?;
        Bindings::add_to_linker::<State, wasmtime::component::HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Invalid(format!("linker: {e}")))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(e) = weak.upgrade() {
                    e.increment_epoch();
                    drop(e);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| PluginError::io("starting the plugin timer", e))?;
        let max = cfg.max_concurrency.max(1);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("plugin-io")
            .enable_all()
            .build()
            .map_err(|e| PluginError::io("starting the plugin runtime", e))?;
        let http = crate::state::http_client().map_err(PluginError::Invalid)?;
        Ok(Self {
            http,
            rt: Runtime(Some(rt)),
            engine,
            linker,
            cfg: HostConfig {
                caps: cfg.caps.capped(crate::Limits::HIGHEST),
                max_concurrency: max,
                ..cfg
            },
            slots: Arc::new((Mutex::new(Slots { active: 0, peak: 0 }), Condvar::new())),
        })
    }

    /// Highest number of instances that ran at once so far.
    pub fn peak_concurrency(&self) -> usize {
        self.slots.0.lock().map(|s| s.peak).unwrap_or(0)
    }

    /// Load a plugin file: signature, manifest, contract version, compile (or cache).
    ///
    /// # Errors
    /// Malformed file, bad or untrusted signature, unsigned outside developer mode,
    /// contract mismatch, imports this host does not provide.
    pub fn load(&self, path: &Path, trusted: &[TrustedKey]) -> Result<LoadedPlugin> {
        let started = Instant::now();
        let bytes = std::fs::read(path)
            .map_err(|e| PluginError::io(format!("reading plugin {}", path.display()), e))?;
        let pkg = package::parse(path, &bytes)?;
        let text = pkg.manifest.ok_or_else(|| PluginError::Manifest {
            path: path.to_path_buf(),
            reason: "no embedded manifest (package the component with `rehydra plugins pack` or `cargo xtask plugins`)".into(),
        })?;
        let manifest = Manifest::parse(text).map_err(|reason| PluginError::Manifest {
            path: path.to_path_buf(),
            reason,
        })?;
        let id = manifest.id.clone();
        let signer = match pkg.signature {
            None if self.cfg.developer_mode => Signer::Unsigned,
            None => return Err(PluginError::Unsigned { id }),
            Some((block, covered)) => {
                let key = package::verify(&block, covered)
                    .ok_or_else(|| PluginError::BadSignature { id: id.clone() })?;
                let key = hex::encode(key.as_bytes());
                if trusted
                    .iter()
                    .any(|t| t.publisher == manifest.publisher && t.key == key)
                {
                    Signer::Trusted {
                        publisher: manifest.publisher.clone(),
                        key,
                    }
                } else if self.cfg.developer_mode {
                    Signer::Untrusted { key }
                } else {
                    return Err(PluginError::UnknownPublisher {
                        id,
                        publisher: manifest.publisher.clone(),
                        key,
                    });
                }
            }
        };
        check_version(
            &id,
            &manifest.contract,
            &format!("rehydra:plugin@{}", manifest.contract),
        )?;
        let (component, cached) =
            crate::cache::load(&self.engine, self.cfg.cache_dir.as_deref(), &bytes).map_err(
                |e| PluginError::Malformed {
                    path: path.to_path_buf(),
                    reason: format!("{e:#}"),
                },
            )?;
        self.check_contract(&id, &component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::Link {
                id: id.clone(),
                reason: format!("{e:#}"),
            })?;
        let pre = PluginPre::new(pre).map_err(|e| PluginError::Link {
            id: id.clone(),
            reason: format!("{e:#}"),
        })?;
        Ok(LoadedPlugin {
            manifest,
            path: path.to_path_buf(),
            signer,
            load: LoadInfo {
                cached,
                millis: started.elapsed().as_secs_f64() * 1e3,
            },
            pre,
        })
    }

    /// Every `rehydra:plugin` import and the `workload` export must be of a compatible
    /// version; anything else that is not WASI is not provided here.
    fn check_contract(&self, id: &str, component: &Component) -> Result<()> {
        let ty = component.component_type();
        let mut exports_workload = false;
        for (name, _) in ty.exports(&self.engine) {
            if let Some(v) = name.strip_prefix("rehydra:plugin/workload@") {
                check_version(id, v, name)?;
                exports_workload = true;
            } else if name.starts_with("rehydra:plugin/") {
                check_version(id, name.rsplit('@').next().unwrap_or(""), name)?;
            }
        }
        for (name, _) in ty.imports(&self.engine) {
            if name.starts_with("rehydra:plugin/") {
                check_version(id, name.rsplit('@').next().unwrap_or(""), name)?;
            } else if !name.starts_with("wasi:") {
                return Err(PluginError::Link {
                    id: id.into(),
                    reason: format!("it imports `{name}`, which this host does not provide"),
                });
            }
        }
        if !exports_workload {
            return Err(PluginError::ContractMismatch {
                id: id.into(),
                found: "a component that does not export rehydra:plugin/workload".into(),
                supported: CONTRACT_VERSION.into(),
            });
        }
        Ok(())
    }

    fn call<T>(
        &self,
        plugin: &LoadedPlugin,
        verb: &'static str,
        inv: Invocation,
        f: impl AsyncFnOnce(
            &Bindings,
            &mut Store<State>,
        )
            -> wasmtime::Result<std::result::Result<T, crate::bindings::wit::Error>>,
    ) -> Result<T> {
        let _slot = self.acquire();
        let limits = self.limits(plugin);
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        let budget = Arc::new(Budget::new(
            Duration::from_secs(limits.timeout_secs),
            inv.cancel,
        ));
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let state = State {
            wasi,
            table,
            limiter: Limiter::new(usize::try_from(limits.memory_mib << 20).unwrap_or(usize::MAX)),
            plugin: plugin.manifest.id.clone(),
            verb,
            grants: inv.grants,
            read_only: inv.read_only,
            targets: inv.targets,
            engine: inv.engine,
            credentials: inv.credentials,
            directories: inv.directories,
            ldap: Default::default(),
            sql_servers: inv.sql_servers,
            object_stores: inv.object_stores,
            http: self.http.clone(),
            tls_clients: Default::default(),
            events: inv.events,
            budget: budget.clone(),
            audit_gate: AuditGate::default(),
            streams_opened: 0,
            spooled: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if ctx.data().budget.check().is_err() {
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Continue(1))
        });
        let id = plugin.manifest.id.clone();
        let outcome = self.rt.get().block_on(watchdog(
            async {
                let b = plugin.pre.instantiate_async(&mut store).await?;
                f(&b, &mut store).await
            },
            &budget,
        ));
        store.data_mut().finish_audit();
        match (budget.stopped(), outcome) {
            (Some(Stop::Timeout), _) => Err(PluginError::Timeout {
                plugin: id,
                verb: verb.into(),
                secs: limits.timeout_secs,
            }),
            (Some(Stop::Cancelled), _) => Err(PluginError::Failed {
                plugin: id,
                verb: verb.into(),
                code: crate::ErrorCode::Cancelled,
                message: "cancelled by the user; the plugin was stopped".into(),
            }),
            (None, Some(Ok(Ok(v)))) => Ok(v),
            (None, Some(Ok(Err(e)))) => Err(PluginError::Failed {
                plugin: id,
                verb: verb.into(),
                code: e.code.into(),
                message: e.message,
            }),
            (None, Some(Err(_)) | None) if store.data().limiter.hit => {
                Err(PluginError::MemoryLimit {
                    plugin: id,
                    verb: verb.into(),
                    mib: limits.memory_mib,
                })
            }
            (None, Some(Err(e))) => {
                let out = stderr.contents();
                let text = String::from_utf8_lossy(&out);
                let tail: Vec<&str> = text
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let mut message = e.root_cause().to_string();
                if !tail.is_empty() {
                    message = format!("{message}; plugin said: {}", tail.join(" | "));
                }
                Err(PluginError::Trap {
                    plugin: id,
                    verb: verb.into(),
                    message,
                })
            }
            (None, None) => Err(PluginError::Trap {
                plugin: id,
                verb: verb.into(),
                message: "stopped by the host".into(),
            }),
        }
    }

    fn acquire(&self) -> SlotGuard {
        let (lock, cv) = &*self.slots;
        let mut s = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while s.active >= self.cfg.max_concurrency {
            s = cv
                .wait(s)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        s.active += 1;
        s.peak = s.peak.max(s.active);
        SlotGuard(self.slots.clone())
    }

    /// Call `describe` and check that it matches the manifest.
    ///
    /// # Errors
    /// The plugin failed, or names itself differently from its manifest.
    pub fn describe(&self, p: &LoadedPlugin, inv: Invocation) -> Result<PluginInfo> {
        let info: PluginInfo = self
            .call(p, "describe", inv, async |b, s| {
                b.rehydra_plugin_workload().call_describe(s).await.map(Ok)
            })?
            .into();
        if info.id != p.manifest.id {
            return Err(PluginError::Manifest {
                path: p.path.clone(),
                reason: format!(
                    "the component calls itself `{}` but its manifest says `{}`",
                    info.id, p.manifest.id
                ),
            });
        }
        Ok(info)
    }

    /// Call `discover`.
    ///
    /// # Errors
    /// See [`PluginError`].
    pub fn discover(
        &self,
        p: &LoadedPlugin,
        inv: Invocation,
        settings: &[Property],
    ) -> Result<Vec<Asset>> {
        let s = dto::props_out(settings);
        let v = self.call(p, "discover", inv, async |b, st| {
            b.rehydra_plugin_workload().call_discover(st, &s).await
        })?;
        Ok(v.into_iter().map(Into::into).collect())
    }

    /// Call `assess`.
    ///
    /// # Errors
    /// See [`PluginError`].
    pub fn assess(
        &self,
        p: &LoadedPlugin,
        inv: Invocation,
        assets: &[Asset],
        settings: &[Property],
    ) -> Result<Vec<Finding>> {
        let a: Vec<_> = assets.iter().map(dto::asset_out).collect();
        let s = dto::props_out(settings);
        let v = self.call(p, "assess", inv, async |b, st| {
            b.rehydra_plugin_workload().call_assess(st, &a, &s).await
        })?;
        Ok(v.into_iter().map(Into::into).collect())
    }

    /// Call `backup`; the invocation's engine receives the items.
    ///
    /// # Errors
    /// See [`PluginError`].
    pub fn backup(
        &self,
        p: &LoadedPlugin,
        inv: Invocation,
        asset: &Asset,
        options: &[Property],
    ) -> Result<BackupReport> {
        let req = crate::bindings::wit::BackupRequest {
            asset: dto::asset_out(asset),
            options: dto::props_out(options),
        };
        Ok(self
            .call(p, "backup", inv, async |b, st| {
                b.rehydra_plugin_workload().call_backup(st, &req).await
            })?
            .into())
    }

    /// Call `plan-restore`.
    ///
    /// # Errors
    /// See [`PluginError`].
    pub fn plan_restore(
        &self,
        p: &LoadedPlugin,
        inv: Invocation,
        req: &RestoreRequest,
    ) -> Result<RestorePlan> {
        let r = dto::restore_request_out(req);
        Ok(self
            .call(p, "plan-restore", inv, async |b, st| {
                b.rehydra_plugin_workload().call_plan_restore(st, &r).await
            })?
            .into())
    }

    /// Call `restore`.
    ///
    /// # Errors
    /// See [`PluginError`].
    pub fn restore(
        &self,
        p: &LoadedPlugin,
        inv: Invocation,
        req: &RestoreRequest,
    ) -> Result<RestoreReport> {
        let r = dto::restore_request_out(req);
        Ok(self
            .call(p, "restore", inv, async |b, st| {
                b.rehydra_plugin_workload().call_restore(st, &r).await
            })?
            .into())
    }

    /// Call `verify`.
    ///
    /// # Errors
    /// See [`PluginError`].
    pub fn verify(
        &self,
        p: &LoadedPlugin,
        inv: Invocation,
        req: &RestoreRequest,
    ) -> Result<VerifyReport> {
        let r = dto::restore_request_out(req);
        Ok(self
            .call(p, "verify", inv, async |b, st| {
                b.rehydra_plugin_workload().call_verify(st, &r).await
            })?
            .into())
    }
}

struct SlotGuard(Arc<(Mutex<Slots>, Condvar)>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let (lock, cv) = &*self.0;
        let mut s = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.active -= 1;
        cv.notify_one();
    }
}

/// Run `call` until it finishes, or until `budget` says stop (checked every tick while the
/// call waits); `None` when stopped. Dropping the call's future cancels what it waits for
/// (a WASI sleep or poll) and unwinds the plugin.
async fn watchdog<F: Future>(call: F, budget: &Budget) -> Option<F::Output> {
    let mut call = std::pin::pin!(call);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            out = &mut call => return Some(out),
            _ = tick.tick() => {
                if budget.check().is_err() {
                    return None;
                }
            }
        }
    }
}

/// `found` (a version like `0.1.0`) must be this host's major.minor with a patch no newer.
fn check_version(id: &str, found: &str, what: &str) -> Result<()> {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
        Some((it.next()??, it.next()??, it.next()??))
    };
    let ours = parse(CONTRACT_VERSION).unwrap_or((0, 1, 0));
    match parse(found) {
        Some((a, b, c)) if (a, b) == (ours.0, ours.1) && c <= ours.2 => Ok(()),
        _ => Err(PluginError::ContractMismatch {
            id: id.into(),
            found: what.into(),
            supported: CONTRACT_VERSION.into(),
        }),
    }
}
