#![no_main]
//! See `ci_gate_fuzz::oracles::check_squawk`: the input is the file's text (not UTF-8: not read).

use libfuzzer_sys::fuzz_target;

/// libFuzzer's panic hook aborts on every panic, even one ci-gate catches. Panics raised inside
/// squawk-syntax are caught by the static layer (the file is then "not linted": see
/// `squawk_unreachable_on_malformed_sql_is_not_a_crash`), so they are not crashes here; any
/// other panic still aborts.
fn contain_squawk_panics() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_squawk = info
            .location()
            .is_some_and(|l| l.file().contains("squawk-syntax") || l.file().contains("squawk_syntax"));
        if !in_squawk {
            abort(info);
        }
    }));
}

fuzz_target!(init: contain_squawk_panics(), |data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        ci_gate_fuzz::oracles::check_squawk(text);
    }
});
