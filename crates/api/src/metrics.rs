//! The service's metrics in Prometheus' text format (version 0.0.4): job runs by kind and
//! state with the bytes they handled, the latest run's duration per kind, each policy's
//! last success, failures in a row and next run, and restore points per repository, all
//! read from the catalog at each scrape. Nothing secret is in them: repository locations
//! hold no credentials (those come from the environment), policy names are plain.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::Context;
use crate::catalog_sync::with_catalog;
use crate::error::Result;

/// A label value, escaped as the text format wants (`\`, `"`, newline).
fn label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn seconds(t: &DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        let l = if l.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", l.join(","))
        };
        let _ = writeln!(self.0, "{name}{l} {v}");
    }
}

/// The metrics page; `started` is when the service started.
///
/// # Errors
/// Catalog failure.
pub fn render(ctx: &Context, started: DateTime<Utc>) -> Result<String> {
    let (jobs, points) = with_catalog(ctx, |c| async move {
        Ok((c.job_totals().await?, c.point_totals().await?))
    })?;
    let policies = crate::policies::list(ctx, Utc::now())?;
    let mut o = Out(String::new());
    o.family("rehydra_up", "gauge", "1 while the Rehydra service runs.");
    o.sample("rehydra_up", &[], 1.0);
    o.family(
        "rehydra_service_start_time_seconds",
        "gauge",
        "When the service started (Unix time).",
    );
    o.sample("rehydra_service_start_time_seconds", &[], seconds(&started));
    o.family(
        "rehydra_jobs_total",
        "counter",
        "Job runs in the catalog by kind and state.",
    );
    for j in &jobs {
        o.sample(
            "rehydra_jobs_total",
            &[("kind", &j.kind), ("status", &j.status)],
            j.count as f64,
        );
    }
    o.family(
        "rehydra_job_bytes_total",
        "counter",
        "Bytes read (backups) or written (restores) by job runs, by kind and state.",
    );
    for j in &jobs {
        o.sample(
            "rehydra_job_bytes_total",
            &[("kind", &j.kind), ("status", &j.status)],
            j.bytes as f64,
        );
    }
    o.family(
        "rehydra_job_last_duration_seconds",
        "gauge",
        "How long the latest finished job run of each kind took.",
    );
    for j in &jobs {
        if let Some((s, f)) = &j.latest
            && let (Some(s), Some(f)) = (parse(s), parse(f))
        {
            o.sample(
                "rehydra_job_last_duration_seconds",
                &[("kind", &j.kind), ("status", &j.status)],
                (f - s).num_milliseconds() as f64 / 1000.0,
            );
        }
    }
    o.family(
        "rehydra_policy_last_success_timestamp_seconds",
        "gauge",
        "The policy's last successful run (Unix time); absent when it never succeeded.",
    );
    for p in &policies {
        if let Some(t) = &p.last_run {
            o.sample(
                "rehydra_policy_last_success_timestamp_seconds",
                &[
                    ("policy", &p.policy.name),
                    ("repository", &p.policy.repository),
                ],
                seconds(t),
            );
        }
    }
    o.family(
        "rehydra_policy_failures",
        "gauge",
        "Failed runs of the policy since its last success.",
    );
    for p in &policies {
        o.sample(
            "rehydra_policy_failures",
            &[
                ("policy", &p.policy.name),
                ("repository", &p.policy.repository),
            ],
            f64::from(p.failures),
        );
    }
    o.family(
        "rehydra_policy_next_run_timestamp_seconds",
        "gauge",
        "When the policy is due next (Unix time; in the past when it is due).",
    );
    for p in &policies {
        o.sample(
            "rehydra_policy_next_run_timestamp_seconds",
            &[
                ("policy", &p.policy.name),
                ("repository", &p.policy.repository),
            ],
            seconds(&p.next_due),
        );
    }
    o.family(
        "rehydra_restore_points",
        "gauge",
        "Restore points the catalog lists per repository.",
    );
    for r in &points {
        o.sample(
            "rehydra_restore_points",
            &[("repository", &r.location)],
            r.count as f64,
        );
    }
    o.family(
        "rehydra_restore_points_stored_bytes",
        "gauge",
        "Bytes the backups of those restore points wrote to the repository (before prune).",
    );
    for r in &points {
        o.sample(
            "rehydra_restore_points_stored_bytes",
            &[("repository", &r.location)],
            r.stored_bytes as f64,
        );
    }
    Ok(o.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_samples_well_formed() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut o = Out(String::new());
        o.family("x_total", "counter", "X.");
        o.sample("x_total", &[("k", "v\"")], 3.0);
        o.sample("x_total", &[], 0.5);
        assert_eq!(
            o.0,
            "# HELP x_total X.\n# TYPE x_total counter\nx_total{k=\"v\\\"\"} 3\nx_total 0.5\n"
        );
    }
}
