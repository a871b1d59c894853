#![no_main]
//! Decrypted pack headers: never panic, entries always inside the pack.
use libfuzzer_sys::fuzz_target;
use rehydra_core::{internals::parse_pack_header_body, Id};

fuzz_target!(|data: &[u8]| {
    let area = 1u64 << 20;
    if let Ok(entries) = parse_pack_header_body(data, area, &Id::default()) {
        for e in entries {
            assert!(u64::from(e.offset) + u64::from(e.length) <= area);
        }
    }
});
