//! The repositories an assessment is joined with: their restore points, the restores the
//! catalog records from them, the policies that back up into them, and their facts.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::RepositoryFacts;
use crate::error::{ApiError, Code, Result};
use crate::{Context, RestorePointFilter, Session};

/// What the joined repositories add: their restore points, the restores that succeeded
/// from them, and their facts, the first repository's first.
pub struct Joined {
    /// Restore points of every repository.
    pub points: Vec<crate::RestorePointDto>,
    /// Restore points ever restored successfully.
    pub restored: HashSet<String>,
    /// Facts, one per repository.
    pub repos: Vec<RepositoryFacts>,
    /// How many of `points` are the first repository's.
    pub primary: usize,
}

impl Joined {
    /// Another repository's points, restores and facts.
    ///
    /// # Errors
    /// It is one already joined (under this or another name).
    pub fn add(&mut self, other: Joined) -> Result<()> {
        for r in &other.repos {
            if self.repos.iter().any(|x| x.full_id == r.full_id) {
                return Err(ApiError::new(
                    Code::InvalidInput,
                    format!(
                        "{} is repository {}, which is joined already (as {}); join each repository once",
                        r.location,
                        r.id,
                        self.repos
                            .iter()
                            .find(|x| x.full_id == r.full_id)
                            .map_or("", |x| x.location.as_str())
                    ),
                ));
            }
        }
        self.points.extend(other.points);
        self.restored.extend(other.restored);
        self.repos.extend(other.repos);
        Ok(())
    }

    /// The repositories' short ids, for evidence.
    pub fn names(&self) -> String {
        let ids: Vec<&str> = self.repos.iter().map(|r| r.id.as_str()).collect();
        ids.join(", ")
    }

    /// The newest successful restore from any of them.
    pub fn last_restore(&self) -> Option<DateTime<Utc>> {
        self.repos.iter().filter_map(|r| r.last_restore).max()
    }

    /// Copies of the first repository's restore points held by the others: a copy off it.
    pub fn copies_elsewhere(&self) -> usize {
        let Some(first) = self.repos.first() else {
            return 0;
        };
        let mine: HashSet<&str> = self.points[..self.primary]
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        self.points[self.primary..]
            .iter()
            .filter(|p| {
                p.copied_from_repository.as_deref() == Some(first.full_id.as_str())
                    && p.copied_from.as_deref().is_some_and(|c| mine.contains(c))
            })
            .count()
    }
}

/// Read one repository.
pub fn join(ctx: &Context, s: &Session) -> Result<Joined> {
    let points = s.restore_points(&RestorePointFilter::default())?;
    let st = s.stats()?;
    let runs = crate::job_runs(ctx, 100_000)?;
    let mine = |r: &&crate::JobRun| r.repository_id.as_deref().is_none_or(|id| id == st.id);
    let restores: Vec<&crate::JobRun> = runs
        .iter()
        .filter(mine)
        .filter(|r| r.kind == "restore" && r.status == crate::JobStatus::Succeeded)
        .collect();
    let last_restore = restores
        .iter()
        .filter_map(|r| r.finished.as_deref().or(Some(r.started.as_str())))
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .max();
    // the policies that back up into this repository
    let policies: Vec<_> = crate::policies::list(ctx, Utc::now())?
        .into_iter()
        .filter(|p| p.policy.repository == s.location())
        .collect();
    Ok(Joined {
        restored: restores
            .iter()
            .filter_map(|r| r.restore_point_id.clone())
            .collect(),
        repos: vec![RepositoryFacts {
            id: st.id.chars().take(8).collect(),
            full_id: st.id.clone(),
            location: s.location().to_string(),
            kind: location_kind(s.location()).into(),
            restore_points: points.len(),
            reduction_ratio: st.reduction_ratio,
            stored_bytes: st.pack_bytes,
            last_restore,
            copying_policies: policies
                .iter()
                .filter(|p| p.policy.copy_to.is_some())
                .count(),
            policies: policies.len(),
        }],
        primary: points.len(),
        points,
    })
}

fn location_kind(location: &str) -> &'static str {
    let l = location.to_ascii_lowercase();
    if l.starts_with("azure://") || l.starts_with("az://") || l.contains(".blob.core.") {
        "Azure Blob"
    } else if l.starts_with("s3://") || l.starts_with("s3:") {
        "S3"
    } else if l.starts_with("\\\\") || l.starts_with("//") || l.starts_with("smb://") {
        "SMB share"
    } else {
        "local folder"
    }
}
