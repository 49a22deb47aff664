//! Human-readable units shared by every stage that writes for people (findings' evidence, the
//! report's tables): durations. A neutral module, so `check` does not reach into `report` for it.

/// "0.6 s", "41 ms", "2 min 3 s".
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::human_ms;

    #[test]
    fn durations_read_in_the_largest_useful_unit() {
        assert_eq!(human_ms(41), "41 ms");
        assert_eq!(human_ms(600), "600 ms");
        assert_eq!(human_ms(1400), "1.4 s");
        assert_eq!(human_ms(123_000), "2 min 3 s");
    }
}
