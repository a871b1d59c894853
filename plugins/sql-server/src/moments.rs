//! `moments=<text>`: the moments a restore point's chain reaches that hold the text (the
//! end of each of its backups, newest first), offered for `stop-at` (see the SDK's
//! `found`). Each is checked the way a restore plans it; a moment between two listed
//! ones that a log covers may still be typed. The restore refuses it.

use rehydra_plugin_sdk::found::{self, Found};
use rehydra_plugin_sdk::prelude::*;

use crate::chain::{self, Backup};
use crate::model::kind_name;
use crate::tsql::show_time;

/// The ends of the backups of `history` that a restore reaches, whose time holds `text`.
pub fn plan(history: &[Backup], text: &str) -> Result<RestorePlan> {
    let needle = found::needle(text, "a moment (2026-12-01, or 2026-12-01T14)")?;
    let mut hits: Vec<&Backup> = history
        .iter()
        .filter(|b| b.ours && show_time(b.finish).to_lowercase().contains(&needle))
        .filter(|b| chain::plan(history, Some(b.finish), true).is_ok())
        .collect();
    hits.sort_by_key(|b| std::cmp::Reverse(b.finish));
    hits.dedup_by_key(|b| b.finish);
    found::listing(&hits, text, |b| {
        let at = show_time(b.finish);
        Ok(Found {
            value: at.clone(),
            title: format!("{at}: the end of the {} backup", kind_name(b.kind)),
            detail: format!("LSN {} to {}", b.first_lsn, b.last_lsn),
        })
    })
}
