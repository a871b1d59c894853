//! Rendering: progress bars on a terminal or JSON status lines, tables, JSON.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rehydra_api::Progress;
use serde::Serialize;

use crate::args::{Cli, ProgressArg};

/// Whether every line on stdout is a JSON object (`--progress json`).
static JSON_LINES: AtomicBool = AtomicBool::new(false);

/// Make every line on stdout a JSON object (`--progress json`), for this process.
pub fn set_json_lines(on: bool) {
    JSON_LINES.store(on, Ordering::Relaxed);
}

/// Progress: a bar with throughput and ETA on a terminal, JSON status lines on stdout
/// (`--progress json`), or nothing.
pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
    lines: Option<Mutex<Status>>,
}

/// The phase a JSON status line reports.
struct Status {
    phase: String,
    total: u64,
    done: u64,
    message: String,
    started: Instant,
    printed: Instant,
}

impl Status {
    /// The phase `phase` of `total` bytes, starting now.
    fn begin(phase: &str, total: u64) -> Self {
        let now = Instant::now();
        Self {
            phase: phase.to_string(),
            total,
            done: 0,
            message: String::new(),
            started: now,
            printed: now,
        }
    }
}

/// Most one JSON status line per this long within a phase.
const STATUS_EVERY: Duration = Duration::from_secs(1);

impl Bar {
    /// The progress `cli` asks for: a bar only when stderr is a terminal and output is
    /// neither quiet nor JSON; JSON lines with `--progress json`.
    pub fn new(cli: &Cli) -> Self {
        Self {
            bar: Mutex::new(None),
            enabled: cli.progress == ProgressArg::Auto
                && !cli.quiet
                && !cli.json
                && std::io::stderr().is_terminal(),
            lines: (cli.progress == ProgressArg::Json).then(|| Mutex::new(Status::begin("", 0))),
        }
    }

    fn status(&self, f: impl FnOnce(&mut Status) -> bool) {
        let Some(m) = &self.lines else {
            return;
        };
        let mut s = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if f(&mut s) {
            s.printed = Instant::now();
            let line = serde_json::json!({
                "message_type": "status",
                "phase": s.phase,
                "bytes_done": s.done,
                "total_bytes": s.total,
                "percent_done": if s.total == 0 { serde_json::Value::Null } else { (s.done as f64 / s.total as f64).min(1.0).into() },
                "seconds_elapsed": s.started.elapsed().as_secs_f64(),
                "message": s.message,
            });
            println!("{line}");
        }
    }
}

impl Progress for Bar {
    fn start(&self, phase: &str, total: u64) {
        self.status(|s| {
            *s = Status::begin(phase, total);
            true
        });
        if !self.enabled {
            return;
        }
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb.set_prefix(phase.to_string());
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(pb);
        }
    }
    fn inc(&self, bytes: u64) {
        self.status(|s| {
            s.done = s.done.saturating_add(bytes);
            s.printed.elapsed() >= STATUS_EVERY
        });
        if let Ok(b) = self.bar.lock()
            && let Some(pb) = b.as_ref()
        {
            pb.inc(bytes);
        }
    }
    fn message(&self, msg: &str) {
        self.status(|s| {
            s.message = msg.chars().take(256).collect();
            false
        });
        if let Ok(b) = self.bar.lock()
            && let Some(pb) = b.as_ref()
        {
            pb.set_message(msg.to_string());
        }
    }
    fn finish(&self) {
        self.status(|_| true);
        if let Ok(mut b) = self.bar.lock()
            && let Some(pb) = b.take()
        {
            pb.finish_and_clear();
        }
    }
}

/// Print warnings to standard error, one `warning:` line each.
pub fn warnings<W: std::fmt::Display>(ws: impl IntoIterator<Item = W>) {
    for w in ws {
        eprintln!("warning: {w}");
    }
}

/// Print a value as pretty JSON; with `--progress json` as one line, an object marked
/// `"message_type": "summary"`.
pub fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    if JSON_LINES.load(Ordering::Relaxed) {
        let mut v = serde_json::to_value(v)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("message_type".into(), "summary".into());
        }
        println!("{v}");
    } else {
        println!("{}", serde_json::to_string_pretty(v)?);
    }
    Ok(())
}

/// A finished backup's answer: `out` as JSON, or its warnings and the `summary` line; the
/// exit code, 3 when there were warnings (documented in the README).
pub fn backup_outcome<T: Serialize>(
    as_json: bool,
    out: &T,
    out_warnings: &[String],
    summary: impl FnOnce() -> String,
) -> anyhow::Result<i32> {
    if as_json {
        json(out)?;
    } else {
        warnings(out_warnings);
        println!("{}", summary());
    }
    Ok(if out_warnings.is_empty() { 0 } else { 3 })
}

/// Human bytes.
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// The exit code for an error's code (the table is in the README).
pub fn exit_code(code: rehydra_api::Code) -> i32 {
    use rehydra_api::Code;
    match code {
        Code::InvalidInput => 2,
        Code::NotARepository => 10,
        // restic's numbers: 10 no repository, 11 locked, 12 wrong password
        Code::Locked => 11,
        Code::WrongPassword => 12,
        Code::TargetExists => 13,
        Code::Corrupt | Code::Missing => 14,
        Code::UnsupportedVersion => 15,
        Code::NoSpace => 16,
        Code::Cancelled => 130,
        Code::PluginRejected => 17,
        Code::PluginFailed => 18,
        Code::Blocked => 19,
        Code::Io => 1,
    }
}

/// What the user can do about an error, in the CLI's words (its commands and flags).
pub fn hint(hint: rehydra_api::Hint) -> &'static str {
    use rehydra_api::Hint as H;
    match hint {
        H::Check => "run `rehydra check` to see what is damaged",
        H::CheckReadData => "run `rehydra check --read-data` to find the affected restore points",
        H::LocationOrInit => {
            "check -r/--repo or REHYDRA_REPOSITORY, or create a repository there with `rehydra init`"
        }
        H::Password => "set REHYDRA_PASSWORD, use --password-file, or type it when asked",
        H::ListKeySlots => "`rehydra key list` shows the key slots",
        H::ListRestorePoints => "`rehydra restore-points` lists them",
        H::OneItem => "restore one item at a time with --item",
        H::Overwrite => "choose an empty target, or pass --overwrite to replace what is there",
        H::OverwriteInPlace => "pass --overwrite with --in-place to write over the existing disk",
        H::Sources => "give at least one path, --stdin, or --disk",
    }
}
