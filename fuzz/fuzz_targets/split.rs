#![no_main]
//! See `ci_gate_fuzz::oracles::check_split`: the input is the file's text (not UTF-8: not read).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        ci_gate_fuzz::oracles::check_split(text);
    }
});
