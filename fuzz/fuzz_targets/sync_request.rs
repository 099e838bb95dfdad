//! Fuzz target `sync_request`: see `minichain::fuzzing::sync_request` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minichain::fuzzing::sync_request(data));
