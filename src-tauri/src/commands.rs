//! The commands the UI calls. Each is a few lines over `rehydra-api`; long work runs on
//! a blocking thread and reports progress over a channel.

use std::collections::HashSet;
use std::sync::Arc;

use rehydra_api::inventory::{self, InventoryAsset};
use rehydra_api::plugins::{
    Asset, Directory, KubeCluster, KubeClusterView, PluginBackupOutcome, PluginDetails,
    PluginEntry, SqlServer, Target, properties,
};
use rehydra_api::policies::{self, Policy, PolicyRun, PolicyStatus};
use rehydra_api::wizard::{self, InstantExport, PlanView, RestoreChoice, RunView};
use rehydra_api::{
    BackupOutcome, Cancel, CheckOptions, Code, JobRun, NoProgress, RestorePointDto,
    RestorePointFilter,
};
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::{AppHandle, Emitter, Manager};

use crate::progress::{ChannelProgress, ProgressEvent};
use crate::state::{App, ExportEntry, Res, UiError};

/// Run `f` on a blocking thread with the app state.
pub(crate) async fn blocking<T: Send + 'static>(
    app: AppHandle,
    f: impl FnOnce(&App) -> Res<T> + Send + 'static,
) -> Res<T> {
    tauri::async_runtime::spawn_blocking(move || f(&app.state::<App>()))
        .await
        .map_err(|e| UiError::new(Code::Io, format!("the job stopped unexpectedly: {e}")))?
}

/// What changed, as the `state-changed` event tells the UI (which then reloads that part).
#[derive(Clone, Copy, Serialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum Changed {
    /// The open repository.
    Repository,
    /// Its restore points.
    RestorePoints,
    /// Job history.
    Jobs,
    /// Policies.
    Policies,
    /// Instant-recovery exports.
    Exports,
    /// Installed plugins and grants.
    Plugins,
}

/// The `state-changed` event's payload.
#[derive(Clone, Serialize, ts_rs::TS)]
pub struct StateChanged {
    /// What changed.
    pub what: Changed,
}

/// Tell the UI that `what` changed.
pub fn changed(app: &AppHandle, what: Changed) {
    let _ = app.emit("state-changed", StateChanged { what });
}

/// [`blocking`], then the `state-changed` event for `what` (also after a failure: a
/// failed job is in the history too).
pub(crate) async fn changing<T: Send + 'static>(
    app: AppHandle,
    what: Changed,
    f: impl FnOnce(&App) -> Res<T> + Send + 'static,
) -> Res<T> {
    let handle = app.clone();
    let r = blocking(app, f).await;
    changed(&handle, what);
    r
}

/// Restore points, newest last; of one asset when given.
#[tauri::command]
pub async fn restore_points(app: AppHandle, asset: Option<String>) -> Res<Vec<RestorePointDto>> {
    blocking(app, move |st| {
        let filter = RestorePointFilter {
            asset,
            ..RestorePointFilter::default()
        };
        Ok(st.session()?.restore_points(&filter)?)
    })
    .await
}

/// The estate: discovered assets joined with their restore points and risks.
#[tauri::command]
pub async fn inventory(app: AppHandle, rpo_hours: f64) -> Res<Vec<InventoryAsset>> {
    blocking(app, move |st| {
        let snaps = match st.session() {
            Ok(s) => s.restore_points(&RestorePointFilter::default())?,
            Err(_) => vec![],
        };
        let restored: HashSet<String> = rehydra_api::job_runs(&st.ctx, 100_000)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.kind == "restore" && r.status == rehydra_api::JobStatus::Succeeded)
            .filter_map(|r| r.restore_point_id)
            .collect();
        Ok(inventory::build(
            &st.discovered(),
            &snaps,
            &restored,
            rpo_hours,
            chrono_now(),
        ))
    })
    .await
}

fn chrono_now() -> rehydra_api::inventory::Now {
    rehydra_api::inventory::now()
}

/// Run a plugin's discovery with settings; the inventory shows the result.
#[tauri::command]
pub async fn discover(
    app: AppHandle,
    plugin: String,
    settings: Vec<(String, String)>,
) -> Res<Vec<Asset>> {
    blocking(app, move |st| {
        // discovery and the plugin's assessment: the inventory shows both
        let (d, _log) = st.plugins()?.survey(&plugin, &properties(&settings))?;
        let assets = d.assets.clone();
        st.remember(d);
        Ok(assets)
    })
    .await
}

/// Back up a folder now, with live progress; `job` names it for `cancel_job`. `exclude`:
/// patterns it leaves out (checked before anything is read).
#[tauri::command]
pub async fn backup_folder(
    app: AppHandle,
    path: String,
    tags: Vec<String>,
    exclude: Vec<String>,
    job: String,
    on_progress: Channel<ProgressEvent>,
) -> Res<BackupOutcome> {
    changing(app, Changed::RestorePoints, move |st| {
        let exclude = rehydra_api::exclude(&exclude, false)?;
        st.job(&job, |s, cancel| {
            Ok(s.backup_folder(
                &path,
                tags,
                exclude,
                &ChannelProgress::new(on_progress),
                cancel,
            )?)
        })
    })
    .await
}

/// Back up an asset a plugin discovered (a VM, a node's folders …) through that plugin.
#[tauri::command]
pub async fn plugin_backup(
    app: AppHandle,
    plugin: String,
    asset: String,
    options: Vec<(String, String)>,
    job: String,
    on_progress: Channel<ProgressEvent>,
) -> Res<PluginBackupOutcome> {
    changing(app, Changed::RestorePoints, move |st| {
        st.job(&job, |s, cancel| {
            Ok(st.plugins()?.backup(
                s,
                &plugin,
                &asset,
                &properties(&options),
                &[],
                &ChannelProgress::new(on_progress),
                cancel,
            )?)
        })
    })
    .await
}

/// Protection policies with their last run and next due time.
#[tauri::command]
pub async fn policies_list(app: AppHandle) -> Res<Vec<PolicyStatus>> {
    blocking(app, |st| {
        Ok(policies::list(&st.ctx, rehydra_api::inventory::now())?)
    })
    .await
}

/// Add or replace a policy (for the open repository).
#[tauri::command]
pub async fn policy_save(app: AppHandle, policy: Policy) -> Res<()> {
    changing(app, Changed::Policies, move |st| {
        Ok(policies::save(&st.ctx, &st.plugins()?, &policy)?)
    })
    .await
}

/// Open a policy's copy target with its password (checks it) and keep the password in
/// memory for this session, so policy runs can copy there. Never written anywhere.
#[tauri::command]
pub async fn copy_target_unlock(app: AppHandle, location: String, password: String) -> Res<()> {
    changing(app, Changed::Policies, move |st| {
        rehydra_api::open(&st.ctx, &location, password.as_bytes())?;
        st.unlock_copy_target(&location, password.into_bytes());
        Ok(())
    })
    .await
}

/// Copy targets unlocked in this session.
#[tauri::command]
pub fn copy_targets_unlocked(app: AppHandle) -> Vec<String> {
    app.state::<App>().unlocked_copy_targets()
}

/// Remove a policy (its restore points stay).
#[tauri::command]
pub async fn policy_remove(app: AppHandle, name: String) -> Res<bool> {
    changing(app, Changed::Policies, move |st| {
        Ok(policies::remove(&st.ctx, &name)?)
    })
    .await
}

/// Run a policy now (backup, then its retention), with live progress, in its own
/// repository, which must be open (refused otherwise, before anything is counted as a
/// failed run; refused too while the same policy runs in this app).
#[tauri::command]
pub async fn policy_run(
    app: AppHandle,
    name: String,
    job: String,
    on_progress: Channel<ProgressEvent>,
) -> Res<PolicyRun> {
    changing(app, Changed::RestorePoints, move |st| {
        let plugins = st.plugins().ok();
        let policy = policies::status(&st.ctx, &name)?.policy;
        let copy_password = policy.copy_to.and_then(|t| st.copy_password(&t.repository));
        let session = st.session_for(&policy.repository)?;
        st.policy_running(&name, || {
            st.job_on(session, &job, |s, cancel| {
                Ok(policies::run(
                    &st.ctx,
                    s,
                    plugins.as_ref(),
                    &name,
                    copy_password.as_deref().map(Vec::as_slice),
                    &ChannelProgress::new(on_progress),
                    cancel,
                )?)
            })
        })
    })
    .await
}

/// Ask a running job to stop.
#[tauri::command]
pub fn cancel_job(app: AppHandle, job: String) -> bool {
    app.state::<App>().cancel(&job)
}

/// Job runs, newest first.
#[tauri::command]
pub async fn job_history(app: AppHandle, limit: i64) -> Res<Vec<JobRun>> {
    blocking(app, move |st| Ok(rehydra_api::job_runs(&st.ctx, limit)?)).await
}

/// The restore plan: steps, warnings, blockers. Touches nothing.
#[tauri::command]
pub async fn restore_plan(app: AppHandle, choice: RestoreChoice) -> Res<PlanView> {
    blocking(app, move |st| {
        let plugins = st.plugins().ok();
        Ok(wizard::plan(&*st.session()?, plugins.as_ref(), &choice)?)
    })
    .await
}

/// Run the restore (re-planned first; refused if anything blocks).
#[tauri::command]
pub async fn restore_run(
    app: AppHandle,
    choice: RestoreChoice,
    job: String,
    on_progress: Channel<ProgressEvent>,
) -> Res<RunView> {
    changing(app, Changed::Jobs, move |st| {
        let plugins = st.plugins().ok();
        st.job(&job, |s, cancel| {
            Ok(wizard::run(
                s,
                plugins.as_ref(),
                &choice,
                &ChannelProgress::new(on_progress),
                cancel,
            )?)
        })
    })
    .await
}

/// The log of one job run.
#[tauri::command]
pub async fn job_log(app: AppHandle, run: i64) -> Res<Vec<String>> {
    blocking(app, move |st| Ok(rehydra_api::job_log(&st.ctx, run)?)).await
}

/// Instant recovery: serve the chosen disk over NBD (re-planned first; refused if
/// anything blocks) until `cancel_job(job)`. Returns as soon as the address is bound.
#[tauri::command]
pub async fn instant_start(
    app: AppHandle,
    choice: RestoreChoice,
    job: String,
) -> Res<InstantExport> {
    let handle = app.clone();
    changing(app, Changed::Exports, move |st| {
        let s = st.session()?;
        let (listener, export) = wizard::bind_instant(&s, &choice)?;
        let cancel = Arc::new(Cancel::default());
        st.export_started(
            ExportEntry {
                job: job.clone(),
                restore_point: choice.restore_point.clone(),
                export: export.clone(),
                running: true,
                error: None,
            },
            cancel.clone(),
        );
        std::thread::Builder::new()
            .name("rehydra-nbd".into())
            .spawn(move || {
                let r = wizard::serve_instant(&s, &choice, &listener, &cancel);
                handle
                    .state::<App>()
                    .export_ended(&job, r.err().map(|e| e.message));
                changed(&handle, Changed::Exports);
            })
            .map_err(|e| UiError::new(Code::Io, format!("starting the NBD server: {e}")))?;
        Ok(export)
    })
    .await
}

/// Instant-recovery exports of this session (running, stopped, failed).
#[tauri::command]
pub fn instant_list(app: AppHandle) -> Vec<ExportEntry> {
    app.state::<App>().exports()
}

/// Verification of a restore point.
#[derive(Serialize, ts_rs::TS)]
pub struct VerifyView {
    ok: bool,
    findings: Vec<String>,
}

/// Prove a restore point can come back: its plugin's `verify` (given the wizard's restore
/// options, so it can check the restore it would do), or every chunk read and checked.
#[tauri::command]
pub async fn verify_restore_point(
    app: AppHandle,
    restore_point: String,
    options: Vec<(String, String)>,
) -> Res<VerifyView> {
    blocking(app, move |st| {
        let s = st.session()?;
        let (_, snap) = s.resolve(&restore_point, &RestorePointFilter::default())?;
        if snap.plugin.id.is_empty() || snap.plugin.id == "builtin" {
            let r = s.check(
                &CheckOptions {
                    read_data: true,
                    ..CheckOptions::default()
                },
                &NoProgress,
            )?;
            return Ok(VerifyView {
                ok: r.errors.is_empty(),
                findings: r.errors,
            });
        }
        let (r, _log) = st
            .plugins()?
            .verify(&s, &restore_point, &properties(&options))?;
        Ok(VerifyView {
            ok: r.ok,
            findings: r
                .findings
                .into_iter()
                .map(|f| format!("[{}] {}: {}", f.severity, f.title, f.detail))
                .collect(),
        })
    })
    .await
}

/// Installed plugins.
#[tauri::command]
pub async fn plugins_list(app: AppHandle) -> Res<Vec<PluginEntry>> {
    blocking(app, |st| Ok(st.plugins()?.list()?)).await
}

/// One plugin: publisher, signature, requested and granted capabilities.
#[tauri::command]
pub async fn plugin_info(app: AppHandle, id: String) -> Res<PluginDetails> {
    blocking(app, move |st| Ok(st.plugins()?.info(&id)?)).await
}

/// Grant capabilities (`files:/srv`, `http:host` …).
#[tauri::command]
pub async fn plugin_grant(app: AppHandle, id: String, specs: Vec<String>) -> Res<Vec<String>> {
    changing(app, Changed::Plugins, move |st| {
        Ok(st.plugins()?.grant(&id, &specs)?)
    })
    .await
}

/// Revoke capabilities.
#[tauri::command]
pub async fn plugin_revoke(app: AppHandle, id: String, specs: Vec<String>) -> Res<u64> {
    changing(app, Changed::Plugins, move |st| {
        Ok(st.plugins()?.revoke(&id, &specs)?)
    })
    .await
}

/// Directories plugins may be granted (`ldap:<name>`), with where each password is kept
/// (never the password).
#[tauri::command]
pub async fn directories_list(app: AppHandle) -> Res<Vec<Directory>> {
    blocking(app, |st| Ok(st.plugins()?.directories()?)).await
}

/// Add or replace a directory. With `check` it is bound to and its root DSE read first,
/// and one that fails is not kept (what `rehydra plugins directory add` does). Returns
/// what the check found.
#[tauri::command]
pub async fn directory_add(app: AppHandle, directory: Directory, check: bool) -> Res<String> {
    changing(app, Changed::Plugins, move |st| {
        let p = st.plugins()?;
        let found = if check {
            p.check_new_directory(directory.clone())
                .map_err(|e| {
                    let mut e = UiError::from(e);
                    e.message.push_str("; nothing was kept");
                    e
                })?
                .to_string()
        } else {
            "kept without a check".to_string()
        };
        p.set_directory(directory)?;
        Ok(found)
    })
    .await
}

/// Bind to a configured directory and read its root DSE and whom it bound us as.
#[tauri::command]
pub async fn directory_check(app: AppHandle, name: String) -> Res<String> {
    blocking(app, move |st| {
        Ok(st.plugins()?.check_directory(&name)?.to_string())
    })
    .await
}

/// Forget a directory; returns whether it was configured.
#[tauri::command]
pub async fn directory_remove(app: AppHandle, name: String) -> Res<bool> {
    changing(app, Changed::Plugins, move |st| {
        Ok(st.plugins()?.remove_directory(&name)?)
    })
    .await
}

/// SQL Server instances plugins may be granted (`sql:<name>`), with where each password
/// is kept (never the password).
#[tauri::command]
pub async fn sql_servers_list(app: AppHandle) -> Res<Vec<SqlServer>> {
    blocking(app, |st| Ok(st.plugins()?.sql_servers()?)).await
}

/// Add or replace an instance. With `check` the host signs in first (TLS verified) and
/// one that fails is not kept (what `rehydra plugins sql-server add` does). Returns what
/// the check found.
#[tauri::command]
pub async fn sql_server_add(app: AppHandle, server: SqlServer, check: bool) -> Res<String> {
    changing(app, Changed::Plugins, move |st| {
        let p = st.plugins()?;
        let found = if check {
            let s = p.check_new_sql_server(server.clone()).map_err(|e| {
                let mut e = UiError::from(e);
                e.message.push_str("; nothing was kept");
                e
            })?;
            format!(
                "signed in to {} (SQL Server {}) as {}",
                s.server, s.version, s.login
            )
        } else {
            "kept without a check".to_string()
        };
        p.set_sql_server(server)?;
        Ok(found)
    })
    .await
}

/// Sign in to a configured instance: its server name and version.
#[tauri::command]
pub async fn sql_server_check(app: AppHandle, name: String) -> Res<String> {
    blocking(app, move |st| {
        let s = st.plugins()?.check_sql_server(&name)?;
        Ok(format!(
            "signed in to {} (SQL Server {}) as {}",
            s.server, s.version, s.login
        ))
    })
    .await
}

/// Kubernetes clusters reached with a kubeconfig's CA and credentials, with the API
/// server and sign-in each kubeconfig gives now (never the credentials).
#[tauri::command]
pub async fn kube_clusters_list(app: AppHandle) -> Res<Vec<KubeClusterView>> {
    blocking(app, |st| Ok(st.plugins()?.kube_cluster_views()?)).await
}

/// Add or replace a cluster; its kubeconfig must read now (what `rehydra plugins
/// kube-cluster add` does).
#[tauri::command]
pub async fn kube_cluster_add(app: AppHandle, cluster: KubeCluster) -> Res<KubeClusterView> {
    changing(app, Changed::Plugins, move |st| {
        Ok(st.plugins()?.set_kube_cluster(cluster)?)
    })
    .await
}

/// Forget a cluster; returns whether it was configured.
#[tauri::command]
pub async fn kube_cluster_remove(app: AppHandle, name: String) -> Res<bool> {
    changing(app, Changed::Plugins, move |st| {
        Ok(st.plugins()?.remove_kube_cluster(&name)?)
    })
    .await
}

/// Forget an instance; returns whether it was configured.
#[tauri::command]
pub async fn sql_server_remove(app: AppHandle, name: String) -> Res<bool> {
    changing(app, Changed::Plugins, move |st| {
        Ok(st.plugins()?.remove_sql_server(&name)?)
    })
    .await
}

/// Command targets (machines plugins run programs on over SSH).
#[tauri::command]
pub async fn targets_list(app: AppHandle) -> Res<Vec<Target>> {
    blocking(app, |st| Ok(st.plugins()?.targets()?)).await
}

/// Add or replace a command target (checked: name, SSH destination, files); a cluster's
/// nodes are asked for and pinned. Returns the target as kept.
#[tauri::command]
pub async fn target_add(app: AppHandle, target: Target) -> Res<rehydra_api::plugins::TargetKept> {
    changing(app, Changed::Plugins, move |st| {
        Ok(st.plugins()?.set_target(&target)?)
    })
    .await
}

/// Ask a cluster target for its nodes again: gone ones are unpinned, new ones pinned
/// only with `pin_new` (the UI shows their names first).
#[tauri::command]
pub async fn target_refresh(
    app: AppHandle,
    name: String,
    pin_new: bool,
) -> Res<rehydra_api::plugins::TargetKept> {
    changing(app, Changed::Plugins, move |st| {
        Ok(st.plugins()?.refresh_target(&name, pin_new)?)
    })
    .await
}

/// Forget a command target; returns whether it was configured.
#[tauri::command]
pub async fn target_remove(app: AppHandle, name: String) -> Res<bool> {
    changing(app, Changed::Plugins, move |st| {
        Ok(st.plugins()?.remove_target(&name)?)
    })
    .await
}

/// How Rehydra signs in to Azure: the identity in use, its tenant and subscriptions, and
/// why each source failed (what `rehydra azure status` shows).
#[tauri::command]
pub async fn azure_status(app: AppHandle) -> Res<rehydra_api::azure::AzureStatus> {
    blocking(app, |st| Ok(rehydra_api::azure::status(&st.ctx)?)).await
}

/// The Azure sign-in settings (identity, ARM endpoint, extra audiences).
#[tauri::command]
pub async fn azure_settings(app: AppHandle) -> Res<rehydra_api::azure::AzureSettings> {
    blocking(app, |st| Ok(rehydra_api::azure::settings(&st.ctx)?)).await
}

/// Choose the identity jobs sign in with (checked by building it; never a secret: a client
/// secret is named by its file or environment variable).
#[tauri::command]
pub async fn azure_set_identity(
    app: AppHandle,
    identity: rehydra_api::azure::IdentitySetting,
) -> Res<()> {
    blocking(app, move |st| {
        Ok(rehydra_api::azure::set_identity(&st.ctx, &identity)?)
    })
    .await
}
