//! Logs outside the catalog. Every job's start, log lines and end are `tracing` events
//! carrying the job's id (emitted where job runs are recorded, `catalog_sync`), and so are
//! policy runs, notifications and the service's rounds. [`init`], called once by each
//! shell, writes them as JSON lines to a file rotated daily next to the catalog
//! (`logs/rehydra.YYYY-MM-DD.jsonl`, the newest 14 kept; `REHYDRA_LOG_DIR` moves it,
//! `REHYDRA_LOG_DIR=off` turns it off) and, when `REHYDRA_LOG` is set (a filter such as
//! `info` or `rehydra_api=debug`), as text on standard error; the Windows service also
//! writes its own lines to the Event Log ([`init_with`]). Nothing secret is logged:
//! the events carry what the catalog's job log already holds (which never holds a
//! password, key or token), and notification errors name a URL's host only.

use std::path::PathBuf;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::Context;

/// How many daily files are kept.
const KEEP_FILES: usize = 14;

/// The log folder for `ctx`: `REHYDRA_LOG_DIR`, else `logs` next to the catalog; `None`
/// when turned off or without a catalog.
#[must_use]
pub fn folder(ctx: &Context) -> Option<PathBuf> {
    match std::env::var_os("REHYDRA_LOG_DIR") {
        Some(d) if d == "off" => None,
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => ctx.catalog.as_deref().and_then(beside),
    }
}

/// The log folder of a process whose catalog is `catalog` and that has no
/// `REHYDRA_LOG_DIR` (a service): `logs` next to it.
#[must_use]
pub fn beside(catalog: &std::path::Path) -> Option<PathBuf> {
    catalog.parent().map(|d| d.join("logs"))
}

/// A further place a shell sends events to (the Windows service's Event Log), with its
/// own filter.
pub type ExtraLayer =
    Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static>;

/// Start logging for this process (once; later calls do nothing). Returns the folder the
/// JSON file is written in, if any; a folder that cannot be created turns the file off
/// with a warning on standard error rather than stopping the command.
pub fn init(ctx: &Context) -> Option<PathBuf> {
    init_with(ctx, None)
}

/// [`init`], and events also to `extra`.
pub fn init_with(ctx: &Context, extra: Option<ExtraLayer>) -> Option<PathBuf> {
    let file = folder(ctx).and_then(|dir| {
        let appender = std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                tracing_appender::rolling::Builder::new()
                    .rotation(tracing_appender::rolling::Rotation::DAILY)
                    .filename_prefix("rehydra")
                    .filename_suffix("jsonl")
                    .max_log_files(KEEP_FILES)
                    .build(&dir)
                    .map_err(|e| e.to_string())
            });
        match appender {
            Ok(a) => Some((dir, a)),
            Err(e) => {
                eprintln!(
                    "warning: no log file in {} ({e}); set REHYDRA_LOG_DIR to another folder, or to off",
                    dir.display()
                );
                None
            }
        }
    });
    let dir = file.as_ref().map(|(d, _)| d.clone());
    let json = file.map(|(_, a)| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(a)
            .with_filter(EnvFilter::new("info"))
    });
    let console = std::env::var("REHYDRA_LOG").ok().map(|f| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(EnvFilter::try_new(&f).unwrap_or_else(|_| EnvFilter::new("info")))
    });
    let _ = tracing_subscriber::registry()
        .with(extra)
        .with(json)
        .with(console)
        .try_init();
    dir
}
