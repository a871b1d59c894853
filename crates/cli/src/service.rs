//! `rehydra service`: the always-on runner of due policies.
//!
//! Every `--interval` seconds it lists the policies of its repository that are due and
//! runs them one after the other through the same API call as `policy run` (so each is
//! recorded in the catalog and tells people as its policy says). A policy that fails is
//! reported and the others go on; the service itself stops only when asked (Ctrl-C,
//! SIGTERM) or when its repository cannot be opened at start. The repository is opened
//! afresh for every round that has work, so what other machines wrote meanwhile (and
//! what a prune removed) is seen.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use chrono::Utc;
use rehydra_api as api;

use crate::args::Cli;
use crate::commands::{cancel_on_ctrl_c, context, open};
use crate::password;

fn say(msg: &str) {
    eprintln!("{} {msg}", Utc::now().format("%Y-%m-%dT%H:%M:%SZ"));
}

pub(crate) fn run(cli: &Cli, interval: u64, status: bool) -> Result<i32> {
    let ctx = context(cli);
    if status {
        match api::service::running(&ctx)? {
            Some(s) if cli.json => crate::output::json(&s)?,
            Some(s) => println!("a service runs (process {}) for {}", s.pid, s.repository),
            None if cli.json => println!("null"),
            None => println!("no service runs for this catalog"),
        }
        return Ok(0);
    }
    if cli.repo.is_empty() {
        bail!(
            "name the repository whose policies the service runs with -r/--repo or REHYDRA_REPOSITORY"
        );
    }
    let _lock = api::service::acquire(&ctx, &cli.repo)?;
    // open once now: a wrong password or a missing repository stops the service at once
    drop(open(cli)?);
    let pw = password::current(cli.password_file.as_deref())?;
    let copy_pw = std::env::var("REHYDRA_COPY_PASSWORD")
        .ok()
        .map(String::into_bytes);
    let plugins = crate::plugins::platform(cli).ok();
    for p in api::policies::list(&ctx, Utc::now())? {
        if p.policy.repository != cli.repo {
            say(&format!(
                "policy {} backs up into {}: not run by this service (start one with -r for it)",
                p.policy.name, p.policy.repository
            ));
        }
    }
    say(&format!(
        "service started for {} (process {}), looking for due policies every {interval} s",
        cli.repo,
        std::process::id()
    ));
    let cancel = cancel_on_ctrl_c();
    let mut backoff = Backoff::default();
    while !cancel.is_cancelled() {
        let started = Instant::now();
        if let Err(e) = round(
            cli,
            &ctx,
            (&pw, copy_pw.as_deref()),
            plugins.as_ref(),
            &mut backoff,
            &cancel,
        ) {
            say(&format!("error: {e:#} (trying again in {interval} s)"));
        }
        while !cancel.is_cancelled() && started.elapsed() < Duration::from_secs(interval) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    say("service stopped");
    Ok(0)
}

/// A failed policy stays due (its last successful run does not move), so it is tried
/// again after a pause that doubles with each failure in a row: its own period at first,
/// then twice that, up to six hours (a nightly policy that fails is not retried every
/// minute, and does not mail someone every minute). A success forgets the failures.
#[derive(Default)]
struct Backoff {
    failed: std::collections::HashMap<String, (u32, Instant)>,
}

impl Backoff {
    fn waiting(&self, name: &str) -> bool {
        self.failed
            .get(name)
            .is_some_and(|(_, until)| Instant::now() < *until)
    }

    fn failed(&mut self, name: &str, every_hours: f64) -> Duration {
        let n = self.failed.get(name).map_or(0, |(n, _)| *n) + 1;
        let period = Duration::from_secs_f64((every_hours * 3600.0).clamp(1.0, 6.0 * 3600.0));
        let pause = (period * 2u32.pow(n.min(8) - 1)).min(Duration::from_secs(6 * 3600));
        self.failed
            .insert(name.to_string(), (n, Instant::now() + pause));
        pause
    }
}

/// One look: run every due policy of the repository.
fn round(
    cli: &Cli,
    ctx: &api::Context,
    (pw, copy_pw): (&[u8], Option<&[u8]>),
    plugins: Option<&api::plugins::Plugins>,
    backoff: &mut Backoff,
    cancel: &api::Cancel,
) -> Result<()> {
    let due: Vec<(String, f64)> = api::policies::list(ctx, Utc::now())?
        .into_iter()
        .filter(|p| p.due && p.policy.repository == cli.repo && !backoff.waiting(&p.policy.name))
        .map(|p| (p.policy.name, p.policy.every_hours))
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    let session = api::open(ctx, &cli.repo, pw)?;
    for (name, every_hours) in due {
        if cancel.is_cancelled() {
            break;
        }
        say(&format!("policy {name}: started"));
        match api::policies::run(
            ctx,
            &session,
            plugins,
            &name,
            copy_pw,
            &api::NoProgress,
            cancel,
        ) {
            Ok(r) => {
                backoff.failed.remove(&name);
                let copy_error = r.copy.as_ref().and_then(|c| c.error.as_deref());
                say(&format!(
                    "policy {name}: {} ({} restore point(s), {} warning(s), retention removed {}){}",
                    if copy_error.is_some() {
                        "backup saved, copy failed"
                    } else if r.warnings.is_empty() {
                        "succeeded"
                    } else {
                        "succeeded with warnings"
                    },
                    r.restore_points.len(),
                    r.warnings.len(),
                    r.forgotten.len(),
                    copy_error.map(|e| format!(": {e}")).unwrap_or_default()
                ));
                for w in &r.warnings {
                    say(&format!("policy {name}: warning: {w}"));
                }
                for e in &r.notify_errors {
                    say(&format!("policy {name}: notification not sent: {e}"));
                }
            }
            Err(e) if e.code == api::Code::Cancelled => say(&format!("policy {name}: cancelled")),
            Err(e) => {
                let pause = backoff.failed(&name, every_hours);
                say(&format!(
                    "policy {name}: failed: {} (tried again in {})",
                    e.message,
                    humantime::format_duration(Duration::from_secs(pause.as_secs()))
                ));
            }
        }
    }
    Ok(())
}
