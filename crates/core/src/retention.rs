//! Retention: which restore points a policy keeps (`forget`).
//!
//! Restore points are grouped by workload and asset. Within a group, newest first, a
//! restore point is kept by a rule when it is the newest of its period (hour, day, ISO
//! week, month, year) and the rule still has room; `last` keeps the newest n, `within`
//! keeps all younger than a duration. Any rule keeping it is enough.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;

use crate::id::Id;
use crate::manifest::RestorePoint;

/// A GFS policy. All zero keeps nothing (the caller refuses that).
#[derive(Debug, Clone, Default)]
pub struct KeepPolicy {
    /// Newest n.
    pub last: u32,
    /// Newest per hour, n hours.
    pub hourly: u32,
    /// Newest per day.
    pub daily: u32,
    /// Newest per ISO week.
    pub weekly: u32,
    /// Newest per month.
    pub monthly: u32,
    /// Newest per year.
    pub yearly: u32,
    /// Everything younger than this.
    pub within: Option<chrono::Duration>,
}

impl KeepPolicy {
    /// True when no rule is set.
    pub fn is_empty(&self) -> bool {
        self.last + self.hourly + self.daily + self.weekly + self.monthly + self.yearly == 0
            && self.within.is_none()
    }
}

/// Decision for one restore point.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Id.
    pub id: String,
    /// Group (workload/asset).
    pub group: String,
    /// Time.
    pub time: DateTime<Utc>,
    /// Kept?
    pub keep: bool,
    /// Rules that kept it.
    pub reasons: Vec<String>,
}

/// Apply `policy` at time `now`.
pub fn apply(
    snaps: &[(Id, RestorePoint)],
    policy: &KeepPolicy,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let mut groups: BTreeMap<String, Vec<&(Id, RestorePoint)>> = BTreeMap::new();
    for s in snaps {
        groups
            .entry(format!("{}/{}", s.1.workload, s.1.asset))
            .or_default()
            .push(s);
    }
    let mut out = Vec::new();
    for (g, mut list) in groups {
        list.sort_by_key(|e| std::cmp::Reverse(e.1.time)); // newest first
        type Key = fn(&DateTime<Utc>) -> i64;
        let rules: [(&str, u32, Key); 5] = [
            ("hourly", policy.hourly, |t| {
                i64::from(t.year()) * 1_000_000 + i64::from(t.ordinal()) * 100 + i64::from(t.hour())
            }),
            ("daily", policy.daily, |t| {
                i64::from(t.year()) * 1000 + i64::from(t.ordinal())
            }),
            ("weekly", policy.weekly, |t| {
                i64::from(t.iso_week().year()) * 100 + i64::from(t.iso_week().week())
            }),
            ("monthly", policy.monthly, |t| {
                i64::from(t.year()) * 100 + i64::from(t.month())
            }),
            ("yearly", policy.yearly, |t| i64::from(t.year())),
        ];
        let mut left: Vec<u32> = rules.iter().map(|r| r.1).collect();
        let mut seen: Vec<HashSet<i64>> = vec![HashSet::new(); rules.len()];
        for (i, (id, s)) in list.iter().map(|e| (&e.0, &e.1)).enumerate() {
            let mut reasons = Vec::new();
            if (i as u32) < policy.last {
                reasons.push("last".to_string());
            }
            if let Some(w) = policy.within
                && now.signed_duration_since(s.time) <= w
            {
                reasons.push("within".to_string());
            }
            for (k, (name, _, key)) in rules.iter().enumerate() {
                let bucket = key(&s.time);
                if left[k] > 0 && seen[k].insert(bucket) {
                    left[k] -= 1;
                    reasons.push((*name).to_string());
                }
            }
            out.push(Decision {
                id: id.to_hex(),
                group: g.clone(),
                time: s.time,
                keep: !reasons.is_empty(),
                reasons,
            });
        }
    }
    out
}
