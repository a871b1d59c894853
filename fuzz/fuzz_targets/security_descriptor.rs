#![no_main]
//! The body is `rehydra_fuzzing::security_descriptor` (shared with the test suite's corpus run).
libfuzzer_sys::fuzz_target!(|data: &[u8]| rehydra_fuzzing::security_descriptor(data));
