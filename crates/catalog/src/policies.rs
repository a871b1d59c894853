//! Protection policies as the catalog keeps them: the policy (JSON the API owns), its
//! last successful run, and the failures since with the pause before the next attempt.

use sqlx::Row as _;

use crate::{Catalog, Result, now};

/// A policy as the catalog keeps it.
#[derive(Debug, Clone)]
pub struct PolicyRow {
    /// Name.
    pub name: String,
    /// The policy (JSON).
    pub spec: String,
    /// Last successful run (RFC 3339).
    pub last_run: Option<String>,
    /// Failed runs since the last success.
    pub failures: i64,
    /// No attempt before this time (RFC 3339).
    pub retry_after: Option<String>,
}

impl Catalog {
    /// Protection policies with their last run and failures.
    ///
    /// # Errors
    /// Database failure.
    pub async fn policies(&self) -> Result<Vec<PolicyRow>> {
        let q = sqlx::query(
            "SELECT name, spec, last_run, failures, retry_after FROM policies ORDER BY name",
        );
        let rows = self.fetch(q).await?;
        Ok(rows
            .iter()
            .map(|r| PolicyRow {
                name: r.get("name"),
                spec: r.get("spec"),
                last_run: r.get("last_run"),
                failures: r.get("failures"),
                retry_after: r.get("retry_after"),
            })
            .collect())
    }

    /// A policy run failed: the failures in a row and when it may be tried again.
    ///
    /// # Errors
    /// Database failure.
    pub async fn policy_failed(&self, name: &str, failures: i64, retry_after: &str) -> Result<()> {
        sqlx::query("UPDATE policies SET failures = ?2, retry_after = ?3 WHERE name = ?1")
            .bind(name)
            .bind(failures)
            .bind(retry_after)
            .execute(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(())
    }

    /// Add or replace a policy (its last run is kept).
    ///
    /// # Errors
    /// Database failure.
    pub async fn set_policy(&self, name: &str, spec: &str) -> Result<()> {
        self.exec("INSERT INTO policies (name, spec, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at", &[name, spec, &now()]).await?;
        Ok(())
    }

    /// Record a successful run of a policy.
    ///
    /// # Errors
    /// Database failure.
    pub async fn policy_ran(&self, name: &str, at: &str) -> Result<()> {
        self.exec(
            "UPDATE policies SET last_run = ?2, failures = 0, retry_after = NULL WHERE name = ?1",
            &[name, at],
        )
        .await?;
        Ok(())
    }

    /// Remove a policy; returns whether it existed.
    ///
    /// # Errors
    /// Database failure.
    pub async fn remove_policy(&self, name: &str) -> Result<bool> {
        Ok(self
            .exec("DELETE FROM policies WHERE name = ?1", &[name])
            .await?
            > 0)
    }
}
