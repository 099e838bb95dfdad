//! Fuzz target `stored`: see `minichain::fuzzing::stored` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minichain::fuzzing::stored(data));
