//! Rendering: progress bars on a terminal, tables, JSON.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use rehydra_api::Progress;
use serde::Serialize;

/// Progress bar with throughput and ETA on a terminal; silent otherwise.
pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
}

impl Bar {
    /// A bar that draws only when stderr is a terminal and output is not quiet/JSON.
    pub fn new(quiet: bool, json: bool) -> Self {
        Self {
            bar: Mutex::new(None),
            enabled: !quiet && !json && std::io::stderr().is_terminal(),
        }
    }
}

impl Progress for Bar {
    fn start(&self, phase: &str, total: u64) {
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
        if let Ok(b) = self.bar.lock()
            && let Some(pb) = b.as_ref()
        {
            pb.inc(bytes);
        }
    }
    fn message(&self, msg: &str) {
        if let Ok(b) = self.bar.lock()
            && let Some(pb) = b.as_ref()
        {
            pb.set_message(msg.to_string());
        }
    }
    fn finish(&self) {
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

/// Print a value as pretty JSON.
pub fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
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
