//! `find=<text>`: the objects of a restore point whose `resource[.group]/namespace/name`
//! holds the text, offered for `objects` (see the SDK's `found`). Read from the restore
//! point's index alone; the restore refuses it.

use rehydra_plugin_sdk::found::{self, Found};
use rehydra_plugin_sdk::prelude::*;

use crate::index::Index;

/// The objects of `ix` whose name as `objects=` writes it holds `text` (any case).
pub(crate) fn plan(ix: &Index, text: &str) -> Result<RestorePlan> {
    let needle = found::needle(text, "an object's name (resource/namespace/name)")?;
    let hits: Vec<_> = ix
        .objects
        .iter()
        .map(|e| (e, named(&e.key, e.namespace.as_deref(), &e.name)))
        .filter(|(_, n)| n.to_lowercase().contains(&needle))
        .collect();
    found::listing(&hits, text, |(e, name)| {
        let place = e
            .namespace
            .as_deref()
            .map_or("cluster-wide".to_string(), |ns| {
                format!("in namespace {ns}")
            });
        Ok(Found {
            value: name.clone(),
            title: name.clone(),
            detail: format!("{} {place}", e.key),
        })
    })
}

/// An object as `objects=` names it.
fn named(key: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{key}/{ns}/{name}"),
        None => format!("{key}/{name}"),
    }
}
