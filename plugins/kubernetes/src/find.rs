//! `find=<text>`: the objects of a restore point whose `resource[.group]/namespace/name`
//! holds the text, as the plan steps (`pick:<object>`) the restore wizard offers for
//! `objects`. Read from the restore point's index alone; the restore refuses it.

use rehydra_plugin_sdk::prelude::*;

use crate::index::Index;

/// Most objects one search lists.
const FOUND_MAX: usize = 50;

/// The objects of `ix` whose name as `objects=` writes it holds `text` (any case).
pub(crate) fn plan(ix: &Index, text: &str) -> Result<RestorePlan> {
    let needle = text.trim().to_lowercase();
    if needle.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "find needs part of an object's name (resource/namespace/name) to look for",
        ));
    }
    let hits: Vec<_> = ix
        .objects
        .iter()
        .map(|e| (e, named(&e.key, e.namespace.as_deref(), &e.name)))
        .filter(|(_, n)| n.to_lowercase().contains(&needle))
        .collect();
    let mut plan = empty_plan();
    for (e, name) in hits.iter().take(FOUND_MAX) {
        let place = e
            .namespace
            .as_deref()
            .map_or("cluster-wide".to_string(), |ns| {
                format!("in namespace {ns}")
            });
        plan.steps.push(Step::new(
            &format!("pick:{name}"),
            name,
            format!("{} {place}", e.key),
        ));
    }
    if hits.len() > FOUND_MAX {
        plan.warnings.push(format!(
            "{} more objects hold `{}`; the first {FOUND_MAX} are listed: narrow the search",
            hits.len() - FOUND_MAX,
            text.trim()
        ));
    }
    if hits.is_empty() {
        plan.warnings.push(format!(
            "no object of the restore point holds `{}`",
            text.trim()
        ));
    }
    Ok(plan)
}

/// An object as `objects=` names it.
fn named(key: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{key}/{ns}/{name}"),
        None => format!("{key}/{name}"),
    }
}
