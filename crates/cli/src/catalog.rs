//! `rehydra catalog`: the local catalog of restore points and job runs.

use anyhow::Result;
use rehydra_api as api;

use crate::args::{CatalogCommand, Cli};
use crate::commands::*;
use crate::output::json;

pub(crate) fn run(cli: &Cli, c: &CatalogCommand) -> Result<i32> {
    match c {
        CatalogCommand::Rebuild => {
            let s = open(cli)?;
            let n = s.catalog_rebuild()?;
            if cli.json {
                json(&serde_json::json!({ "restore_points": n }))?;
            } else {
                println!("catalog rebuilt from the repository: {n} restore point(s)");
            }
        }
        CatalogCommand::Show => {
            let s = open(cli)?;
            let rows = s.catalog_restore_points()?;
            if cli.json {
                json(&rows)?;
            } else {
                for r in &rows {
                    println!("{} {} {} {}", &r.id[..8], r.time, r.workload, r.asset);
                }
                println!("{} restore point(s) in the catalog", rows.len());
            }
        }
        CatalogCommand::Runs { limit } => {
            let runs = api::job_runs(&context(cli), *limit)?;
            if cli.json {
                json(&runs)?;
            } else {
                for r in &runs {
                    println!(
                        "{:>5} {:<8} {:<24} {:<10} {}",
                        r.id, r.kind, r.started, r.status, r.message
                    );
                }
            }
        }
        CatalogCommand::Repositories => {
            let known = api::known_repositories(&context(cli), 50)?;
            if cli.json {
                json(&known)?;
            } else if known.is_empty() {
                println!("no repository used with this catalog yet");
            } else {
                for r in &known {
                    println!(
                        "{}  {}  {}",
                        r.last_seen,
                        r.id.get(..8).unwrap_or(&r.id),
                        r.location
                    );
                }
            }
        }
        CatalogCommand::Log { run } => {
            let lines = api::job_log(&context(cli), *run)?;
            if cli.json {
                json(&lines)?;
            } else if lines.is_empty() {
                println!("job run {run} has no log lines (see `rehydra catalog runs`)");
            } else {
                for l in &lines {
                    println!("{l}");
                }
            }
        }
    }
    Ok(0)
}
