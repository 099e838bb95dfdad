//! Fuzz target `block`: see `minichain::fuzzing::block` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minichain::fuzzing::block(data));
