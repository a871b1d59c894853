//! Parsers of the repository format: stored bytes another host may have written.

use rehydra_core::MapReader;
use rehydra_core::{Id, internals::parse_pack_header_body};

/// Repository config files: never panic.
pub fn config(data: &[u8]) {
    let _ = rehydra_core::Config::parse(data, "fuzz");
}

/// Content maps: never panic, whatever the lines hold.
pub fn content_map(data: &[u8]) {
    for ev in MapReader::new(data, "fuzz").take(10_000) {
        if ev.is_err() {
            break;
        }
    }
}

/// Decrypted index files: never panic.
pub fn index_file(data: &[u8]) {
    let _ = rehydra_core::internals::decode_index_body("fuzz", data);
}

/// Decrypted restore-point manifests: never panic.
pub fn manifest(data: &[u8]) {
    let _ = rehydra_core::RestorePoint::parse(data, "fuzz");
}

/// Decrypted pack headers: never panic, entries always inside the pack.
pub fn pack_header(data: &[u8]) {
    let area = 1u64 << 20;
    if let Ok(entries) = parse_pack_header_body(data, area, &Id::default()) {
        for e in entries {
            assert!(u64::from(e.offset) + u64::from(e.length) <= area);
        }
    }
}
