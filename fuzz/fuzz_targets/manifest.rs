#![no_main]
//! Decrypted restore-point manifests: never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rehydra_core::RestorePoint::parse(data, "fuzz");
});
