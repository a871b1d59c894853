//! Policy runs handed to the always-on service: the desktop app and `rehydra policy run
//! --service` ask, the service takes each request (within a second or two when it is
//! idle, else after the job in progress) and runs the policy in its own process (so the job goes on when the window closes), writing its
//! progress and outcome back to the catalog they share. A request is cancelled through
//! the catalog too: the service sees it within a second and stops the job the way a
//! cancelled job stops (nothing half-written is committed).
//!
//! Who may ask is who may write the catalog: the service runs what its catalog says, so
//! handing it a run gives no one more than adding a policy does.

use std::sync::Mutex;

use rehydra_core::one_line;

pub use rehydra_catalog::{RequestRow as ServiceRequest, RequestState};

use crate::catalog_sync::with_catalog;
use crate::error::{ApiError, Code, Result};
use crate::{Context, Progress, human_bytes};

/// Hand `policy` to the service running for this catalog; `asked_by` says who asked
/// (shown with the request).
///
/// # Errors
/// No service runs for this catalog; there is no such policy; the policy backs up into
/// another repository than the service's.
pub fn hand_over(ctx: &Context, policy: &str, asked_by: &str) -> Result<ServiceRequest> {
    let Some(service) = super::running(ctx)? else {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "no Rehydra service runs for the catalog {}: start it (`rehydra -r REPOSITORY service`, the systemd unit or the Windows service), or run the policy here",
                ctx.catalog
                    .as_ref()
                    .map_or_else(String::new, |c| c.display().to_string())
            ),
        ));
    };
    if !service.takes_requests {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "the service running (process {}) is of an older version that does not take runs handed to it: restart it with this version, or run the policy here",
                service.pid
            ),
        ));
    }
    let p = crate::policies::status(ctx, policy)?.policy;
    if p.repository != service.repository {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "policy {policy} backs up into {}, and the service runs the policies of {}: run it here, or start a service for its repository",
                p.repository, service.repository
            ),
        ));
    }
    let (policy, by) = (policy.to_string(), one_line(asked_by, 200));
    let r = with_catalog(ctx, |c| async move { c.ask_service(&policy, &by).await })?;
    tracing::info!(request = r.id, policy = %r.policy, asked_by = %r.asked_by, "handed to the service");
    Ok(r)
}

/// The requests not ended yet and the `limit` newest others, newest first.
///
/// # Errors
/// The catalog cannot be read.
pub fn list(ctx: &Context, limit: i64) -> Result<Vec<ServiceRequest>> {
    with_catalog(ctx, |c| async move { c.service_requests(limit).await })
}

/// Cancel request `id`: one still waiting is cancelled at once; a running one is stopped
/// by the service within a second; an ended one is left as it ended.
///
/// # Errors
/// There is no such request; the catalog cannot be written.
pub fn cancel(ctx: &Context, id: i64) -> Result<ServiceRequest> {
    let r = with_catalog(ctx, |c| async move { c.cancel_service_request(id).await })?.ok_or_else(
        || {
            ApiError::new(
                Code::InvalidInput,
                format!("no service request {id} (rehydra service --status lists them)"),
            )
        },
    )?;
    // no service runs to stop it: it was left running by one that ended; cancelled now
    if r.state == RequestState::Stopping && super::running(ctx)?.is_none() {
        end(
            ctx,
            id,
            RequestState::Cancelled,
            "cancelled; the service that ran it had ended (nothing half-written was kept)",
        )?;
        return get(ctx, id)?
            .ok_or_else(|| ApiError::new(Code::Io, format!("service request {id} is gone")));
    }
    Ok(r)
}

/// The newest request for `policy` whose asker's label starts with `asked_by`.
///
/// # Errors
/// The catalog cannot be read.
pub fn last_asked(ctx: &Context, policy: &str, asked_by: &str) -> Result<Option<ServiceRequest>> {
    let (policy, asked_by) = (policy.to_string(), asked_by.to_string());
    with_catalog(ctx, |c| async move {
        c.last_service_request(&policy, &asked_by).await
    })
}

/// One request, as it stands now.
///
/// # Errors
/// The catalog cannot be read.
pub fn get(ctx: &Context, id: i64) -> Result<Option<ServiceRequest>> {
    with_catalog(ctx, |c| async move { c.service_request(id).await })
}

/// This machine's name, as a request's asker and a notification say where it came from.
pub(crate) fn this_host() -> String {
    hostname::get().map_or_else(
        |_| "this machine".into(),
        |h| h.to_string_lossy().into_owned(),
    )
}

/// Who hands a run over: `what` (the desktop app, a command), with the machine and the
/// user it runs as (a label shown with the request, not a proof of anything).
pub fn asker(what: &str) -> String {
    let user = ["USERNAME", "USER"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|u| !u.is_empty());
    let host = this_host();
    match user {
        Some(u) => format!("{what} on {host} as {u}"),
        None => format!("{what} on {host}"),
    }
}

/// For the service: whether a request waits (a cheap look, made every second).
///
/// # Errors
/// The catalog cannot be read.
pub fn waits(ctx: &Context) -> Result<bool> {
    with_catalog(ctx, |c| async move { c.service_request_waits().await })
}

/// For the service: take the oldest waiting request; it is running from now on.
///
/// # Errors
/// The catalog cannot be written.
pub fn take(ctx: &Context) -> Result<Option<ServiceRequest>> {
    with_catalog(ctx, |c| async move { c.take_service_request().await })
}

/// For the service: the running request's progress line.
///
/// # Errors
/// The catalog cannot be written.
pub fn report(ctx: &Context, id: i64, line: &str) -> Result<()> {
    let line = line.to_string();
    with_catalog(ctx, |c| async move {
        c.service_request_progress(id, &line).await
    })
}

/// For the service: request `id` ended as `state` (succeeded, failed or cancelled).
///
/// # Errors
/// The catalog cannot be written.
pub fn end(ctx: &Context, id: i64, state: RequestState, message: &str) -> Result<()> {
    // error text from a remote server or a plugin: one line, not an endless one
    let message = one_line(message, 2000);
    with_catalog(ctx, |c| async move {
        c.end_service_request(id, state, &message).await
    })
}

/// For a service starting: what a service before it left running (it was killed, or
/// the machine lost power) is failed, saying so; returns how many.
///
/// # Errors
/// The catalog cannot be written.
pub fn abandon(ctx: &Context) -> Result<u64> {
    with_catalog(ctx, |c| async move {
        c.abandon_service_requests(
            "the service ended before this run finished (nothing half-written was kept): ask again",
        )
        .await
    })
}

#[derive(Default)]
struct Seen {
    phase: String,
    total: u64,
    done: u64,
    message: String,
}

/// A job's progress kept as one line a person reads (`backup: 1.20 GiB of 4.00 GiB —
/// current file`), for the service to write to its request every second.
#[derive(Default)]
pub struct ProgressLine(Mutex<Seen>);

impl ProgressLine {
    /// The line as it stands.
    pub fn line(&self) -> String {
        let Ok(s) = self.0.lock() else {
            return String::new();
        };
        let mut out = if s.phase.is_empty() {
            "starting".to_string()
        } else if s.total > 0 {
            format!(
                "{}: {} of {} ({} %)",
                s.phase,
                human_bytes(s.done),
                human_bytes(s.total),
                s.done.saturating_mul(100) / s.total
            )
        } else {
            format!("{}: {}", s.phase, human_bytes(s.done))
        };
        if !s.message.is_empty() {
            out.push_str(" — ");
            out.push_str(&s.message);
        }
        out
    }
}

impl Progress for ProgressLine {
    fn start(&self, phase: &str, total: u64) {
        if let Ok(mut s) = self.0.lock() {
            *s = Seen {
                phase: phase.to_string(),
                total,
                ..Seen::default()
            };
        }
    }
    fn inc(&self, bytes: u64) {
        if let Ok(mut s) = self.0.lock() {
            s.done = s.done.saturating_add(bytes);
        }
    }
    fn message(&self, msg: &str) {
        if let Ok(mut s) = self.0.lock() {
            // a name from a guest's disk: one line, and not an endless one
            s.message = one_line(msg, 200);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_says_phase_amount_and_the_current_name_on_one_line() {
        let p = ProgressLine::default();
        assert_eq!(p.line(), "starting");
        p.start("backup", 4 << 20);
        p.inc(1 << 20);
        assert_eq!(p.line(), "backup: 1.00 MiB of 4.00 MiB (25 %)");
        p.message("evil\nname\u{1b}[2J");
        assert!(!p.line().contains(['\n', '\u{1b}']), "{}", p.line());
        p.message(&"x".repeat(10_000));
        assert!(p.line().len() < 300);
        p.start("check", 0);
        p.inc(5);
        assert_eq!(p.line(), "check: 5 B");
    }

    #[test]
    fn nothing_is_handed_over_without_a_service_for_the_catalog() {
        let d = tempfile::tempdir().unwrap();
        let ctx = Context {
            catalog: Some(d.path().join("catalog.db")),
            ..Context::default()
        };
        let e = hand_over(&ctx, "nightly", "test").unwrap_err();
        assert_eq!(e.code, Code::InvalidInput);
        assert!(
            e.message.contains("no Rehydra service runs"),
            "{}",
            e.message
        );
        // a service for the catalog, but no such policy: named
        let _lock = super::super::acquire(&ctx, "/srv/repo").unwrap();
        let e = hand_over(&ctx, "nightly", "test").unwrap_err();
        assert!(
            e.message.contains("no policy named `nightly`"),
            "{}",
            e.message
        );
        assert!(list(&ctx, 10).unwrap().is_empty());
        assert_eq!(cancel(&ctx, 4).unwrap_err().code, Code::InvalidInput);
    }
}
