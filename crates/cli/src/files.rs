//! `rehydra files`: partitions, listings and file restores from inside a restore point's disk.

use anyhow::Result;
use chrono::{DateTime, Utc};
use rehydra_api as api;

use crate::args::Cli;
use crate::commands::*;
use crate::output::{bytes, json};

pub(crate) fn run(cli: &Cli, fc: &crate::args::FilesCommand) -> Result<i32> {
    let s = open(cli)?;
    let at = |a: &crate::args::DiskAt| -> Result<api::DiskLocation> {
        Ok(api::DiskLocation {
            restore_point: a.restore_point.clone(),
            filter: filter(&a.filter)?,
            item: a.item.clone(),
            partition: a.partition,
        })
    };
    match fc {
        crate::args::FilesCommand::Partitions(a) => {
            let parts = s.disk_partitions(&at(a)?)?;
            if cli.json {
                json(&parts)?;
            } else {
                for p in parts {
                    println!(
                        "{:>3}  {:>12}  {:>10}  {:<6} {} {}",
                        p.number,
                        p.start,
                        bytes(p.size),
                        if p.filesystem.is_empty() {
                            "-"
                        } else {
                            &p.filesystem
                        },
                        p.kind,
                        p.name
                    );
                }
            }
        }
        crate::args::FilesCommand::Ls { at: a, path } => {
            let entries = s.list_files(&at(a)?, path)?;
            if cli.json {
                json(&entries)?;
            } else {
                for e in entries {
                    let t =
                        DateTime::<Utc>::from_timestamp(e.mtime_ns.div_euclid(1_000_000_000), 0)
                            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_default();
                    let kind = match e.kind {
                        api::FileEntryKind::Dir => "d",
                        api::FileEntryKind::Symlink => "l",
                        api::FileEntryKind::Other => "?",
                        api::FileEntryKind::File => "-",
                    };
                    match &e.note {
                        Some(note) => {
                            println!("{kind} {:>10}  {t}  {}  ({note})", bytes(e.size), e.name)
                        }
                        None => println!("{kind} {:>10}  {t}  {}", bytes(e.size), e.name),
                    }
                }
            }
        }
        crate::args::FilesCommand::Restore {
            at: a,
            path,
            target,
            overwrite,
        } => {
            let r = s.restore_files(&at(a)?, path, target, *overwrite)?;
            if cli.json {
                json(&r)?;
            } else if !cli.quiet {
                println!(
                    "restored {} file(s), {} folder(s), {} link(s), {} into {}",
                    r.files,
                    r.dirs,
                    r.symlinks,
                    bytes(r.bytes),
                    target.display()
                );
            }
            if !cli.json {
                if r.skipped > 0 {
                    eprintln!("warning: {} entries skipped:", r.skipped);
                }
                for w in &r.warnings {
                    eprintln!("  {w}");
                }
            }
        }
    }
    Ok(0)
}
