//! The SQL plugins' `chain.json` (`sql-common`), read from a restore point another host
//! may have written: parsing never panics; what parses is written back and read back the
//! same; the chain rules then plan a restore to the latest moment, and to a moment inside
//! the window, without panicking, and a plan's steps lie inside the history.

use sql_common::chain;
use sql_common::model::ChainDoc;

/// The body.
pub fn sql_chain(data: &[u8]) {
    let Ok(doc) = ChainDoc::parse(data) else {
        return;
    };
    let written = serde_json::to_vec(&doc).expect("a parsed chain serialises");
    let back = ChainDoc::parse(&written)
        .unwrap_or_else(|e| panic!("the writer's own chain.json does not parse ({e:?})"));
    assert_eq!(
        serde_json::to_vec(&back).expect("serialises"),
        written,
        "round trip"
    );
    let history = doc.history().expect("parse checked every backup");
    for only_ours in [false, true] {
        if let Ok(p) = chain::plan(&history, None, only_ours) {
            let _ = p;
        }
        if let Some((from, to)) = chain::restorable_window(&history, only_ours) {
            assert!(from <= to, "window {from}..{to}");
            let mid = from + (to - from) / 2;
            let _ = chain::plan(&history, Some(mid), only_ours);
        }
        let ranges = chain::restorable_ranges(&history, only_ours);
        assert!(
            ranges.windows(2).all(|w| w[0].1 < w[1].0),
            "ranges sorted and disjoint: {ranges:?}"
        );
    }
}
