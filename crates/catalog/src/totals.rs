//! Totals for the metrics endpoint: job runs by kind and status, the latest finished run
//! of each kind, and restore points per repository. Aggregated by SQLite, so a scrape
//! costs the same whatever the history's length.

use sqlx::Row as _;

use crate::{Catalog, Result};

/// Job runs of one kind and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTotal {
    /// `backup`, `restore`, `check` …
    pub kind: String,
    /// Stored status name (`succeeded` …).
    pub status: String,
    /// How many.
    pub count: i64,
    /// Bytes they handled.
    pub bytes: i64,
    /// Start and end (RFC 3339) of the latest finished run of this kind, on the row of its
    /// status.
    pub latest: Option<(String, String)>,
}

/// Restore points the catalog lists for one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointTotal {
    /// Repository location.
    pub location: String,
    /// How many.
    pub count: i64,
    /// Bytes their backups wrote to packs.
    pub stored_bytes: i64,
    /// Newest restore point time (RFC 3339).
    pub newest: Option<String>,
}

impl Catalog {
    /// Job runs by kind and status.
    ///
    /// # Errors
    /// Database failure.
    pub async fn job_totals(&self) -> Result<Vec<JobTotal>> {
        let rows = self
            .fetch(sqlx::query(
                "SELECT kind, status, COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b \
                 FROM job_runs GROUP BY kind, status ORDER BY kind, status",
            ))
            .await?;
        let latest = self
            .fetch(sqlx::query(
                "SELECT kind, status, started, finished FROM job_runs WHERE id IN \
                 (SELECT MAX(id) FROM job_runs WHERE finished IS NOT NULL GROUP BY kind)",
            ))
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let (kind, status): (String, String) = (r.get("kind"), r.get("status"));
                let latest = latest
                    .iter()
                    .find(|l| {
                        l.get::<String, _>("kind") == kind && l.get::<String, _>("status") == status
                    })
                    .map(|l| (l.get("started"), l.get("finished")));
                JobTotal {
                    kind,
                    status,
                    count: r.get("n"),
                    bytes: r.get("b"),
                    latest,
                }
            })
            .collect())
    }

    /// Restore points per repository.
    ///
    /// # Errors
    /// Database failure.
    pub async fn point_totals(&self) -> Result<Vec<PointTotal>> {
        let rows = self
            .fetch(sqlx::query(
                "SELECT r.location AS location, COUNT(p.id) AS n, \
                 COALESCE(SUM(p.stored_bytes), 0) AS b, MAX(p.time) AS newest \
                 FROM repositories r LEFT JOIN restore_points p ON p.repository_id = r.id \
                 GROUP BY r.id ORDER BY r.location",
            ))
            .await?;
        Ok(rows
            .iter()
            .map(|r| PointTotal {
                location: r.get("location"),
                count: r.get("n"),
                stored_bytes: r.get("b"),
                newest: r.get("newest"),
            })
            .collect())
    }
}
