//! What the app keeps between commands: where local state lives, the open repositories
//! (one of them the one the screens work on), the last discovery per plugin, and
//! cancellation flags of running jobs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rehydra_api::inventory::Discovery;
use rehydra_api::plugins::{PluginSettings, Plugins};
use rehydra_api::{ApiError, Cancel, Code, Context, Session};
use serde::Serialize;

/// An error as the UI receives it.
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(rename = "ApiError")]
pub struct UiError {
    /// The API's stable code (`wrong-password`, `not-a-repository`, …), the same
    /// spelling the CLI's `--json` errors use.
    pub code: Code,
    /// What happened.
    pub message: String,
    /// What the user can do about it; the UI says it in its own words.
    #[ts(optional)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<rehydra_api::Hint>,
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        Self {
            code: e.code,
            message: e.message,
            hint: e.hint,
        }
    }
}

impl UiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError::new(code, message).into()
    }
}

/// Result of a command.
pub type Res<T> = Result<T, UiError>;

/// An open repository.
pub struct Open {
    pub location: String,
    pub session: Arc<Session>,
}

/// An instant-recovery export and whether it still runs.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ExportEntry {
    /// Job id (`cancel_job` stops it).
    pub job: String,
    /// The restore point it serves.
    pub restore_point: String,
    /// What is served where.
    pub export: rehydra_api::wizard::InstantExport,
    /// Still serving.
    pub running: bool,
    /// Why it stopped, when it failed.
    pub error: Option<String>,
}

/// App state (managed by Tauri).
pub struct App {
    pub ctx: Context,
    /// The catalog was named on the command line (`--catalog`): one that cannot be opened
    /// stops the app at start, saying why.
    pub catalog_given: bool,
    plugin_dirs: Vec<PathBuf>,
    /// The open repositories, the one the screens work on first (admins keep a local
    /// and an off-site one open).
    repos: Mutex<Vec<Open>>,
    pub discovered: Mutex<Vec<Discovery>>,
    pub jobs: Mutex<HashMap<String, Arc<Cancel>>>,
    /// Instant-recovery exports started in this session, by job id.
    pub exports: Mutex<Vec<ExportEntry>>,
    /// Passwords of policy copy targets, by location: in memory only, for this session.
    copy_passwords: Mutex<HashMap<String, zeroize::Zeroizing<Vec<u8>>>>,
    /// Policies running in this app now (a second run of one is refused).
    running_policies: Mutex<std::collections::HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl App {
    /// The user's defaults, overridden by `--catalog PATH` and the same variables the CLI
    /// reads (`REHYDRA_CATALOG`, `REHYDRA_CACHE_DIR`, `REHYDRA_PLUGIN_PATH`, and the bandwidth
    /// limits `REHYDRA_LIMIT_UPLOAD` and `REHYDRA_LIMIT_DOWNLOAD` in KiB/s).
    pub fn from_env() -> Self {
        let mut ctx = Context::user_default();
        let kib = |v: &str| {
            std::env::var(v)
                .ok()
                .and_then(|k| k.trim().parse::<u64>().ok())
                .and_then(|k| std::num::NonZeroU64::new(k.saturating_mul(1024)))
        };
        ctx.bandwidth = rehydra_api::Bandwidth {
            upload: kib("REHYDRA_LIMIT_UPLOAD"),
            download: kib("REHYDRA_LIMIT_DOWNLOAD"),
        };
        if let Some(c) = std::env::var_os("REHYDRA_CATALOG") {
            ctx.catalog = Some(c.into());
        }
        // `--catalog PATH` on the command line (a shortcut cannot set a variable: the
        // Windows installer's "Rehydra (service)" opens the machine's service catalog)
        let catalog_given = catalog_argument(std::env::args_os().skip(1));
        if let Some(c) = &catalog_given {
            ctx.catalog = Some(c.clone());
        }
        if let Some(c) = std::env::var_os("REHYDRA_CACHE_DIR") {
            ctx.cache_dir = Some(c.into());
        }
        let plugin_dirs = std::env::var_os("REHYDRA_PLUGIN_PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        Self {
            ctx,
            catalog_given: catalog_given.is_some(),
            plugin_dirs,
            repos: Mutex::default(),
            discovered: Mutex::default(),
            jobs: Mutex::default(),
            copy_passwords: Mutex::default(),
            running_policies: Mutex::default(),
            exports: Mutex::default(),
        }
    }

    /// The repository the screens work on, or an error that tells the user to open one.
    pub fn session(&self) -> Res<Arc<Session>> {
        lock(&self.repos)
            .first()
            .map(|o| o.session.clone())
            .ok_or_else(|| {
                UiError::new(
                    Code::NotARepository,
                    "no repository is open: create or connect one under Repositories",
                )
            })
    }

    /// The open repository at `location`, or an error that tells the user to open it.
    pub fn session_for(&self, location: &str) -> Res<Arc<Session>> {
        lock(&self.repos)
            .iter()
            .find(|o| o.location == location)
            .map(|o| o.session.clone())
            .ok_or_else(|| {
                UiError::new(
                    Code::NotARepository,
                    format!("{location} is not open: connect to it under Repositories first"),
                )
            })
    }

    /// The location and session of the repository the screens work on, read together.
    pub fn current(&self) -> Option<(String, Arc<Session>)> {
        lock(&self.repos)
            .first()
            .map(|o| (o.location.clone(), o.session.clone()))
    }

    /// Keep `o` open, as the one the screens work on (replacing one open at the same
    /// location).
    pub fn set_repo(&self, o: Open) {
        let mut l = lock(&self.repos);
        l.retain(|r| r.location != o.location);
        l.insert(0, o);
    }

    /// Make the open repository at `location` the one the screens work on.
    pub fn switch(&self, location: &str) -> Res<()> {
        let mut l = lock(&self.repos);
        let i = l
            .iter()
            .position(|o| o.location == location)
            .ok_or_else(|| {
                UiError::new(
                    Code::InvalidInput,
                    format!("{location} is not open: connect to it under Repositories"),
                )
            })?;
        let o = l.remove(i);
        l.insert(0, o);
        Ok(())
    }

    /// Close the open repository at `location`: the app lets go of its session (with
    /// the key it unlocked) and of the copy-target password kept for that location; the
    /// next open one, if any, becomes the one the screens work on. Refused while a job or
    /// an instant-recovery export uses it. Whether it was open.
    pub fn close(&self, location: &str) -> Res<bool> {
        let mut l = lock(&self.repos);
        if let Some(o) = l.iter().find(|o| o.location == location)
            && Arc::strong_count(&o.session) > 1
        {
            return Err(UiError::new(
                Code::Locked,
                format!(
                    "a job or an instant-recovery export uses {location}: cancel it, or wait until it ends, then close"
                ),
            ));
        }
        let before = l.len();
        l.retain(|o| o.location != location);
        lock(&self.copy_passwords).remove(location);
        Ok(l.len() != before)
    }

    /// The locations of the open repositories, the one the screens work on first.
    pub fn open_locations(&self) -> Vec<String> {
        lock(&self.repos)
            .iter()
            .map(|o| o.location.clone())
            .collect()
    }

    pub fn plugins(&self) -> Res<Plugins> {
        Ok(Plugins::new(
            &self.ctx,
            // the same caps as the CLI's --plugin-max-memory-mib / --plugin-max-seconds
            PluginSettings::with_defaults(&self.plugin_dirs, false).with_caps(
                env_u64("REHYDRA_PLUGIN_MAX_MEMORY_MIB"),
                env_u64("REHYDRA_PLUGIN_MAX_SECONDS"),
            ),
        )?)
    }

    /// Keep a copy target's password for this session (after it opened the target).
    pub fn unlock_copy_target(&self, location: &str, password: Vec<u8>) {
        lock(&self.copy_passwords).insert(location.to_string(), zeroize::Zeroizing::new(password));
    }

    /// The copy target's password, when it was unlocked in this session.
    pub fn copy_password(&self, location: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        lock(&self.copy_passwords).get(location).cloned()
    }

    /// Run `f` as policy `name`'s run in this app, refused while one runs already (the
    /// policy timer and "Run now" must not start the same backup twice).
    pub fn policy_running<T>(&self, name: &str, f: impl FnOnce() -> Res<T>) -> Res<T> {
        if !lock(&self.running_policies).insert(name.to_string()) {
            return Err(UiError::new(
                Code::Locked,
                format!("policy {name} is running already in this app"),
            ));
        }
        // taken off the list however the run ends (a panic included)
        struct Ran<'a>(&'a Mutex<std::collections::HashSet<String>>, &'a str);
        impl Drop for Ran<'_> {
            fn drop(&mut self) {
                lock(self.0).remove(self.1);
            }
        }
        let _ran = Ran(&self.running_policies, name);
        f()
    }

    /// Copy targets unlocked in this session.
    pub fn unlocked_copy_targets(&self) -> Vec<String> {
        lock(&self.copy_passwords).keys().cloned().collect()
    }

    pub fn remember(&self, found: Discovery) {
        let mut d = lock(&self.discovered);
        d.retain(|x| x.plugin != found.plugin);
        d.push(found);
    }

    pub fn discovered(&self) -> Vec<Discovery> {
        lock(&self.discovered).clone()
    }

    /// Run `f` on the open repository as job `job`: `cancel_job(job)` reaches its
    /// cancellation flag until it returns.
    pub fn job<T>(&self, job: &str, f: impl FnOnce(&Session, &Cancel) -> Res<T>) -> Res<T> {
        self.job_on(self.session()?, job, f)
    }

    /// [`App::job`] on the open repository `s`.
    pub fn job_on<T>(
        &self,
        s: Arc<Session>,
        job: &str,
        f: impl FnOnce(&Session, &Cancel) -> Res<T>,
    ) -> Res<T> {
        let c = Arc::new(Cancel::default());
        lock(&self.jobs).insert(job.to_string(), c.clone());
        let r = f(&s, &c);
        lock(&self.jobs).remove(job);
        r
    }

    /// Record a started export; `cancel` stops it through `cancel_job`.
    pub fn export_started(&self, entry: ExportEntry, cancel: Arc<Cancel>) {
        lock(&self.jobs).insert(entry.job.clone(), cancel);
        let mut l = lock(&self.exports);
        l.retain(|e| e.running);
        l.push(entry);
    }

    /// Record that an export stopped (and why, when it failed).
    pub fn export_ended(&self, job: &str, error: Option<String>) {
        lock(&self.jobs).remove(job);
        for e in lock(&self.exports).iter_mut().filter(|e| e.job == job) {
            e.running = false;
            e.error.clone_from(&error);
        }
    }

    pub fn exports(&self) -> Vec<ExportEntry> {
        lock(&self.exports).clone()
    }

    pub fn cancel(&self, job: &str) -> bool {
        lock(&self.jobs).get(job).map(|c| c.cancel()).is_some()
    }
}

/// The value of `--catalog PATH` (or `--catalog=PATH`) among `args`, the last one given.
fn catalog_argument(mut args: impl Iterator<Item = std::ffi::OsString>) -> Option<PathBuf> {
    let mut found = None;
    while let Some(a) = args.next() {
        if a == "--catalog" {
            if let Some(v) = args.next() {
                found = Some(v.into());
            }
        } else if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--catalog=")) {
            found = Some(v.into());
        }
    }
    found
}

/// A positive number from the environment, if set.
fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::catalog_argument;

    #[test]
    fn the_catalog_argument_in_both_spellings_the_last_one_winning() {
        let args = |a: &[&str]| catalog_argument(a.iter().map(std::ffi::OsString::from));
        assert_eq!(args(&[]), None);
        assert_eq!(args(&["--catalog", "/a.db"]), Some("/a.db".into()));
        assert_eq!(
            args(&["--catalog=/a.db", "x", "--catalog", "C:\\b.db"]),
            Some("C:\\b.db".into())
        );
        assert_eq!(args(&["--catalog"]), None);
        assert_eq!(
            args(&["--catalog", "/a.db", "--catalog"]),
            Some("/a.db".into())
        );
    }
}
