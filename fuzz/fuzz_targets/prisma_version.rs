#![no_main]
//! See `ci_gate_fuzz::oracles::check_prisma_version` for how the bytes are read.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ci_gate_fuzz::oracles::check_prisma_version(data));
