//! Fuzz target: `credpool::fuzzing::accounts_round_trip` (see that function for the contract it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| credpool::fuzzing::accounts_round_trip(data));
