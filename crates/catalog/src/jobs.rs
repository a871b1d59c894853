//! The status of a job run.

use serde::Serialize;

/// How a job run stands. Stored as its kebab-case name (`succeeded-with-warnings`);
/// a name this build does not know reads as [`JobStatus::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    /// Started, not finished (or the process ended without saying).
    Running,
    /// Done.
    Succeeded,
    /// Done, with warnings (files that could not be read …).
    SucceededWithWarnings,
    /// Failed: the message says why.
    Failed,
    /// Cancelled by the user.
    Cancelled,
    /// Written by a newer build.
    Unknown,
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl JobStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::SucceededWithWarnings => "succeeded-with-warnings",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        [
            Self::Running,
            Self::Succeeded,
            Self::SucceededWithWarnings,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(Self::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_status_names_round_trip_and_unknown_ones_are_said_so() {
        for st in [
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::SucceededWithWarnings,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ] {
            assert_eq!(JobStatus::parse(st.as_str()), st);
            assert_eq!(
                serde_json::to_value(st).unwrap(),
                serde_json::Value::String(st.as_str().into())
            );
        }
        assert_eq!(
            JobStatus::parse("paused-by-a-newer-build"),
            JobStatus::Unknown
        );
    }
}
