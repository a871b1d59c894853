//! `rehydra operator`: the machine's service as its operators see it, through the door
//! the service opens for them (`service --operators GROUP`), without its catalog.

use anyhow::Result;
use rehydra_api::service::operators::{self, Ask, Overview};
use rehydra_api::service::requests::ServiceRequest;

use crate::args::Cli;

/// What an operator asks the machine's service.
#[derive(clap::Subcommand, Debug)]
pub enum OperatorCommand {
    /// The service's repository, its policies (what each backs up, schedule, last
    /// success, next run, failures in a row) and the runs handed to it.
    Status,
    /// Run one of the service's policies now, in the service (it goes on when this ends).
    Run {
        /// The policy's name.
        policy: String,
    },
    /// Cancel a run handed to the service: one waiting never starts, a running one stops
    /// within a second or two (nothing half-written is committed).
    Cancel {
        /// The request's number (`operator status` lists them).
        id: i64,
    },
}

pub(crate) fn run(cli: &Cli, c: &OperatorCommand) -> Result<i32> {
    match c {
        OperatorCommand::Status => {
            let o: Overview = operators::ask(&Ask::Overview)?;
            if cli.json {
                crate::output::json(&o)?;
            } else {
                show(&o);
            }
        }
        OperatorCommand::Run { policy } => {
            let r: ServiceRequest = operators::ask(&Ask::Run {
                policy: policy.clone(),
            })?;
            if cli.json {
                crate::output::json(&r)?;
            } else {
                println!(
                    "request {}: policy {} handed to the service; `rehydra operator status` says how it goes",
                    r.id, r.policy
                );
            }
        }
        OperatorCommand::Cancel { id } => {
            let r: ServiceRequest = operators::ask(&Ask::Cancel { id: *id })?;
            if cli.json {
                crate::output::json(&r)?;
            } else {
                println!("{}", crate::service::cancelled(*id, &r));
            }
        }
    }
    Ok(0)
}

fn show(o: &Overview) {
    println!(
        "the service (process {}) runs the policies of {}",
        o.pid, o.repository
    );
    if o.policies.is_empty() {
        println!("  no policies yet");
    }
    for p in &o.policies {
        let last = p.last_run.map_or_else(
            || "never".into(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        );
        let failed = if p.failures > 0 {
            format!(", failed {} time(s) in a row", p.failures)
        } else {
            String::new()
        };
        println!(
            "  {}: {} ({}); last success {last}, next {}{failed}",
            p.name,
            p.what,
            p.schedule,
            p.next_due.format("%Y-%m-%d %H:%M")
        );
    }
    if !o.requests.is_empty() {
        println!("runs handed to the service, newest first:");
    }
    for r in &o.requests {
        println!("{}", crate::service::request_line(r));
    }
}
