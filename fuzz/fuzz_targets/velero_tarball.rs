#![no_main]
//! The body is `rehydra_fuzzing::velero_tarball` (shared with the test suite's corpus run).
libfuzzer_sys::fuzz_target!(|data: &[u8]| rehydra_fuzzing::velero_tarball(data));
