#![no_main]
//! The body is `rehydra_fuzzing::qcow2` (shared with the test suite's corpus run).
libfuzzer_sys::fuzz_target!(|data: &[u8]| rehydra_fuzzing::qcow2(data));
