//! Capacity and what protecting it will take: the data the plugins report
//! (`size-mib`, what a first full backup reads), split by protection state, and the
//! repository's size estimated from measured reduction and change where a repository
//! is joined, from stated assumptions where not. Every estimate says what it rests on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AssetRow, RepositoryFacts, Thresholds};
use crate::RestorePointDto;

/// Reduction assumed without a repository to measure it (dedup and compression of VM
/// disks and databases are commonly 1.5 to 3; the low end).
const ASSUMED_REDUCTION: f64 = 1.5;

/// Capacity and estimates, in MiB.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct Sizing {
    /// Data of every asset whose size is known.
    pub total_mib: u64,
    /// Of which in assets with a restore point (protected or stale).
    pub protected_mib: u64,
    /// Of which in assets without one (or not judged).
    pub unprotected_mib: u64,
    /// Assets whose plugin reports no size.
    pub unsized_assets: usize,
    /// Logical over stored bytes used for the estimates.
    pub reduction_ratio: f64,
    /// Whether that ratio was measured in a repository.
    pub reduction_measured: bool,
    /// Daily change used, in percent of the data.
    pub daily_change_percent: f64,
    /// Whether that was measured (new data per day in the repository's last 7 days).
    pub change_measured: bool,
    /// Stored size of a first full backup of everything sized.
    pub first_full_mib: u64,
    /// Stored size of a day's change.
    pub daily_change_mib: u64,
    /// Retention the growth is for.
    pub retention_days: u32,
    /// The repository after that retention: first full plus a day's change per day kept.
    pub repository_mib: u64,
    /// What the estimates rest on, in words.
    pub basis: Vec<String>,
}

const MIB: f64 = 1_048_576.0;

/// Estimate from the rows and, when joined, the repository's measurements.
pub fn estimate(
    assets: &[AssetRow],
    facts: Option<&RepositoryFacts>,
    points: Option<&[RestorePointDto]>,
    th: &Thresholds,
    now: DateTime<Utc>,
) -> Sizing {
    let mut s = Sizing {
        retention_days: th.retention_days,
        ..Sizing::default()
    };
    for a in assets.iter().filter(|a| a.status != "container") {
        match a.size_mib {
            Some(m) => {
                s.total_mib = s.total_mib.saturating_add(m);
                if matches!(a.status.as_str(), "protected" | "stale") {
                    s.protected_mib = s.protected_mib.saturating_add(m);
                } else {
                    s.unprotected_mib = s.unprotected_mib.saturating_add(m);
                }
            }
            None if a.kind != "backup" => s.unsized_assets += 1,
            None => {}
        }
    }
    match facts.filter(|f| f.reduction_ratio.is_finite() && f.reduction_ratio >= 1.0) {
        Some(f) => {
            s.reduction_ratio = f.reduction_ratio;
            s.reduction_measured = true;
            s.basis.push(format!(
                "reduction {:.2}:1 as measured in repository {}",
                f.reduction_ratio, f.id
            ));
        }
        None => {
            s.reduction_ratio = ASSUMED_REDUCTION;
            s.basis.push(format!(
                "reduction {ASSUMED_REDUCTION:.1}:1 assumed (no repository to measure it)"
            ));
        }
    }
    // new data per day over the last week, against the data protected
    let week = points.map(|p| {
        p.iter()
            // a copy's figures are its source's: counted once, where it was made
            .filter(|r| r.copied_from.is_none() && now - r.time <= chrono::Duration::days(7))
            .map(|r| r.new_bytes as f64)
            .sum::<f64>()
            / 7.0
    });
    match week.filter(|w| *w > 0.0 && s.protected_mib > 0) {
        Some(per_day) => {
            let stored_protected = s.protected_mib as f64 * MIB / s.reduction_ratio;
            s.daily_change_percent = (per_day / stored_protected * 100.0).min(100.0);
            s.change_measured = true;
            s.basis.push(format!(
                "daily change {:.1} % as measured (new data stored over the last 7 days)",
                s.daily_change_percent
            ));
        }
        None => {
            s.daily_change_percent = th.daily_change_percent;
            s.basis.push(format!(
                "daily change {:.1} % assumed (--daily-change-percent)",
                th.daily_change_percent
            ));
        }
    }
    if s.unsized_assets > 0 {
        s.basis.push(format!(
            "{} asset(s) report no size and are not counted",
            s.unsized_assets
        ));
    }
    s.first_full_mib = (s.total_mib as f64 / s.reduction_ratio).round() as u64;
    s.daily_change_mib = (s.first_full_mib as f64 * s.daily_change_percent / 100.0).round() as u64;
    s.repository_mib = s.first_full_mib.saturating_add(
        s.daily_change_mib
            .saturating_mul(u64::from(th.retention_days)),
    );
    s
}
