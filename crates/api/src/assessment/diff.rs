//! Two assessments compared by their findings' stable ids: what was resolved, what is
//! new, what changed severity, and how score and coverage moved ("what improved since
//! last quarter").

use serde::{Deserialize, Serialize};

use super::{Assessment, Coverage, FindingRow};

/// A finding whose severity changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Changed {
    /// The finding now.
    pub finding: FindingRow,
    /// Its severity before.
    pub was: String,
}

/// What changed from one assessment to the next.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct AssessmentDiff {
    /// When the older one was made.
    pub before: chrono::DateTime<chrono::Utc>,
    /// When the newer one was made.
    pub after: chrono::DateTime<chrono::Utc>,
    /// Score before and after.
    pub score: (u32, u32),
    /// Coverage before and after.
    pub coverage: (Coverage, Coverage),
    /// Findings gone.
    pub resolved: Vec<FindingRow>,
    /// Findings that appeared.
    pub new: Vec<FindingRow>,
    /// Findings still there with another severity.
    pub changed: Vec<Changed>,
    /// Findings still there as they were.
    pub unchanged: usize,
}

/// Compare `before` with `after` (in either order of time; the arguments decide).
pub fn diff(before: &Assessment, after: &Assessment) -> AssessmentDiff {
    let old: std::collections::HashMap<&str, &FindingRow> =
        before.findings.iter().map(|f| (f.id.as_str(), f)).collect();
    let now: std::collections::HashSet<&str> =
        after.findings.iter().map(|f| f.id.as_str()).collect();
    let mut d = AssessmentDiff {
        before: before.generated,
        after: after.generated,
        score: (before.summary.score, after.summary.score),
        coverage: (
            before.summary.coverage.clone(),
            after.summary.coverage.clone(),
        ),
        resolved: before
            .findings
            .iter()
            .filter(|f| !now.contains(f.id.as_str()))
            .cloned()
            .collect(),
        new: Vec::new(),
        changed: Vec::new(),
        unchanged: 0,
    };
    for f in &after.findings {
        match old.get(f.id.as_str()) {
            None => d.new.push(f.clone()),
            Some(o) if o.severity != f.severity => d.changed.push(Changed {
                finding: f.clone(),
                was: o.severity.clone(),
            }),
            Some(_) => d.unchanged += 1,
        }
    }
    d
}
