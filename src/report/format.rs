//! Numbers for people: the one place that decides how many digits a latency, a rate or a change
//! is shown with, so the HTML tables, the charts and `credpool compare` agree.
//!
//! Latencies keep microsecond resolution where it matters (a 30 µs selection is not "0 ms") and
//! drop digits that are noise on large values (2035 ms, not 2035.003 ms).

/// A latency in milliseconds for a table column headed "ms": four significant digits, at most
/// four decimals (0.1 µs), e.g. `2035`, `550.0`, `30.00`, `0.0312`.
pub fn ms(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() { "0".into() } else { format!("{v}") };
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 4) as usize;
    format!("{v:.decimals$}")
}

/// A latency with the unit that suits its size and three significant digits: `850 ns`,
/// `31.2 µs`, `1.50 ms`, `550 ms`, `3.52 s`.
pub fn duration(ms: f64) -> String {
    duration_digits(ms, 3)
}

/// A latency with four significant digits (`1.515 s`, `30.00 ms`), for tables where a prediction
/// or a reference is set beside a measurement and the fourth digit tells them apart.
pub fn duration4(ms: f64) -> String {
    duration_digits(ms, 4)
}

fn duration_digits(ms: f64, digits: i32) -> String {
    if ms == 0.0 {
        return "0".into();
    }
    let (value, unit) = if ms.abs() < 1e-3 {
        (ms * 1e6, "ns")
    } else if ms.abs() < 1.0 {
        (ms * 1e3, "µs")
    } else if ms.abs() < 1e3 {
        (ms, "ms")
    } else {
        (ms / 1e3, "s")
    };
    format!("{} {unit}", significant(value, digits))
}

/// [`duration`] without trailing zeros, for axis ticks: `5 s`, `2.5 s`, `500 ms`.
pub fn duration_tick(ms: f64) -> String {
    let d = duration(ms);
    match d.split_once(' ') {
        Some((n, unit)) if n.contains('.') => {
            format!("{} {unit}", n.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => d,
    }
}

/// `v` with `digits` significant digits (no exponent; whole numbers keep all their digits).
pub fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    format!("{v:.decimals$}")
}

/// Requests per second: `1234`, `28.4`, `0.52`.
pub fn rate(rps: f64) -> String {
    if rps >= 100.0 {
        format!("{rps:.0}")
    } else if rps >= 10.0 {
        format!("{rps:.1}")
    } else {
        format!("{rps:.2}")
    }
}

/// A relative change as a signed percentage: `+1.2%`, `-35%`, `0%`; `new` when the old value
/// was zero and the new one is not.
pub fn change(old: f64, new: f64) -> String {
    match relative_change(old, new) {
        None => "new".into(),
        Some(0.0) => "0%".into(),
        Some(r) => {
            let pct = r * 100.0;
            if pct.abs() >= 10.0 {
                format!("{pct:+.0}%")
            } else {
                format!("{pct:+.1}%")
            }
        }
    }
}

/// `(new - old) / old`; `Some(0)` when both are zero, `None` when only the old one is.
pub fn relative_change(old: f64, new: f64) -> Option<f64> {
    if old == 0.0 {
        if new == 0.0 {
            Some(0.0)
        } else {
            None
        }
    } else {
        Some((new - old) / old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_keep_microseconds_where_they_matter() {
        assert_eq!(ms(2035.003), "2035");
        assert_eq!(ms(550.0), "550.0");
        assert_eq!(ms(30.0), "30.00");
        assert_eq!(ms(0.0312), "0.0312");
        assert_eq!(ms(0.0), "0");
        assert_eq!(duration(0.00085), "850 ns");
        assert_eq!(duration(0.0312), "31.2 µs");
        assert_eq!(duration(1.5), "1.50 ms");
        assert_eq!(duration(550.0), "550 ms");
        assert_eq!(duration(3520.0), "3.52 s");
        assert_eq!(duration(125_000.0), "125 s");
        assert_eq!(duration4(1515.0), "1.515 s");
        assert_eq!(duration4(30.0), "30.00 ms");
        assert_eq!(duration_tick(5000.0), "5 s");
        assert_eq!(duration_tick(2500.0), "2.5 s");
        assert_eq!(duration_tick(500.0), "500 ms");
    }

    #[test]
    fn rates_and_changes() {
        assert_eq!(rate(28.41), "28.4");
        assert_eq!(rate(3300.0), "3300");
        assert_eq!(change(100.0, 101.23), "+1.2%");
        assert_eq!(change(100.0, 35.0), "-65%");
        assert_eq!(change(0.0, 0.0), "0%");
        assert_eq!(change(0.0, 5.0), "new");
    }
}
