//! Fuzz target: `credpool::fuzzing::scenario_parse` (see that function for the contract it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| credpool::fuzzing::scenario_parse(data));
