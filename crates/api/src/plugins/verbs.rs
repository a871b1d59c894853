//! Running a plugin's verbs (describe, discover, assess, backup, plan, restore,
//! verify) against a repository.

use super::*;
use host::SettingVerb;

use crate::error::refuse_blocked;
use crate::inventory::Discovery;

impl Plugins {
    pub(super) fn invocation(
        &self,
        p: &host::LoadedPlugin,
        engine: Option<Box<dyn host::EngineCapability>>,
        cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<(host::Invocation, Arc<Collector>)> {
        let events = Arc::new(Collector::default());
        let mut inv = host::Invocation::new(self.grants(p)?);
        let targets = self.targets()?;
        inv.targets = targets.clone();
        inv.engine = engine;
        inv.credentials = crate::azure::AzureCredentials::new(
            &self.ctx,
            kube_clusters::Configured::read(&self.kube_clusters()?),
        )?;
        inv.directories = Arc::new(directories::Configured(self.directories()?));
        inv.sql_servers = Arc::new(sql_servers::Configured::new(
            &self.ctx,
            self.sql_servers()?,
            targets,
        ));
        inv.object_stores = Arc::new(buckets::Buckets::new(&self.ctx));
        inv.events = events.clone();
        if let Some(c) = cancel {
            inv.cancel = c;
        }
        Ok((inv, events))
    }

    /// Write the audit events of a call to the catalog and return its log lines.
    pub(super) fn settle(&self, events: &Collector) -> Vec<String> {
        let audit: Vec<AuditRow> = events
            .audit
            .lock()
            .map(|a| {
                a.iter()
                    .map(|e| AuditRow {
                        time: e.time.clone(),
                        plugin_id: e.plugin.clone(),
                        verb: e.verb.clone(),
                        capability: e.capability.clone(),
                        target: e.target.clone(),
                        allowed: e.allowed,
                        detail: e.detail.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !audit.is_empty() {
            let _ = with_catalog(&self.ctx, |c| async move { c.audit(&audit).await });
        }
        events.lines()
    }

    pub(super) fn run<T>(
        &self,
        id: &str,
        engine: Option<Box<dyn host::EngineCapability>>,
        f: impl FnOnce(&host::PluginHost, &host::LoadedPlugin, host::Invocation) -> host::Result<T>,
    ) -> Result<(T, Vec<String>)> {
        self.run_loaded(&self.load(id)?, engine, f)
    }

    fn run_loaded<T>(
        &self,
        p: &host::LoadedPlugin,
        engine: Option<Box<dyn host::EngineCapability>>,
        f: impl FnOnce(&host::PluginHost, &host::LoadedPlugin, host::Invocation) -> host::Result<T>,
    ) -> Result<(T, Vec<String>)> {
        self.run_with(p, engine, false, f)
    }

    fn run_with<T>(
        &self,
        p: &host::LoadedPlugin,
        engine: Option<Box<dyn host::EngineCapability>>,
        read_only: bool,
        f: impl FnOnce(&host::PluginHost, &host::LoadedPlugin, host::Invocation) -> host::Result<T>,
    ) -> Result<(T, Vec<String>)> {
        let (mut inv, events) = self.invocation(p, engine, None)?;
        inv.read_only = read_only;
        let r = f(&self.host, p, inv);
        let log = self.settle(&events);
        Ok((r.map_err(plugin_err)?, log))
    }

    /// `describe`.
    ///
    /// # Errors
    /// Load or call failure.
    pub fn describe(&self, id: &str) -> Result<PluginInfo> {
        Ok(self.run(id, None, |h, p, inv| h.describe(p, inv))?.0)
    }

    /// Check `given` against the settings plugin `id` declares for `verb` (as every call
    /// does before the plugin runs), for callers that store settings for later.
    ///
    /// # Errors
    /// Not installed or refused; every problem with the settings, as invalid input.
    pub fn check_settings(&self, id: &str, verb: SettingVerb, given: &[Property]) -> Result<()> {
        settings_for(&self.load(id)?, verb, given).map(drop)
    }

    /// `discover` with settings.
    ///
    /// # Errors
    /// Load or call failure.
    pub fn discover(&self, id: &str, settings: &[Property]) -> Result<(Vec<Asset>, Vec<String>)> {
        let p = self.load(id)?;
        let settings = settings_for(&p, SettingVerb::Discover, settings)?;
        self.run_loaded(&p, None, |h, p, inv| h.discover(p, inv, &settings))
    }

    /// `discover`, then `assess` everything found.
    ///
    /// # Errors
    /// Load or call failure.
    pub fn assess(&self, id: &str, settings: &[Property]) -> Result<(Vec<Finding>, Vec<String>)> {
        let (d, log) = self.survey(id, settings)?;
        Ok((d.findings, log))
    }

    /// `discover`, then `assess` what was found: what the inventory shows.
    ///
    /// # Errors
    /// Load or call failure.
    pub fn survey(&self, id: &str, settings: &[Property]) -> Result<(Discovery, Vec<String>)> {
        self.survey_with(id, settings, false)
    }

    /// [`Self::survey`] in calls that only read (see [`host::Invocation::read_only`]): what
    /// an assessment runs.
    ///
    /// # Errors
    /// Load or call failure; a write the plugin tried is refused and fails the call.
    pub fn survey_reading(
        &self,
        id: &str,
        settings: &[Property],
    ) -> Result<(Discovery, Vec<String>)> {
        self.survey_with(id, settings, true)
    }

    fn survey_with(
        &self,
        id: &str,
        settings: &[Property],
        read_only: bool,
    ) -> Result<(Discovery, Vec<String>)> {
        let p = self.load(id)?;
        let settings = settings_for(&p, SettingVerb::Discover, settings)?;
        let (assets, mut log) = self.run_with(&p, None, read_only, |h, p, inv| {
            h.discover(p, inv, &settings)
        })?;
        let (findings, l) = self.run_with(&p, None, read_only, |h, p, inv| {
            h.assess(p, inv, &assets, &settings)
        })?;
        log.extend(l);
        Ok((
            Discovery {
                plugin: id.to_string(),
                assets,
                findings,
            },
            log,
        ))
    }

    /// Back up `asset` (an asset id as `discover` reports it) through the plugin.
    ///
    /// # Errors
    /// Load or call failure, engine failure; nothing is committed unless the plugin succeeds.
    pub fn backup(
        &self,
        session: &Session,
        id: &str,
        asset: &str,
        options: &[Property],
        tags: &[String],
        progress: &dyn Progress,
        cancel: &Cancel,
    ) -> Result<PluginBackupOutcome> {
        let p = self.load(id)?;
        let options = settings_for(&p, SettingVerb::Backup, options)?;
        let asset = Asset {
            kind: String::new(),
            id: asset.into(),
            name: asset.into(),
            parent: None,
            properties: vec![],
            flags: vec![],
        };
        let (tx, rx) = unbounded();
        let (inv, events) = self.invocation(&p, Some(Box::new(Link(tx))), Some(cancel.shared()))?;
        let opts = BackupOptions {
            workload: p.manifest.workloads.first().cloned().unwrap_or_default(),
            asset: asset.id.clone(),
            plugin: PluginRef {
                id: p.manifest.id.clone(),
                version: p.manifest.version.clone(),
            },
            tags: tags.to_vec(),
            // a disk image the plugin names may refer only to files it may read itself
            confine: Some(inv.grants.read_roots()),
            ..BackupOptions::default()
        };
        // the newest restore point of this asset and workload: the base for incremental work
        let previous = session
            .resolve(
                "latest",
                &RestorePointFilter {
                    asset: Some(opts.asset.clone()),
                    workload: Some(opts.workload.clone()),
                    ..RestorePointFilter::default()
                },
            )
            .ok()
            .filter(|(_, s)| s.plugin.id == p.manifest.id)
            .map(|(id, snap)| Previous { session, id, snap });
        let mut report = None;
        let mut plugin_failure = None;
        let run = session.catalog_start("backup");
        let r = rehydra_core::archiver::backup_with(
            session.repository(),
            &opts,
            progress,
            cancel,
            |sink| {
                let out = std::thread::scope(|s| {
                    let plugin_thread = s.spawn(|| self.host.backup(&p, inv, &asset, &options));
                    serve_backup(&rx, sink, previous.as_ref());
                    plugin_thread.join()
                });
                match out {
                    Ok(Ok(rep)) => {
                        let finish = Finish {
                            consistency: Some(rep.consistency.clone()),
                            warnings: rep.warnings.clone(),
                        };
                        report = Some(rep);
                        Ok(finish)
                    }
                    Ok(Err(e)) => {
                        let msg = e.to_string();
                        plugin_failure = Some(e);
                        Err(rehydra_core::Error::new(
                            rehydra_core::ErrorKind::InvalidInput,
                            msg,
                        ))
                    }
                    Err(_) => Err(rehydra_core::Error::new(
                        rehydra_core::ErrorKind::Io,
                        "the plugin thread panicked",
                    )),
                }
            },
        );
        let log = self.settle(&events);
        let res = match r {
            Ok(res) => res,
            Err(e) => {
                // the plugin's own error keeps its code (failed, stopped at a limit, cancelled)
                let e = plugin_failure.map_or_else(|| ApiError::from(e), plugin_err);
                session.catalog_failed(run, &e, None, &log);
                return Err(e);
            }
        };
        let dto = RestorePointDto::from_core(&res.id, &res.restore_point);
        let mut warnings = res.warnings;
        if let Err(e) = session.catalog_put(&dto) {
            warnings.push(format!("catalog not updated: {e}"));
        }
        let mut lines = log.clone();
        lines.push(crate::summary_line(&dto));
        lines.extend(warnings.iter().map(|w| format!("warning: {w}")));
        session.catalog_finish(
            run,
            if warnings.is_empty() {
                rehydra_catalog::JobStatus::Succeeded
            } else {
                rehydra_catalog::JobStatus::SucceededWithWarnings
            },
            &warnings.join("; "),
            Some(&dto.id),
            res.restore_point.summary.bytes,
            &lines,
        );
        let report = report.unwrap_or(BackupReport {
            consistency: res.restore_point.consistency.clone(),
            warnings: vec![],
        });
        Ok(PluginBackupOutcome {
            restore_point: dto,
            report,
            warnings,
            log,
        })
    }

    /// `spec` resolved, the plugin that made it loaded (once, for every call on it), and
    /// the request that plugin gets (no target, no options).
    fn request(&self, session: &Session, spec: &str) -> Result<Request> {
        let (id, snap) = session.resolve(spec, &RestorePointFilter::default())?;
        if snap.plugin.id == rehydra_core::archiver::BUILTIN {
            return Err(ApiError::new(
                Code::InvalidInput,
                "this restore point was made by the engine itself, not a plugin; use `rehydra restore`",
            ));
        }
        let plugin = self.load(&snap.plugin.id)?;
        let req = host::RestoreRequest {
            restore_point: point_info(&id, &snap),
            target: String::new(),
            options: Vec::new(),
        };
        Ok(Request { snap, plugin, req })
    }

    /// As [`Self::request`], to `target`, with `options` checked against the settings the
    /// plugin declares for restores, defaults filled in.
    fn restore_request(
        &self,
        session: &Session,
        spec: &str,
        target: &str,
        options: &[Property],
    ) -> Result<Request> {
        let mut r = self.request(session, spec)?;
        r.req.target = target.into();
        r.req.options = settings_for(&r.plugin, SettingVerb::Restore, options)?;
        Ok(r)
    }

    /// Run a verb that reads `snap` (`plan-restore`, `verify`): the plugin may list and
    /// read its items, never restore one.
    fn with_reading_engine<T: Send>(
        &self,
        session: &Session,
        r: &Request,
        call: impl FnOnce(&host::PluginHost, &host::LoadedPlugin, host::Invocation) -> host::Result<T>
        + Send,
    ) -> Result<(T, Vec<String>)> {
        let (r, log) = self.with_restore_engine_logged(
            session,
            r,
            Writes::No,
            &NoProgress,
            &Cancel::default(),
            call,
        );
        Ok((r?, log))
    }

    /// Run a verb with the engine serving `snap`, keeping the plugin's log also when it
    /// fails (the log is empty when the plugin could not be started). Only `restore`, and
    /// `verify` given restore settings, get an engine that writes.
    fn with_restore_engine_logged<T: Send>(
        &self,
        session: &Session,
        r: &Request,
        writes: Writes,
        progress: &dyn Progress,
        cancel: &Cancel,
        call: impl FnOnce(&host::PluginHost, &host::LoadedPlugin, host::Invocation) -> host::Result<T>
        + Send,
    ) -> (Result<T>, Vec<String>) {
        let (tx, rx) = unbounded();
        let (inv, events) =
            match self.invocation(&r.plugin, Some(Box::new(Link(tx))), Some(cancel.shared())) {
                Ok(started) => started,
                Err(e) => return (Err(e), Vec::new()),
            };
        let presence = session.reading();
        let out = std::thread::scope(|s| {
            let t = s.spawn(|| call(&self.host, &r.plugin, inv));
            serve_restore(&rx, session, &r.snap, writes, progress, cancel);
            t.join()
        });
        drop(presence);
        let log = self.settle(&events);
        match out {
            Ok(r) => (r.map_err(plugin_err), log),
            Err(_) => (
                Err(ApiError::new(Code::Io, "the plugin thread panicked")),
                log,
            ),
        }
    }

    /// The plugin's restore plan (steps, warnings, blockers) and its log; touches nothing.
    ///
    /// # Errors
    /// Unknown restore point, load or call failure.
    pub fn plan_restore(
        &self,
        session: &Session,
        spec: &str,
        target: &str,
        options: &[Property],
    ) -> Result<(RestorePlan, Vec<String>)> {
        let r = self.restore_request(session, spec, target, options)?;
        self.plan_request(session, &r)
    }

    /// The plugin's plan for `r`.
    fn plan_request(&self, session: &Session, r: &Request) -> Result<(RestorePlan, Vec<String>)> {
        self.with_reading_engine(session, r, |h, p, inv| h.plan_restore(p, inv, &r.req))
    }

    /// Plan a restore with the plugin that made the restore point; with `execute`, and
    /// only if the plan has no blockers, run it.
    ///
    /// # Errors
    /// Blockers in the plan (nothing touched), load or call failure.
    pub fn restore(
        &self,
        session: &Session,
        spec: &str,
        target: &str,
        options: &[Property],
        execute: bool,
        progress: &dyn Progress,
        cancel: &Cancel,
    ) -> Result<PluginRestoreOutcome> {
        // the restore point is resolved (its manifest read) and its plugin loaded once for
        // the settings check, the plan and the restore
        let r = self.restore_request(session, spec, target, options)?;
        let req = &r.req;
        let (plan, mut log) = self.plan_request(session, &r)?;
        refuse_blocked(
            "the restore plan is blocked, nothing was touched",
            &plan.blockers,
        )?;
        if !execute {
            return Ok(PluginRestoreOutcome {
                plan,
                report: None,
                log,
            });
        }
        let run = session.catalog_start("restore");
        let (out, l) = self.with_restore_engine_logged(
            session,
            &r,
            Writes::Yes,
            progress,
            cancel,
            |h, p, inv| h.restore(p, inv, req),
        );
        log.extend(l);
        match out {
            Ok(report) => {
                let mut lines = log.clone();
                lines.extend(report.warnings.iter().map(|w| format!("warning: {w}")));
                lines.push(format!(
                    "restored {} of {} to {target}",
                    crate::human_bytes(report.bytes),
                    &req.restore_point.id[..8.min(req.restore_point.id.len())]
                ));
                session.catalog_finish(
                    run,
                    rehydra_catalog::JobStatus::Succeeded,
                    target,
                    Some(&req.restore_point.id),
                    report.bytes,
                    &lines,
                );
                Ok(PluginRestoreOutcome {
                    plan,
                    report: Some(report),
                    log,
                })
            }
            Err(e) => {
                session.catalog_failed(run, &e, Some(&req.restore_point.id), &log);
                Err(e)
            }
        }
    }

    /// Verify a restore point with the plugin that made it. `options` are the plugin's
    /// restore settings (where a restore would go, how to reach it), checked as for a
    /// restore, so a plugin can prove the restore it would do (SQL Server reads its
    /// backups with `RESTORE VERIFYONLY` when told where to stage them). Without options
    /// it is a check of the point alone and its engine writes nothing; with them the
    /// plugin may put items where its grants allow, as a restore would (the admin's
    /// settings are the consent).
    ///
    /// # Errors
    /// Load or call failure; an option the plugin does not declare for restores.
    pub fn verify(
        &self,
        session: &Session,
        spec: &str,
        options: &[Property],
    ) -> Result<(VerifyReport, Vec<String>)> {
        let r = self.restore_request(session, spec, "", options)?;
        if options.is_empty() {
            return self.with_reading_engine(session, &r, |h, p, inv| h.verify(p, inv, &r.req));
        }
        let (v, log) = self.with_restore_engine_logged(
            session,
            &r,
            Writes::Yes,
            &NoProgress,
            &Cancel::default(),
            |h, p, inv| h.verify(p, inv, &r.req),
        );
        Ok((v?, log))
    }
}

/// A restore point, the plugin that made it and the request that plugin gets.
struct Request {
    snap: RestorePoint,
    plugin: host::LoadedPlugin,
    req: host::RestoreRequest,
}

/// The settings `p` gets for a `verb` call: `given` checked against what its manifest
/// declares, the declared defaults filled in.
fn settings_for(
    p: &host::LoadedPlugin,
    verb: SettingVerb,
    given: &[Property],
) -> Result<Vec<Property>> {
    host::check_settings(&p.manifest.settings, verb, given).map_err(|problems| {
        ApiError::new(
            Code::InvalidInput,
            format!("plugin {}: {}", p.manifest.id, problems.join("; ")),
        )
    })
}
