#![no_main]
//! Decrypted index files: never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rehydra_core::internals::decode_index_body("fuzz", data);
});
