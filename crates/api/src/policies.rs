//! Protection policies: what to back up (a folder, an asset through its plugin, or every
//! asset of a kind the plugin discovers at each run), how often, and which restore points
//! to keep (GFS, per asset). Kept in the catalog. A policy run =
//! back up (tagged `policy:<name>`), then apply its retention to the restore points that
//! carry that tag; data is freed by `prune` as always. `rehydra policy run --due` from a
//! timer (cron, systemd) and the desktop app's "Run now" both call [`run`].
//!
//! A policy may name a copy target: a second repository (another disk, an SMB share,
//! Azure Blob, S3) that every restore point of the policy is copied to after the backup
//! (see [`crate::Session::copy_to`]), with the same retention applied there. A copy that
//! fails leaves the backup in place and is reported; the next run copies whatever the
//! target is still missing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog_sync::with_catalog;
use crate::error::{ApiError, Code, Result};
use crate::notify::{Notify, RunEvent};
use crate::plugins::{Plugins, properties};
use crate::schedule::Schedule;
use crate::{Cancel, Context, KeepPolicy, Progress, RestorePointDto, RestorePointFilter, Session};

/// What a policy protects.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum What {
    /// A folder or file on this machine.
    Folder {
        /// Path.
        path: String,
        /// Exclude patterns (`*.tmp`, `logs/*.log`; see the README).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exclude: Vec<String>,
        /// Do not enter other file systems mounted below it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        one_file_system: bool,
    },
    /// An asset through the plugin that discovered it.
    Plugin {
        /// Plugin id.
        plugin: String,
        /// Asset id.
        asset: String,
        /// Backup options (`name=value`).
        #[serde(default)]
        options: Vec<(String, String)>,
    },
    /// Every asset of one kind that the plugin discovers at each run (every key vault of
    /// the subscriptions, say): new ones are protected from their first run on.
    Discovered {
        /// Plugin id.
        plugin: String,
        /// Asset kind (`vault` …) as discover reports it.
        asset_kind: String,
        /// Discover settings (`name=value`).
        #[serde(default)]
        discover: Vec<(String, String)>,
        /// Backup options (`name=value`), the same for every asset.
        #[serde(default)]
        options: Vec<(String, String)>,
    },
}

/// How many restore points to keep (grandfather-father-son).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Keep {
    /// The newest N.
    #[serde(default)]
    pub last: u32,
    /// One per day for N days.
    #[serde(default)]
    pub daily: u32,
    /// One per week for N weeks.
    #[serde(default)]
    pub weekly: u32,
    /// One per month for N months.
    #[serde(default)]
    pub monthly: u32,
    /// One per year for N years.
    #[serde(default)]
    pub yearly: u32,
}

/// A protection policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct Policy {
    /// Unique name.
    pub name: String,
    /// What to back up.
    pub what: What,
    /// Run when the last successful run is older than this many hours (when `at` is
    /// empty).
    pub every_hours: f64,
    /// Run at these times of day (`HH:MM`, this machine's time zone) instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at: Vec<String>,
    /// …on these days of the week only (`mon` … `sun`); empty = every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// Start only inside this backup window (`HH:MM-HH:MM`, may cross midnight): a run
    /// due outside it waits for it to open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Run when this cron expression says instead (five fields: minute hour
    /// day-of-month month day-of-week, this machine's time zone; `0 2 * * 1-5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Retention.
    pub keep: Keep,
    /// The repository location it backs up into.
    pub repository: String,
    /// Extra tags for its restore points.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A second repository every restore point is copied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_to: Option<CopyTarget>,
    /// Who is told about its runs, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
}

/// A policy's copy target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct CopyTarget {
    /// Repository location (created beforehand with `rehydra init`).
    pub repository: String,
    /// A file holding its password (first line), read at each run. Without it the
    /// password must be given to the run (the app keeps it in memory; the CLI takes
    /// `--copy-password-file` or REHYDRA_COPY_PASSWORD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// What the copy step of a run did.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct CopyReport {
    /// The target repository.
    pub repository: String,
    /// Restore points copied now (ids in the source); earlier copies are not listed.
    pub copied: Vec<String>,
    /// Restore points the retention removed in the target.
    pub forgotten: Vec<String>,
    /// Why the copy failed (the backup itself stands).
    pub error: Option<String>,
}

/// A policy and where it stands.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct PolicyStatus {
    /// The policy.
    pub policy: Policy,
    /// Last successful run.
    pub last_run: Option<DateTime<Utc>>,
    /// When it is due next (now if never run).
    pub next_due: DateTime<Utc>,
    /// Due now.
    pub due: bool,
    /// Its schedule in words (`every 24 h`, `at 02:00 on mon, fri, within 22:00-06:00`,
    /// `cron 0 2 * * 1-5`).
    pub schedule: String,
    /// The next runs as the schedule has them: `next_due`, then the two after it.
    pub upcoming: Vec<DateTime<Utc>>,
    /// Failed runs since the last success.
    pub failures: u32,
    /// After a failure: no attempt before this time (the pause doubles with each failure
    /// in a row, up to six hours).
    pub retry_after: Option<DateTime<Utc>>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct PolicyRun {
    /// The restore points made (one per asset; a policy of discovered assets makes one
    /// for each asset that was backed up).
    pub restore_points: Vec<RestorePointDto>,
    /// Restore points the retention removed (ids).
    pub forgotten: Vec<String>,
    /// Warnings of the backup.
    pub warnings: Vec<String>,
    /// The copy step, when the policy has a copy target.
    pub copy: Option<CopyReport>,
    /// Notifications that could not be sent (the run itself stands).
    pub notify_errors: Vec<String>,
}

impl What {
    /// What it backs up, in a few words: the folder, `plugin:asset`, or `plugin: every
    /// kind`.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Self::Folder { path, .. } => path.clone(),
            Self::Plugin { plugin, asset, .. } => format!("{plugin}:{asset}"),
            Self::Discovered {
                plugin, asset_kind, ..
            } => format!("{plugin}: every {asset_kind}"),
        }
    }
}

impl Policy {
    /// The tag its restore points carry.
    #[must_use]
    pub fn tag(&self) -> String {
        format!("policy:{}", self.name)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(ApiError::new(Code::InvalidInput, m.to_string()));
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return bad("a policy name is letters, digits, '-', '_' or '.'");
        }
        self.schedule().validate()?;
        if self.keep == Keep::default() {
            return bad(
                "a policy keeps something: give at least one of last, daily, weekly, monthly, yearly",
            );
        }
        if self.repository.is_empty() {
            return bad("a policy names the repository it backs up into");
        }
        if let Some(n) = &self.notify {
            n.validate()?;
        }
        if let Some(c) = &self.copy_to {
            if c.repository.is_empty() {
                return bad("the copy target names a repository location");
            }
            if c.repository == self.repository {
                return bad(
                    "the copy target must be another repository than the one backed up into",
                );
            }
        }
        match &self.what {
            What::Folder { path, .. } if path.is_empty() => bad("the policy's folder is empty"),
            What::Folder {
                exclude,
                one_file_system,
                ..
            } => crate::exclude(exclude, *one_file_system).map(|_| ()),
            What::Plugin { plugin, asset, .. } if plugin.is_empty() || asset.is_empty() => {
                bad("a plugin policy names the plugin and the asset")
            }
            What::Discovered {
                plugin, asset_kind, ..
            } if plugin.is_empty() || asset_kind.is_empty() => {
                bad("a policy of discovered assets names the plugin and the asset kind")
            }
            _ => Ok(()),
        }
    }

    /// When it runs.
    #[must_use]
    pub fn schedule(&self) -> Schedule<'_> {
        Schedule {
            every_hours: self.every_hours,
            at: &self.at,
            days: &self.days,
            window: self.window.as_deref(),
            cron: self.cron.as_deref(),
        }
    }

    fn keep_policy(&self) -> KeepPolicy {
        KeepPolicy {
            last: self.keep.last,
            daily: self.keep.daily,
            weekly: self.keep.weekly,
            monthly: self.keep.monthly,
            yearly: self.keep.yearly,
            ..KeepPolicy::default()
        }
    }
}

fn damaged(name: &str, e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        Code::Io,
        format!("policy `{name}` in the catalog is damaged ({e}); save it again"),
    )
}

/// Every policy with its last run and next due time.
///
/// # Errors
/// Catalog failure or a damaged entry.
pub fn list(ctx: &Context, now: DateTime<Utc>) -> Result<Vec<PolicyStatus>> {
    let rows = with_catalog(ctx, |c| async move { c.policies().await })?;
    let time = |name: &str, t: Option<String>| -> Result<Option<DateTime<Utc>>> {
        Ok(t.as_deref()
            .map(DateTime::parse_from_rfc3339)
            .transpose()
            .map_err(|e| damaged(name, &e))?
            .map(|t| t.with_timezone(&Utc)))
    };
    rows.into_iter()
        .map(|row| {
            let name = row.name;
            let policy: Policy = serde_json::from_str(&row.spec).map_err(|e| damaged(&name, &e))?;
            let last_run = time(&name, row.last_run)?;
            let retry_after = time(&name, row.retry_after)?;
            let next_due = policy
                .schedule()
                .next_due(&chrono::Local, last_run, retry_after, now);
            let mut upcoming = vec![next_due];
            upcoming.extend(policy.schedule().upcoming(&chrono::Local, next_due, 2));
            Ok(PolicyStatus {
                upcoming,
                due: next_due <= now,
                schedule: policy.schedule().describe(),
                failures: u32::try_from(row.failures).unwrap_or(u32::MAX),
                retry_after,
                policy,
                last_run,
                next_due,
            })
        })
        .collect()
}

/// One policy and where it stands.
///
/// # Errors
/// No policy of that name, catalog failure.
pub fn status(ctx: &Context, name: &str) -> Result<PolicyStatus> {
    list(ctx, Utc::now())?
        .into_iter()
        .find(|s| s.policy.name == name)
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidInput,
                format!("no policy named `{name}` (rehydra policy list)"),
            )
        })
}

/// Add or replace a policy. A plugin policy's options are checked against the settings
/// the plugin declares for backup, so a mistake is refused now rather than failing every
/// scheduled run (`plugins` is where the plugin is found).
///
/// # Errors
/// Invalid policy or options, plugin not installed, catalog failure.
pub fn save(ctx: &Context, plugins: &Plugins, p: &Policy) -> Result<()> {
    p.validate()?;
    use rehydra_plugin_host::SettingVerb;
    match &p.what {
        What::Folder { .. } => {}
        What::Plugin {
            plugin, options, ..
        } => plugins.check_settings(plugin, SettingVerb::Backup, &properties(options))?,
        What::Discovered {
            plugin,
            discover,
            options,
            ..
        } => {
            plugins.check_settings(plugin, SettingVerb::Discover, &properties(discover))?;
            plugins.check_settings(plugin, SettingVerb::Backup, &properties(options))?;
        }
    }
    let spec = serde_json::to_string(p).map_err(|e| ApiError::new(Code::Io, e.to_string()))?;
    let name = p.name.clone();
    with_catalog(ctx, |c| async move { c.set_policy(&name, &spec).await })
}

/// Remove a policy; returns whether it existed. Its restore points stay.
///
/// # Errors
/// Catalog failure.
pub fn remove(ctx: &Context, name: &str) -> Result<bool> {
    let name = name.to_string();
    with_catalog(ctx, |c| async move { c.remove_policy(&name).await })
}

/// Run a policy now: back up, then apply its retention to its own restore points.
///
/// # Errors
/// Unknown policy, the open repository is not the policy's, backup failure.
///
/// `copy_password` opens the copy target when the policy has one and names no password
/// file.
pub fn run(
    ctx: &Context,
    session: &Session,
    plugins: Option<&Plugins>,
    name: &str,
    copy_password: Option<&[u8]>,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<PolicyRun> {
    let st = status(ctx, name)?;
    let p = st.policy;
    let started = Utc::now();
    let r = run_policy(ctx, session, plugins, &p, copy_password, progress, cancel);
    if let Err(e) = &r
        && e.code != Code::Cancelled
    {
        failed(ctx, &p, st.failures);
    }
    match &r {
        Ok(run) => tracing::info!(
            policy = %p.name,
            restore_points = run.restore_points.len(),
            warnings = run.warnings.len(),
            copy_failed = run.copy.as_ref().is_some_and(|c| c.error.is_some()),
            "policy ran"
        ),
        Err(e) => tracing::error!(policy = %p.name, "policy failed: {}", e.message),
    }
    let Some(n) = &p.notify else { return r };
    let failed = n.send(&RunEvent::of(&p.name, session.location(), started, &r));
    for f in &failed {
        tracing::warn!(policy = %p.name, "notification not sent: {f}");
    }
    match r {
        Ok(mut run) => {
            run.notify_errors = failed;
            Ok(run)
        }
        Err(mut e) if !failed.is_empty() => {
            e.message = format!(
                "{} (and telling people failed: {})",
                e.message,
                failed.join("; ")
            );
            Err(e)
        }
        Err(e) => Err(e),
    }
}

fn run_policy(
    ctx: &Context,
    session: &Session,
    plugins: Option<&Plugins>,
    p: &Policy,
    copy_password: Option<&[u8]>,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<PolicyRun> {
    let name = p.name.as_str();
    if p.repository != session.location() {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "policy `{name}` backs up into {}, but the open repository is {}",
                p.repository,
                session.location()
            ),
        ));
    }
    let mut tags = p.tags.clone();
    tags.push(p.tag());
    let (restore_points, warnings) = match &p.what {
        What::Folder {
            path,
            exclude,
            one_file_system,
        } => {
            let ex = crate::exclude(exclude, *one_file_system)?;
            let out = session.backup_folder(path, tags, ex, progress, cancel)?;
            (vec![out.restore_point], out.warnings)
        }
        What::Plugin {
            plugin,
            asset,
            options,
        } => {
            let out = need(plugins)?.backup(
                session,
                plugin,
                asset,
                &properties(options),
                &tags,
                progress,
                cancel,
            )?;
            (vec![out.restore_point], out.warnings)
        }
        What::Discovered {
            plugin,
            asset_kind,
            discover,
            options,
        } => each_discovered(
            session,
            need(plugins)?,
            (plugin, asset_kind),
            (discover, options),
            &tags,
            progress,
            cancel,
        )?,
    };
    let filter = RestorePointFilter {
        tags: vec![p.tag()],
        ..RestorePointFilter::default()
    };
    let forgotten = session
        .forget(&p.keep_policy(), &filter, false)?
        .into_iter()
        .filter(|d| !d.keep)
        .map(|d| d.id)
        .collect();
    let at = restore_points
        .iter()
        .map(|r| r.time)
        .max()
        .unwrap_or_else(Utc::now)
        .to_rfc3339();
    let n = name.to_string();
    with_catalog(ctx, |c| async move { c.policy_ran(&n, &at).await })?;
    let copy = p
        .copy_to
        .as_ref()
        .map(|t| copy_step(ctx, session, p, t, &filter, copy_password, progress, cancel));
    Ok(PolicyRun {
        restore_points,
        forgotten,
        warnings,
        copy,
        notify_errors: Vec::new(),
    })
}

/// Record a failed run: the failures in a row and the pause before the next attempt, in
/// the catalog, so every runner (the service, the app, a timer) waits alike.
fn failed(ctx: &Context, p: &Policy, before: u32) {
    let n = before.saturating_add(1);
    let until = (Utc::now() + p.schedule().retry_pause(n)).to_rfc3339();
    let name = p.name.clone();
    let _ = with_catalog(ctx, |c| async move {
        c.policy_failed(&name, i64::from(n), &until).await
    });
}

/// A due policy could not even start (its repository cannot be opened: a share offline,
/// credentials expired): recorded as a failed run and told as its policy says, since this
/// is the most common way an unattended backup stops. Returns the notifications that
/// could not be sent.
///
/// # Errors
/// Unknown policy, catalog failure.
pub fn failed_before_start(ctx: &Context, name: &str, error: &ApiError) -> Result<Vec<String>> {
    let st = status(ctx, name)?;
    let p = st.policy;
    failed(ctx, &p, st.failures);
    tracing::error!(policy = %p.name, "policy failed: {}", error.message);
    let Some(n) = &p.notify else {
        return Ok(Vec::new());
    };
    let r: Result<PolicyRun> = Err(ApiError::new(error.code, error.message.clone()));
    let unsent = n.send(&RunEvent::of(&p.name, &p.repository, Utc::now(), &r));
    for f in &unsent {
        tracing::warn!(policy = %p.name, "notification not sent: {f}");
    }
    Ok(unsent)
}

fn need(plugins: Option<&Plugins>) -> Result<&Plugins> {
    plugins.ok_or_else(|| ApiError::new(Code::InvalidInput, "plugins are not available here"))
}

/// Discover, then back up every asset of the kind. One asset that fails is a warning and
/// the others go on; none backed up is an error.
fn each_discovered(
    session: &Session,
    pl: &Plugins,
    (plugin, kind): (&str, &str),
    (discover, options): (&[(String, String)], &[(String, String)]),
    tags: &[String],
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<(Vec<RestorePointDto>, Vec<String>)> {
    let (assets, _log) = pl.discover(plugin, &properties(discover))?;
    let mut ids: Vec<String> = Vec::new();
    for a in assets.into_iter().filter(|a| a.kind == kind) {
        // an asset listed twice is backed up once
        if !ids.contains(&a.id) {
            ids.push(a.id);
        }
    }
    if ids.is_empty() {
        return Err(ApiError::new(
            Code::Missing,
            format!(
                "{plugin} discovered no asset of kind `{kind}` with these settings: nothing to back up"
            ),
        ));
    }
    let (mut points, mut warnings, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for id in &ids {
        match pl.backup(
            session,
            plugin,
            id,
            &properties(options),
            tags,
            progress,
            cancel,
        ) {
            Ok(out) => {
                points.push(out.restore_point);
                warnings.extend(out.warnings.into_iter().map(|w| format!("{id}: {w}")));
            }
            Err(e) if e.code == Code::Cancelled => return Err(e),
            Err(e) => failed.push(format!("{id}: {}", e.message)),
        }
    }
    if points.is_empty() {
        return Err(ApiError::new(
            Code::PluginFailed,
            format!(
                "no asset of kind `{kind}` was backed up: {}",
                failed.join("; ")
            ),
        ));
    }
    warnings.extend(failed.into_iter().map(|f| format!("not backed up: {f}")));
    Ok((points, warnings))
}

/// Copy every restore point of the policy the target lacks, then apply the retention there.
#[allow(clippy::too_many_arguments)]
fn copy_step(
    ctx: &Context,
    session: &Session,
    p: &Policy,
    t: &CopyTarget,
    filter: &RestorePointFilter,
    copy_password: Option<&[u8]>,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> CopyReport {
    let mut report = CopyReport {
        repository: t.repository.clone(),
        copied: Vec::new(),
        forgotten: Vec::new(),
        error: None,
    };
    let r = (|| -> Result<()> {
        let pw = match (&t.password_file, copy_password) {
            (Some(f), _) => {
                let text = std::fs::read_to_string(f).map_err(|e| {
                    ApiError::new(
                        Code::Io,
                        format!("password file {f} of the copy target: {e}"),
                    )
                })?;
                text.lines().next().unwrap_or("").as_bytes().to_vec()
            }
            (None, Some(pw)) => pw.to_vec(),
            (None, None) => {
                return Err(ApiError::new(
                    Code::InvalidInput,
                    format!(
                        "policy `{}` copies to {}, but no password for it was given (a password file in the policy, or the run's copy password)",
                        p.name, t.repository
                    ),
                ));
            }
        };
        let target = crate::open(ctx, &t.repository, &pw)?;
        for c in session.copy_to(&target, &[], filter, progress, cancel)? {
            if !c.already_copied {
                report.copied.push(c.source);
            }
        }
        report.forgotten = target
            .forget(&p.keep_policy(), filter, false)?
            .into_iter()
            .filter(|d| !d.keep)
            .map(|d| d.id)
            .collect();
        Ok(())
    })();
    if let Err(e) = r {
        report.error = Some(format!("copy to {} failed: {}", t.repository, e.message));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_problem() {
        let ok = Policy {
            name: "nightly-data".into(),
            what: What::Folder {
                path: "/srv/data".into(),
                exclude: vec![],
                one_file_system: false,
            },
            every_hours: 24.0,
            at: vec![],
            days: vec![],
            window: None,
            cron: None,
            keep: Keep {
                daily: 7,
                ..Keep::default()
            },
            repository: "/srv/repo".into(),
            tags: vec![],
            copy_to: None,
            notify: None,
        };
        assert!(ok.validate().is_ok());
        let mut p = ok.clone();
        p.keep = Keep::default();
        assert!(
            p.validate()
                .unwrap_err()
                .message
                .contains("keeps something")
        );
        let mut p = ok.clone();
        p.name = "a b".into();
        assert!(p.validate().is_err());
        let mut p = ok.clone();
        p.every_hours = 0.0;
        assert!(p.validate().is_err());
        let mut p = ok;
        p.copy_to = Some(CopyTarget {
            repository: "/srv/repo".into(),
            password_file: None,
        });
        assert!(
            p.validate()
                .unwrap_err()
                .message
                .contains("another repository")
        );
    }
}
