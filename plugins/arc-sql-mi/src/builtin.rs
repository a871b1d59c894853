//! `mode=built-in`: the instance's own point-in-time restore, from its built-in backups,
//! through a `SqlManagedInstanceRestoreTask` (`tasks.sql.arcdata.microsoft.com/v1`)
//! created in the instance's namespace:
//!
//! ```text
//! spec: { source: {name, database}, restorePoint: <UTC>, destination: {name, database}, dryRun }
//! status: { state: Waiting | Restoring | … | Completed | Failed, message, … }
//! ```
//!
//! The plan creates the task with `dryRun: true` (the product's own check: is the moment
//! within the retention, can the restore run), reads its outcome and deletes it; a target
//! database that exists is a blocker. The restore creates the real task and reads its
//! status every `poll-secs` until `Completed` or `Failed`, at most `wait-minutes`
//! (the task goes on in the cluster after that, and the error names it). The built-in
//! backups restore only to the same instance.

use std::time::Duration;

use rehydra_plugin_sdk::{host, prelude::*};
use serde_json::{Value, json};
use sql_common::tsql;

use crate::kube::{self, TASK_API, hint};
use crate::names::{self, DbRef, server_of, shown};
use rehydra_plugin_sdk::kube as api;
use rehydra_plugin_sdk::rest::{endpoint, text};

/// A task as the plugin asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub name: String,
    pub source: DbRef,
    /// `2026-12-01T14:37:15Z`.
    pub restore_point: String,
    pub destination: String,
    pub dry_run: bool,
}

impl Task {
    /// The resource to create.
    pub fn body(&self) -> Value {
        json!({
            "apiVersion": TASK_API,
            "kind": "SqlManagedInstanceRestoreTask",
            "metadata": {"name": self.name, "namespace": self.source.namespace},
            "spec": {
                "source": {"name": self.source.instance, "database": self.source.database},
                "restorePoint": self.restore_point,
                "destination": {"name": self.source.instance, "database": self.destination},
                "dryRun": self.dry_run,
            }
        })
    }
}

/// A task's status as read (texts that are not plain, short text read as absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub state: String,
    pub message: Option<String>,
    pub earliest: Option<String>,
    pub latest: Option<String>,
}

impl Status {
    fn of(v: &Value) -> Self {
        let s = &v["status"];
        let t = |k: &str, max| text(&s[k], max).map(str::to_string);
        Self {
            state: t("state", 64).unwrap_or_default(),
            message: t("message", 2000),
            earliest: t("earliestRestoreTime", 64),
            latest: t("latestRestoreTime", 64),
        }
    }

    pub fn done(&self) -> bool {
        self.state.eq_ignore_ascii_case("Completed") || self.failed()
    }

    pub fn failed(&self) -> bool {
        self.state.eq_ignore_ascii_case("Failed")
    }

    fn describe(&self) -> String {
        let mut m = shown(&self.state, 64);
        if let Some(msg) = &self.message {
            m.push_str(": ");
            m.push_str(&shown(msg, 1000));
        }
        m
    }
}

/// A task name: `rehydra-<destination's letters>-<seconds>[-dry]`, a Kubernetes name.
pub fn task_name(destination: &str, secs: i64, dry_run: bool) -> String {
    let mut letters = String::new();
    for c in destination.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (letters.is_empty() || letters.ends_with('-'))) && letters.len() < 30 {
            letters.push(c);
        }
    }
    let letters = letters.trim_end_matches('-');
    let sep = if letters.is_empty() { "" } else { "-" };
    format!(
        "rehydra{sep}{letters}-{secs}{}",
        if dry_run { "-dry" } else { "" }
    )
}

/// `2026-12-01T14:37:15Z` (UTC, seconds; the `Z` may be left out, as the app's calendar
/// does: the built-in restore's moments are UTC), checked and written back canonically.
///
/// # Errors
/// `invalid-input` naming the setting.
pub fn utc_moment(s: &str) -> Result<String> {
    let ms = tsql::parse_time(s.strip_suffix('Z').unwrap_or(s)).ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidInput,
            format!(
                "stop-at `{}` is not a UTC moment; write it as 2026-12-01T14:37:15Z",
                shown(s, 60)
            ),
        )
    })?;
    Ok(rehydra_plugin_sdk::time::rfc3339(ms.div_euclid(1000)))
}

/// The shortest wait between two reads of a task's status, so that no setting turns the
/// wait into a stream of requests to the API server (the unit tests poll without waiting).
const MIN_POLL_SECS: u64 = if cfg!(test) { 0 } else { 2 };

/// How often and how long to read a task's status.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub poll: Duration,
    pub polls: u64,
}

impl Wait {
    /// From `poll-secs` (default 10, 2 to 600) and `wait-minutes` (default 240).
    ///
    /// # Errors
    /// Values that are not whole numbers in range.
    pub fn from(o: &[Property]) -> Result<Self> {
        let num = |k: &str, d: u64, max: u64| -> Result<u64> {
            match setting(o, k).filter(|v| !v.is_empty()) {
                None => Ok(d),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    // (`checked_sub`: at least the minimum, which is 0 in the unit tests)
                    .filter(|n| {
                        *n <= max && (k != "poll-secs" || n.checked_sub(MIN_POLL_SECS).is_some())
                    })
                    .ok_or_else(|| {
                        Error::new(
                            ErrorCode::InvalidInput,
                            format!(
                                "{k} `{}` is not a whole number up to {max} (poll-secs at least 2)",
                                shown(v, 20)
                            ),
                        )
                    }),
            }
        };
        let poll = num("poll-secs", 10, 600)?;
        let minutes = num("wait-minutes", 240, 7 * 24 * 60)?.max(1);
        Ok(Self {
            poll: Duration::from_secs(poll),
            polls: (minutes * 60 / poll.max(1)).max(1),
        })
    }
}

/// Create `task` and read its status until it is done or the wait is over.
///
/// # Errors
/// Creation refused, a read failing, cancel, or still running after the wait.
pub fn run(base: &str, task: &Task, wait: Wait) -> Result<Status> {
    let ns = &task.source.namespace;
    let what = format!("creating restore task {ns}/{}", task.name);
    api::create(&kube::tasks_url(base, ns, None), &task.body(), &what, hint)?;
    let url = kube::tasks_url(base, ns, Some(&task.name));
    let what = format!("reading restore task {ns}/{}", task.name);
    let mut last = String::new();
    for n in 0..wait.polls {
        if n > 0 {
            if host::cancelled() {
                return Err(Error::new(
                    ErrorCode::Cancelled,
                    format!(
                        "cancelled; restore task {ns}/{} goes on in the cluster (kubectl delete sqlmirestoretask -n {ns} {})",
                        task.name, task.name
                    ),
                ));
            }
            std::thread::sleep(wait.poll);
        }
        let Some(v) = api::get(&url, &what, hint)? else {
            return Err(Error::new(
                ErrorCode::Failed,
                format!(
                    "restore task {ns}/{} is gone: someone deleted it",
                    task.name
                ),
            ));
        };
        let status = Status::of(&v);
        if status.state != last {
            host::progress(
                n,
                wait.polls,
                &format!("restore task {}: {}", task.name, status.describe()),
            );
            last.clone_from(&status.state);
        }
        if status.done() {
            return Ok(status);
        }
    }
    Err(Error::new(
        ErrorCode::Unavailable,
        format!(
            "restore task {ns}/{} is still {} after the wait (wait-minutes); it goes on in the cluster: kubectl get sqlmirestoretask -n {ns} {}",
            task.name,
            if last.is_empty() {
                "without a state"
            } else {
                &last
            },
            task.name
        ),
    ))
}

/// A checked built-in restore.
pub struct Planned {
    pub plan: RestorePlan,
    pub base: String,
    pub task: Task,
    pub wait: Wait,
}

/// Plan a built-in restore of the database of the point in hand.
///
/// # Errors
/// Malformed settings; the dry run's own failure is a blocker, not an error.
pub fn plan(req: &RestoreRequest) -> Result<Planned> {
    let o = &req.options;
    let source = names::parse_db(&req.restore_point.asset)?;
    let base = endpoint(
        "kube",
        require(
            o,
            "kube",
            "the Kubernetes API server URL, e.g. https://10.0.0.5:6443",
        )?,
    )?;
    let moment = utc_moment(require(
        o,
        "stop-at",
        "the UTC moment to restore to, within the instance's retention, e.g. 2026-12-01T14:37:15Z",
    )?)?;
    let destination =
        names::database("database", setting_or(o, "database", &source.database))?.to_string();
    let wait = Wait::from(o)?;
    let secs = rehydra_plugin_sdk::time::now();
    let mut task = Task {
        name: task_name(&destination, secs, true),
        source: source.clone(),
        restore_point: moment.clone(),
        destination: destination.clone(),
        dry_run: true,
    };
    let mut p = empty_plan();
    if destination.eq_ignore_ascii_case(&source.database) || tsql::is_system_database(&destination)
    {
        p.blockers.push(format!(
            "the instance restores only to a new database: name one other than `{}` and the system databases (database=…)",
            shown(&destination, 128)
        ));
    }
    let servers = names::servers(setting_or(o, "servers", ""))?;
    match server_of(&servers, &source.instance_key()) {
        Some(server) => match tsql::database(server, &destination) {
            Ok(Some(d)) => p.blockers.push(format!(
                "database `{}` exists on {} ({}): the instance restores only to a new database; name another (database=…) or drop it first",
                shown(&destination, 128),
                source.instance_key(),
                shown(&d.state, 40)
            )),
            Ok(None) => {}
            Err(e) => p.blockers.push(format!("whether `{}` exists could not be checked: {}", shown(&destination, 128), e.message)),
        },
        None => p.blockers.push(format!(
            "no servers= entry for {}: whether `{}` exists cannot be checked; give servers=<namespace>/<instance>=<endpoint>",
            source.instance_key(),
            shown(&destination, 128)
        )),
    }
    // a dry run answers in minutes: it gets ten at most, whatever wait-minutes says
    let dry_wait = Wait {
        poll: wait.poll,
        polls: wait.polls.min((600 / wait.poll.as_secs().max(1)).max(1)),
    };
    let dry = run(&base, &task, dry_wait);
    let ns = &source.namespace;
    if let Err(e) = api::delete(
        &kube::tasks_url(&base, ns, Some(&task.name)),
        "removing the dry-run task",
        hint,
    ) {
        p.warnings.push(format!(
            "the dry-run task {ns}/{} stays: {}",
            task.name, e.message
        ));
    }
    match dry {
        Ok(s) if s.failed() => p.blockers.push(format!(
            "the instance's dry run refuses the restore: {}",
            s.describe()
        )),
        Ok(s) => {
            let window = match (&s.earliest, &s.latest) {
                (Some(e), Some(l)) => format!(
                    "; the built-in backups reach from {} to {}",
                    shown(e, 64),
                    shown(l, 64)
                ),
                _ => String::new(),
            };
            p.steps.push(Step::new(
                "dry-run",
                "the instance's dry run",
                format!("{}{window}", s.describe()),
            ));
            let at = |t: Option<&str>| {
                t.and_then(|t| t.strip_suffix('Z'))
                    .and_then(tsql::parse_time)
            };
            if let (Some(e), Some(l), Some(w)) = (
                at(s.earliest.as_deref()),
                at(s.latest.as_deref()),
                at(Some(&moment)),
            ) && !(e..=l).contains(&w)
            {
                p.blockers.push(format!(
                    "{moment} is outside the built-in backups' window{window}"
                ));
            }
        }
        Err(e) => p
            .blockers
            .push(format!("the dry run could not finish: {}", e.message)),
    }
    task.dry_run = false;
    task.name = task_name(&destination, secs, false);
    p.steps.push(Step::new(
        "task",
        "the restore task that will be created",
        serde_json::to_string_pretty(&task.body()).unwrap_or_default(),
    ));
    p.steps.push(Step::new(
        "moment",
        "restored to",
        format!(
            "{moment} (UTC) from the built-in backups of {}, as database `{}` of the same instance",
            source.instance_key(),
            shown(&destination, 128)
        ),
    ));
    Ok(Planned {
        plan: p,
        base,
        task,
        wait,
    })
}

/// Run a built-in restore as planned.
///
/// # Errors
/// A blocker, the task failing (with its message), or the wait running out.
pub fn restore(req: &RestoreRequest) -> Result<RestoreReport> {
    let planned = plan(req)?;
    planned.plan.go_ahead()?;
    let t = &planned.task;
    let status = run(&planned.base, t, planned.wait)?;
    if status.failed() {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "restore task {}/{} failed: {}",
                t.source.namespace,
                t.name,
                status.describe()
            ),
        ));
    }
    host::info(&format!(
        "database `{}` restored on {} as of {} by task {}",
        shown(&t.destination, 128),
        t.source.instance_key(),
        t.restore_point,
        t.name
    ));
    let mut report = RestoreReport::new(0);
    report.warnings = planned.plan.warnings;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_are_kubernetes_names() {
        assert_eq!(
            task_name("Sales Copy", 1_700_000_000, true),
            "rehydra-sales-copy-1700000000-dry"
        );
        assert_eq!(task_name("$(rm)", 1, false), "rehydra-rm-1");
        assert_eq!(task_name("", 1, false), "rehydra-1");
        let long = task_name(&"x".repeat(200), i64::MAX, true);
        assert!(names::is_label(&long), "{long}");
        assert!(names::is_label(&task_name("ÄÖ--..//", 5, false)));
    }

    #[test]
    fn moments_are_utc() {
        // the app's calendar gives no `Z`: the moment is UTC either way
        for ok in [
            "2026-12-01T14:37:15Z",
            "2026-12-01T14:37:15",
            "2026-12-01T14:37:15.400",
        ] {
            assert_eq!(utc_moment(ok).unwrap(), "2026-12-01T14:37:15Z", "{ok}");
        }
        for bad in [
            "2026-12-01T14:37:15+02:00",
            "yesterday",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(utc_moment(bad).is_err(), "{bad}");
        }
    }
}
