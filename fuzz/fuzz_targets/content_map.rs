#![no_main]
//! Content maps: never panic, whatever the lines hold.
use libfuzzer_sys::fuzz_target;
use rehydra_core::MapReader;

fuzz_target!(|data: &[u8]| {
    for ev in MapReader::new(data, "fuzz").take(10_000) {
        if ev.is_err() {
            break;
        }
    }
});
