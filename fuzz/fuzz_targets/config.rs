#![no_main]
//! Repository config files: never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rehydra_core::Config::parse(data, "fuzz");
});
