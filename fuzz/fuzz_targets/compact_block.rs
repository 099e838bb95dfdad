//! Fuzz target `compact_block`: see `minichain::fuzzing::compact_block` for what it feeds
//! and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minichain::fuzzing::compact_block(data));
