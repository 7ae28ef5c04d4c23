//! The shipped 429 handler's reading of `quotaResetDelay`: a unit per pattern, `m` read as minutes
//! even where it begins `ms`.
//!
//! The shipped code took the delay apart with three searches, `(\d+)h`, `(\d+)m` and
//! `([\d.]+)s`, and summed what they found. On a Go duration below a second, such as
//! `"479.417207ms"` (real 429 bodies carry them), `(\d+)m` finds `417207m`, and `s` (preceded by
//! `m`) finds nothing: 417,207 minutes, about 290 days. The 429 handler used that delay only when
//! the body had no `quotaResetTimeStamp`; the policy then bans the series for twice it (about 580
//! days). credpool reads every component with its own unit ([`crate::model::parse_go_duration`]).
//!
//! Only the minutes pattern is known from the reference; the hours and seconds patterns are the
//! obvious companions, and on the delays the mock sends (`"479.417207ms"`, `"1m2.5s"`) they only
//! matter in that they leave a sub-second delay at its misread minutes.

use crate::model::Outcome;

/// The first run of characters accepted by `digit` that is directly followed by `unit`, as
/// `re.search(r"(<digit>+)<unit>", text)` finds it: the leftmost match, its whole run.
fn search(text: &str, digit: impl Fn(char) -> bool, unit: char) -> Option<&str> {
    let bytes: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(at, c)) in bytes.iter().enumerate() {
        if c != unit || k == 0 || !digit(bytes[k - 1].1) {
            continue;
        }
        let start = bytes[..k]
            .iter()
            .rposition(|&(_, d)| !digit(d))
            .map_or(0, |p| bytes[p + 1].0);
        return Some(&text[start..at]);
    }
    None
}

/// The delay in milliseconds the shipped handler read from a `quotaResetDelay` text, or `None`
/// when none of its patterns matched (the handler then fell back to its default ban).
pub fn shipped_delay_ms(text: &str) -> Option<i64> {
    let whole = |unit| search(text, |c: char| c.is_ascii_digit(), unit).and_then(|n| n.parse::<i64>().ok());
    let hours = whole('h');
    let minutes = whole('m');
    let seconds = search(text, |c: char| c.is_ascii_digit() || c == '.', 's').and_then(|n| n.parse::<f64>().ok());
    if hours.is_none() && minutes.is_none() && seconds.is_none() {
        return None;
    }
    let ms = hours.unwrap_or(0).saturating_mul(3_600_000)
        + minutes.unwrap_or(0).saturating_mul(60_000)
        + (seconds.unwrap_or(0.0) * 1000.0).round() as i64;
    Some(ms)
}

/// A 429 outcome as the shipped handler understood it: with no reset timestamp, the delay is
/// what it read from `quotaResetDelay` (when the body had one). Any other outcome is unchanged.
pub fn as_shipped_read(outcome: &Outcome) -> Outcome {
    match outcome {
        Outcome::RateLimited {
            reset_at: None,
            retry_delay_ms,
            quota_reset_delay: Some(text),
        } => Outcome::RateLimited {
            reset_at: None,
            retry_delay_ms: shipped_delay_ms(text).or(*retry_delay_ms),
            quota_reset_delay: Some(text.clone()),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MS: i64 = 60_000;

    #[test]
    fn a_sub_second_delay_becomes_417207_minutes() {
        assert_eq!(shipped_delay_ms("479.417207ms"), Some(417_207 * MINUTE_MS));
        // About 290 days.
        assert_eq!(417_207 * MINUTE_MS / 86_400_000, 289);
    }

    #[test]
    fn durations_without_ms_are_read_right() {
        assert_eq!(shipped_delay_ms("1h2m3.5s"), Some(3_723_500));
        assert_eq!(shipped_delay_ms("30s"), Some(30_000));
        assert_eq!(shipped_delay_ms("26h20m43.563s"), Some(94_843_563));
        assert_eq!(shipped_delay_ms("soon"), None);
        assert_eq!(shipped_delay_ms(""), None);
    }

    #[test]
    fn the_misreading_applies_only_without_a_reset_timestamp() {
        let limited = |reset_at| Outcome::RateLimited {
            reset_at,
            retry_delay_ms: Some(480),
            quota_reset_delay: Some("479.417207ms".into()),
        };
        let Outcome::RateLimited { retry_delay_ms, .. } = as_shipped_read(&limited(None)) else {
            panic!("still a 429")
        };
        assert_eq!(retry_delay_ms, Some(417_207 * MINUTE_MS));
        assert_eq!(as_shipped_read(&limited(Some(5))), limited(Some(5)));
        assert_eq!(as_shipped_read(&Outcome::Status(503)), Outcome::Status(503));
    }
}
