//! Fuzz target `transaction`: see `minichain::fuzzing::transaction` for what it feeds and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| minichain::fuzzing::transaction(data));
