//! `rehydra service`: the always-on runner of due policies.
//!
//! Every `--interval` seconds it lists the policies of its repository that are due and
//! runs them one after the other through the same API call as `policy run` (so each is
//! recorded in the catalog and tells people as its policy says). A policy that fails is
//! reported and the others go on; the service itself stops only when asked (Ctrl-C,
//! SIGTERM, the Windows service control manager) or when its settings cannot work (a
//! wrong password, a newer format); a repository not reachable at start is tried again
//! every interval. The repository is opened
//! afresh for every round that has work, so what other machines wrote meanwhile (and
//! what a prune removed) is seen.

#[cfg(windows)]
mod windows;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use chrono::Utc;
use rehydra_api as api;
use rehydra_api::service::{operators, requests};

use crate::args::Cli;
use crate::commands::{cancel_on_ctrl_c, context};
use crate::password;

/// How the service runs, on a console or as `service install` registers it.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// How often to look for due policies, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
    /// Serve Prometheus metrics at http://ADDRESS/metrics (jobs by state, bytes, last
    /// success and failures per policy, restore points per repository). Off unless
    /// given; without a value 127.0.0.1:9464. No authentication: keep it on loopback
    /// or a trusted network.
    #[arg(long, value_name = "ADDRESS", num_args = 0..=1, default_missing_value = "127.0.0.1:9464")]
    pub metrics: Option<String>,
    /// Let the members of GROUP, who cannot open the service's catalog, operate it with
    /// `rehydra operator` and the app: see its policies and their results, run one now,
    /// cancel such a run; nothing else (no settings, restores or files). Through a local
    /// socket only that group, administrators and the service's account open
    /// (REHYDRA_SERVICE_SOCKET, else /run/rehydra/operators.sock; on Windows the pipe
    /// \\.\pipe\rehydra-operators, e.g. --operators "Backup Operators"). Off unless
    /// given.
    #[arg(long, value_name = "GROUP", env = "REHYDRA_SERVICE_OPERATORS")]
    pub operators: Option<String>,
}

/// `service install`, `service uninstall` and `service cancel`.
#[derive(clap::Subcommand, Debug)]
pub enum ServiceAction {
    /// Windows: register the service `Rehydra` (run as LocalSystem, started at boot) for
    /// the repository given with -r (an absolute path or a URL), the password file given
    /// with --password-file and the machine's catalog
    /// %ProgramData%\Rehydra\service\catalog.db (a folder install lets only SYSTEM and
    /// Administrators open; add the service's policies there with `rehydra --catalog
    /// %ProgramData%\Rehydra\service\catalog.db policy add …`), check that the password
    /// opens the repository, and start it. Run it as an administrator. Keep the password
    /// file in that folder. On Linux the
    /// service is the systemd unit instead (packaging/systemd/rehydra.service).
    Install {
        #[command(flatten)]
        run: RunArgs,
        /// Register only; it starts at the next boot or with `net start Rehydra`.
        #[arg(long)]
        no_start: bool,
    },
    /// Windows: stop the service `Rehydra` (the job in progress is cancelled, nothing
    /// half-written is committed) and remove it. The catalog, its logs and the
    /// repository stay. Saying so, and succeeding, when none is installed.
    Uninstall,
    /// Cancel a run handed to the service (`policy run NAME --service`, the app's "Run
    /// now"): one still waiting never starts, a running one is stopped within a second or
    /// two (nothing half-written is committed). `service --status` lists them.
    Cancel {
        /// The request's number.
        id: i64,
    },
}

/// A line on standard error (the journal, under systemd), in the JSON log and, from the
/// Windows service, in the Event Log.
pub(crate) fn say(msg: &str) {
    tell(tracing::Level::INFO, msg);
}

/// [`say`] at a level: a failure is an error, what needs a look is a warning.
fn tell(level: tracing::Level, msg: &str) {
    eprintln!("{} {msg}", Utc::now().format("%Y-%m-%dT%H:%M:%SZ"));
    match level {
        tracing::Level::ERROR => tracing::error!(target: "rehydra::service", "{msg}"),
        tracing::Level::WARN => tracing::warn!(target: "rehydra::service", "{msg}"),
        _ => tracing::info!(target: "rehydra::service", "{msg}"),
    }
}

pub(crate) fn run(
    cli: &Cli,
    action: Option<&ServiceAction>,
    run: &RunArgs,
    status: bool,
    windows_service: bool,
) -> Result<i32> {
    match action {
        Some(ServiceAction::Install { run, no_start }) => return install(cli, run, *no_start),
        Some(ServiceAction::Uninstall) => return uninstall(),
        Some(ServiceAction::Cancel { id }) => return cancel_request(cli, *id),
        None => {}
    }
    if status {
        return show_status(cli);
    }
    if windows_service {
        return dispatch();
    }
    serve(cli, run, &cancel_on_ctrl_c(), &|| {})
}

#[cfg(windows)]
pub(crate) use windows::event_log;
#[cfg(windows)]
use windows::{dispatch, install, uninstall};

#[cfg(not(windows))]
const NOT_WINDOWS: &str = "this registers a Windows service; on Linux the service is the systemd unit rehydra.service (the .deb installs it; without it, packaging/systemd/rehydra.service): fill in /etc/rehydra/env as the unit says, then `systemctl enable --now rehydra`";

#[cfg(not(windows))]
fn install(_: &Cli, _: &RunArgs, _: bool) -> Result<i32> {
    bail!("{NOT_WINDOWS}")
}

#[cfg(not(windows))]
fn uninstall() -> Result<i32> {
    bail!("{NOT_WINDOWS}")
}

#[cfg(not(windows))]
fn dispatch() -> Result<i32> {
    bail!(
        "--windows-service is for the Windows service control manager; run `rehydra service` here"
    )
}

fn show_status(cli: &Cli) -> Result<i32> {
    let ctx = context(cli);
    let service = api::service::running(&ctx)?;
    let asked = requests::list(&ctx, 10)?;
    if cli.json {
        crate::output::json(&serde_json::json!({ "service": service, "requests": asked }))?;
        return Ok(0);
    }
    match service {
        Some(s) => println!("a service runs (process {}) for {}", s.pid, s.repository),
        None => println!("no service runs for this catalog"),
    }
    if !asked.is_empty() {
        println!("runs handed to the service, newest first:");
    }
    for r in &asked {
        println!("{}", request_line(r));
    }
    #[cfg(windows)]
    if !cli.json {
        println!("{}", windows::registered());
    }
    Ok(0)
}

/// A run handed to the service, on one line: its number, when, which policy, who asked
/// and how it stands.
pub(crate) fn request_line(r: &requests::ServiceRequest) -> String {
    let how = match r.state {
        requests::RequestState::Waiting => "waiting".to_string(),
        requests::RequestState::Running | requests::RequestState::Stopping => format!(
            "{}: {}",
            r.state,
            r.progress.as_deref().unwrap_or("starting")
        ),
        // its message starts with how it went
        requests::RequestState::Succeeded => r.message.clone().unwrap_or_default(),
        _ => format!("{}: {}", r.state, r.message.as_deref().unwrap_or("")),
    };
    format!(
        "  {:>4}  {}  policy {}, asked by {}  {how}",
        r.id, r.asked, r.policy, r.asked_by
    )
}

/// What cancelling request `id` did, on one line.
pub(crate) fn cancelled(id: i64, r: &requests::ServiceRequest) -> String {
    let how = match r.state {
        requests::RequestState::Cancelled if r.started.is_none() => "cancelled before it started",
        requests::RequestState::Stopping => {
            "the service stops it within a second or two (nothing half-written is committed)"
        }
        _ => "already ended; nothing to cancel",
    };
    format!("request {id} (policy {}): {how}", r.policy)
}

fn cancel_request(cli: &Cli, id: i64) -> Result<i32> {
    let r = requests::cancel(&context(cli), id)?;
    if cli.json {
        crate::output::json(&r)?;
    } else {
        println!("{}", cancelled(id, &r));
    }
    Ok(0)
}

/// Open the repository once (the password read once: a password command runs once) and
/// run its due policies every `--interval` seconds until `cancel`. `ready` is called once
/// the service holds its lock and has its password: what fails before that (bad
/// settings, another service on the catalog) ends it.
pub(crate) fn serve(
    cli: &Cli,
    args: &RunArgs,
    cancel: &api::Cancel,
    ready: &dyn Fn(),
) -> Result<i32> {
    let ctx = context(cli);
    if cli.repo.is_empty() {
        bail!(
            "name the repository whose policies the service runs with -r/--repo or REHYDRA_REPOSITORY"
        );
    }
    let _lock = api::service::acquire(&ctx, &cli.repo)?;
    // opened with the lock held (a second service on the catalog never reaches it), and
    // before the password, so a wrong setting (no such group, something else at the
    // socket's path) stops the start; a door taken by someone else does not stop the
    // backups: it is tried again every round
    let mut door = None;
    // (only at start: later, whatever keeps the door shut is logged and tried again)
    let mut knock = |start: bool| -> Result<()> {
        if let (None, Some(group)) = (&door, &args.operators) {
            match open_door(group, &ctx, &cli.repo) {
                Ok(d) => door = Some(d),
                Err(e) if start && e.code == api::Code::InvalidInput => return Err(e.into()),
                Err(e) => tell(
                    tracing::Level::ERROR,
                    &format!(
                        "the operators' door: {} (tried again every round; backups go on)",
                        e.message
                    ),
                ),
            }
        }
        Ok(())
    };
    knock(true)?;
    // what a service before this one was running when it ended (killed, power lost) is
    // failed now, not after the repository answers
    match requests::abandon(&ctx) {
        Ok(0) => {}
        Ok(n) => tell(
            tracing::Level::WARN,
            &format!(
                "{n} request(s) a service before this one left running were failed (ask again)"
            ),
        ),
        Err(e) => tell(
            tracing::Level::WARN,
            &format!("service requests: {}", e.message),
        ),
    }
    let pw = password::current(
        cli.password_file.as_deref(),
        cli.password_command.as_deref(),
        &cli.repo,
    )?;
    ready();
    let interval = args.interval;
    // a wrong password, a newer format or a damaged repository stops the service at once
    // (nothing mends them);
    // a repository not reachable yet (a share or a store at boot) is tried again
    loop {
        match api::backend_for(&ctx, &cli.repo).and_then(|_| api::open(&ctx, &cli.repo, &pw)) {
            Ok(session) => break drop(session),
            Err(e)
                if matches!(
                    e.code,
                    api::Code::WrongPassword
                        | api::Code::UnsupportedVersion
                        | api::Code::InvalidInput
                        | api::Code::Corrupt
                ) =>
            {
                return Err(e.into());
            }
            Err(e) => {
                tell(
                    tracing::Level::ERROR,
                    &format!("{}: {} (trying again in {interval} s)", cli.repo, e.message),
                );
                if !pause(interval, Instant::now(), cancel, &|| false) {
                    say("service stopped");
                    return Ok(0);
                }
            }
        }
    }
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
    if let Some(addr) = &args.metrics {
        serve_metrics(addr, ctx.clone())?;
        say(&format!("metrics at http://{addr}/metrics"));
    }
    say(&format!(
        "service started for {} (process {}), looking for due policies every {interval} s",
        cli.repo,
        std::process::id()
    ));
    let means = Means {
        pw: &pw,
        copy_pw: copy_pw.as_deref(),
        plugins: plugins.as_ref(),
    };
    let wake = || requests::waits(&ctx).unwrap_or(false);
    loop {
        let started = Instant::now();
        knock(false)?;
        if let Err(e) = round(cli, &ctx, &means, cancel) {
            tell(
                tracing::Level::ERROR,
                &format!("error: {e:#} (trying again in {interval} s)"),
            );
        }
        if !pause(interval, started, cancel, &wake) {
            break;
        }
    }
    say("service stopped");
    Ok(0)
}

/// The operators' door, answering from this service's catalog for its repository.
fn open_door(group: &str, ctx: &api::Context, repository: &str) -> api::Result<operators::Door> {
    let mut door = operators::Door::open(group)?;
    let (ctx, repository) = (ctx.clone(), repository.to_string());
    door.serve(move |ask, asker| operators::answer(&ctx, &repository, ask, asker));
    say(&format!(
        "operators (the members of {group}) reach the service at {}",
        door.path().display()
    ));
    Ok(door)
}

/// Wait until `interval` seconds after `started`, or less when a request for the service
/// waits (`wake`, looked at every second); `false` when cancelled meanwhile.
fn pause(interval: u64, started: Instant, cancel: &api::Cancel, wake: &dyn Fn() -> bool) -> bool {
    let mut looked = Instant::now();
    while !cancel.is_cancelled() && started.elapsed() < Duration::from_secs(interval) {
        std::thread::sleep(Duration::from_millis(200));
        if looked.elapsed() >= Duration::from_secs(1) {
            looked = Instant::now();
            if wake() {
                break;
            }
        }
    }
    !cancel.is_cancelled()
}

/// What one round needs besides the catalog: the repository's passwords, the plugins.
struct Means<'a> {
    pw: &'a [u8],
    copy_pw: Option<&'a [u8]>,
    plugins: Option<&'a api::plugins::Plugins>,
}

/// One look: run what people handed to the service (oldest first, looked at again after
/// every job) and every due policy of the repository.
fn round(cli: &Cli, ctx: &api::Context, means: &Means, cancel: &api::Cancel) -> Result<()> {
    let due = |tried: &[String]| -> Result<Option<String>> {
        Ok(due_here(cli, ctx)?.into_iter().find(|n| !tried.contains(n)))
    };
    if due(&[])?.is_none() && !requests::waits(ctx)? {
        return Ok(());
    }
    let session = match api::open(ctx, &cli.repo, means.pw) {
        Ok(s) => s,
        Err(e) => {
            // every due policy failed: each is recorded and told as its policy says
            for name in due_here(cli, ctx)? {
                tell(
                    tracing::Level::ERROR,
                    &format!("policy {name}: failed: {}", e.message),
                );
                for u in api::policies::failed_before_start(ctx, &name, &e)? {
                    tell(
                        tracing::Level::WARN,
                        &format!("policy {name}: notification not sent: {u}"),
                    );
                }
            }
            while let Some(r) = requests::take(ctx)? {
                conclude(
                    ctx,
                    r.id,
                    requests::RequestState::Failed,
                    &format!("{}: {}", cli.repo, e.message),
                );
            }
            return Err(e.into());
        }
    };
    let mut tried = Vec::new();
    while !cancel.is_cancelled() {
        if let Some(r) = requests::take(ctx)? {
            requested(cli, ctx, &session, means, &r, cancel);
            // run now: not run again because it is due (a cancelled run stays due)
            tried.push(r.policy);
        } else if let Some(name) = due(&tried)? {
            run_one(ctx, &session, means, &name, &api::NoProgress, cancel);
            tried.push(name);
        } else {
            break;
        }
    }
    Ok(())
}

/// The names of the service's repository's due policies (a policy that failed is not due
/// until its pause is over, kept in the catalog).
fn due_here(cli: &Cli, ctx: &api::Context) -> Result<Vec<String>> {
    Ok(api::policies::list(ctx, Utc::now())?
        .into_iter()
        .filter(|p| p.due && p.policy.repository == cli.repo)
        .map(|p| p.policy.name)
        .collect())
}

/// Run a request: its progress written every second, stopped when it is cancelled (or
/// the service stops), its outcome written back.
fn requested(
    cli: &Cli,
    ctx: &api::Context,
    session: &api::Session,
    means: &Means,
    r: &requests::ServiceRequest,
    cancel: &api::Cancel,
) {
    say(&format!(
        "request {}: policy {}, asked by {}",
        r.id, r.policy, r.asked_by
    ));
    let job = api::Cancel::default();
    let line = requests::ProgressLine::default();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (state, message) = std::thread::scope(|s| {
        s.spawn(|| watch(ctx, r.id, &line, &done, [cancel, &job]));
        // the watcher ends with the run, also when the run panics (the scope waits for it)
        let _ended = Ended(&done);
        match api::policies::status(ctx, &r.policy) {
            Ok(p) if p.policy.repository != cli.repo => (
                requests::RequestState::Failed,
                format!(
                    "policy {} now backs up into {}, not this service's repository",
                    r.policy, p.policy.repository
                ),
            ),
            Ok(_) => run_one(ctx, session, means, &r.policy, &line, &job),
            Err(e) => (requests::RequestState::Failed, e.message),
        }
    });
    // the service stopping cancels the job, but nobody cancelled the request
    let (state, message) = if state == requests::RequestState::Cancelled && cancel.is_cancelled() {
        (
            requests::RequestState::Failed,
            "the service was stopped while it ran (nothing half-written was kept): ask again"
                .to_string(),
        )
    } else {
        (state, message)
    };
    conclude(ctx, r.id, state, &message);
}

/// Sets its flag when dropped.
struct Ended<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// While a request runs (until `done`): once a second, write its progress line and stop
/// the job (`cancels[1]`) when the request is cancelled or the service stops
/// (`cancels[0]`).
fn watch(
    ctx: &api::Context,
    id: i64,
    line: &requests::ProgressLine,
    done: &std::sync::atomic::AtomicBool,
    [service, job]: [&api::Cancel; 2],
) {
    let mut written = String::new();
    let mut looked = Instant::now();
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        if service.is_cancelled() {
            job.cancel();
        }
        if looked.elapsed() < Duration::from_secs(1) {
            continue;
        }
        looked = Instant::now();
        let now = line.line();
        if now != written && requests::report(ctx, id, &now).is_ok() {
            written = now;
        }
        if let Ok(Some(q)) = requests::get(ctx, id)
            && q.state == requests::RequestState::Stopping
        {
            job.cancel();
        }
    }
}

/// Write how a request ended, trying three times (the catalog may be busy for a moment);
/// what cannot be written is logged (the next service start fails the request).
fn conclude(ctx: &api::Context, id: i64, state: requests::RequestState, message: &str) {
    let mut tries = 0;
    while let Err(e) = requests::end(ctx, id, state, message) {
        tries += 1;
        if tries == 3 {
            tell(
                tracing::Level::ERROR,
                &format!(
                    "request {id}: its outcome ({state}: {message}) could not be written: {}",
                    e.message
                ),
            );
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Run one policy and say how it went; the outcome as a request's state and message.
fn run_one(
    ctx: &api::Context,
    session: &api::Session,
    means: &Means,
    name: &str,
    progress: &dyn api::Progress,
    cancel: &api::Cancel,
) -> (requests::RequestState, String) {
    use requests::RequestState as S;
    say(&format!("policy {name}: started"));
    match api::policies::run(
        ctx,
        session,
        means.plugins,
        name,
        means.copy_pw,
        progress,
        cancel,
    ) {
        Ok(r) => {
            let copy_error = r.copy.as_ref().and_then(|c| c.error.as_deref());
            let level = if copy_error.is_some() {
                tracing::Level::ERROR
            } else if r.warnings.is_empty() {
                tracing::Level::INFO
            } else {
                tracing::Level::WARN
            };
            let summary = format!(
                "{} ({} restore point(s), {} warning(s), retention removed {}){}",
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
            );
            tell(level, &format!("policy {name}: {summary}"));
            for w in &r.warnings {
                tell(
                    tracing::Level::WARN,
                    &format!("policy {name}: warning: {w}"),
                );
            }
            for e in &r.notify_errors {
                tell(
                    tracing::Level::WARN,
                    &format!("policy {name}: notification not sent: {e}"),
                );
            }
            let state = if copy_error.is_some() {
                S::Failed
            } else {
                S::Succeeded
            };
            (state, summary)
        }
        Err(e) if e.code == api::Code::Cancelled => {
            say(&format!("policy {name}: cancelled"));
            (
                S::Cancelled,
                "cancelled (nothing half-written was kept)".into(),
            )
        }
        Err(e) => {
            let next = api::policies::list(ctx, Utc::now())
                .ok()
                .and_then(|l| l.into_iter().find(|p| p.policy.name == name))
                .and_then(|p| p.retry_after);
            let message = format!(
                "{}{}",
                e.message,
                next.map(|t| format!(" (next attempt after {})", t.format("%Y-%m-%dT%H:%M:%SZ")))
                    .unwrap_or_default()
            );
            tell(
                tracing::Level::ERROR,
                &format!("policy {name}: failed: {message}"),
            );
            (S::Failed, message)
        }
    }
}

/// The metrics endpoint on a thread of its own: one connection at a time, each given
/// five seconds to send its request line and take the answer, so an idle or slow client
/// costs at most that and never a thread. `GET /metrics` renders the catalog's totals;
/// anything else is 404.
fn serve_metrics(addr: &str, ctx: api::Context) -> Result<()> {
    use std::io::{BufRead as _, Write as _};
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        anyhow::anyhow!("metrics endpoint on {addr}: {e} (give another --metrics ADDRESS)")
    })?;
    if !listener.local_addr()?.ip().is_loopback() {
        say(&format!(
            "warning: metrics on {addr} are reachable from the network, with no authentication"
        ));
    }
    let started = Utc::now();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let limit = Some(Duration::from_secs(5));
            if conn.set_read_timeout(limit).is_err() || conn.set_write_timeout(limit).is_err() {
                continue;
            }
            let mut line = String::new();
            let mut reader = std::io::BufReader::new(std::io::Read::take(&conn, 8192));
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // the rest of the request head, unread, is dropped with the connection
            let (status, body) = match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["GET", "/metrics", _] => match api::metrics::render(&ctx, started) {
                    Ok(b) => ("200 OK", b),
                    Err(e) => ("500 Internal Server Error", format!("{}\n", e.message)),
                },
                _ => (
                    "404 Not Found",
                    "only GET /metrics is served here\n".to_string(),
                ),
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(())
}
