//! Fuzz target `http_body`: see `minichain::fuzzing::http_body` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minichain::fuzzing::http_body(data));
