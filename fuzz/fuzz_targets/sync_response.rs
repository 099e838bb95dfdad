//! Fuzz target `sync_response`: see `minichain::fuzzing::sync_response` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minichain::fuzzing::sync_response(data));
