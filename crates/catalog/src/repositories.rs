//! The repositories a catalog has seen: where each was last opened from and when, for
//! the recent repositories of the app and `rehydra catalog repositories`.

use serde::Serialize;
use sqlx::Row as _;

use crate::{Catalog, Result, now};

/// A repository this catalog has seen, with when it was first and last used.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ts_rs::TS)]
#[ts(rename = "KnownRepository")]
pub struct RepositoryRow {
    /// Repository id (from its config).
    pub id: String,
    /// The location it was last opened from.
    pub location: String,
    /// First used (RFC 3339).
    pub first_seen: String,
    /// Last used (RFC 3339).
    pub last_seen: String,
}

impl Catalog {
    /// The repositories used, the most recent first.
    ///
    /// # Errors
    /// Database failure.
    pub async fn repositories(&self, limit: i64) -> Result<Vec<RepositoryRow>> {
        let q = sqlx::query(
            "SELECT id, location, first_seen, last_seen FROM repositories ORDER BY last_seen DESC LIMIT ?1",
        )
        .bind(limit);
        Ok(self
            .fetch(q)
            .await?
            .iter()
            // a value of another type (written by hand) reads as empty, not as a failure
            .map(|r| {
                let text = |c: &str| r.try_get::<String, _>(c).unwrap_or_default();
                RepositoryRow {
                    id: text("id"),
                    location: text("location"),
                    first_seen: text("first_seen"),
                    last_seen: text("last_seen"),
                }
            })
            .collect())
    }

    /// Record that a repository was used.
    ///
    /// # Errors
    /// Database failure.
    pub async fn upsert_repository(&self, id: &str, location: &str) -> Result<()> {
        self.exec("INSERT INTO repositories (id, location, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3) ON CONFLICT(id) DO UPDATE SET location = ?2, last_seen = ?3", &[id, location, &now()]).await?;
        Ok(())
    }
}
