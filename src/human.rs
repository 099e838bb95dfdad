//! Numbers as an operator reads them in logs and CLI output: rates, durations, sizes and
//! large counts, each with its unit.

/// A hash rate with its unit: `812 H/s`, `25.10 MH/s`.
pub fn rate(per_sec: f64) -> String {
    scaled(per_sec, 1000.0, &["H/s", "kH/s", "MH/s", "GH/s", "TH/s"])
}

/// Bytes with a binary unit: `512 B`, `1.50 MiB`.
pub fn bytes(n: u64) -> String {
    scaled(n as f64, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"])
}

/// A large count in scientific notation once it stops being readable: `42`, `1.23e9`.
pub fn count(x: f64) -> String {
    if x < 1e6 { format!("{x:.0}") } else { format!("{x:.2e}") }
}

/// `secs` as `45 s`, `3 min 20 s`, `2 h 05 min`, `3 d 04 h`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        3600..86400 => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {:02} h", secs / 86400, secs % 86400 / 3600),
    }
}

fn scaled(mut value: f64, step: f64, units: &[&str]) -> String {
    let mut unit = 0;
    while value >= step && unit < units.len() - 1 {
        value /= step;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", units[0])
    } else {
        format!("{value:.2} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_read_with_their_unit() {
        assert_eq!(super::rate(812.4), "812 H/s");
        assert_eq!(super::rate(25_104_000.0), "25.10 MH/s");
        assert_eq!(super::rate(1.5e12), "1.50 TH/s");
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(3 * 1024 * 1024 / 2), "1.50 MiB");
        assert_eq!(super::count(42.0), "42");
        assert_eq!(super::count(1_234_000_000.0), "1.23e9");
        assert_eq!(super::duration(45), "45 s");
        assert_eq!(super::duration(200), "3 min 20 s");
        assert_eq!(super::duration(7500), "2 h 05 min");
        assert_eq!(super::duration(3 * 86400 + 4 * 3600), "3 d 04 h");
    }
}
