//! Durations and sizes worded as Docker's CLI words them (github.com/docker/go-units:
//! `HumanDuration`, `HumanSize`, `HumanSizeWithPrecision`), down to Go's `%g` formatting, so
//! `ps`, `images` and `volume prune` print what `docker` prints.

use chrono::TimeDelta;

/// Decimal size units, as go-units names them.
const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// `Less than a second`, `1 second`, `About a minute`, `3 hours`, `2 weeks`, `2 years`:
/// go-units' `HumanDuration`, with its thresholds (hours round to the nearest, days and
/// longer round down; weeks from 14 days, months from 60 days, years from 730 days).
/// A negative duration (a clock behind) reads as less than a second, as in Go.
pub fn human_duration(d: TimeDelta) -> String {
    let seconds = d.num_seconds();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = d.num_minutes();
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (hours_f64(d) + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours_f64(d) as i64 / 24 / 365)
}

/// Go's `Duration.Hours()`: whole hours plus the rest as a fraction.
fn hours_f64(d: TimeDelta) -> f64 {
    let whole = d.num_hours();
    let rest = d - TimeDelta::hours(whole);
    whole as f64 + rest.num_nanoseconds().unwrap_or(0) as f64 / 3.6e12
}

/// `0B`, `999B`, `12.35kB`, `1.5MB`: go-units' `HumanSize`, decimal units and four
/// significant digits (Docker's `volume prune`, `system df`).
pub fn human_size(bytes: u64) -> String {
    human_size_with_precision(bytes, 4)
}

/// go-units' `HumanSizeWithPrecision`: decimal units with `precision` significant digits, as
/// Go's `%.*g` prints them (Docker's `images` uses 3: `4.26MB`, `105MB`).
pub fn human_size_with_precision(bytes: u64, precision: usize) -> String {
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < DECIMAL_UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_g(size, precision), DECIMAL_UNITS[unit])
}

/// Go's `fmt.Sprintf("%.*g", precision, v)` for a finite, non-negative `v`: `precision`
/// significant digits (ties to even), trailing zeros dropped, and the exponent form
/// (`1e+03`) when the exponent is below -4 or not below the precision.
fn go_g(v: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    // Rust's `{:e}` rounds to the requested digits exactly as Go's strconv does.
    let sci = format!("{:.*e}", precision - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let nd = digits.len() as i64;
    let dp = exp + 1;
    let prec = precision as i64;
    let eprec = if prec > nd && nd >= dp { nd } else { prec };
    if exp < -4 || exp >= eprec {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{first}{dot}{rest}e{sign}{:02}", exp.abs());
    }
    if dp <= 0 {
        format!("0.{}{digits}", "0".repeat(dp.unsigned_abs() as usize))
    } else if dp >= nd {
        format!("{digits}{}", "0".repeat((dp - nd) as usize))
    } else {
        let (int, frac) = digits.split_at(dp as usize);
        format!("{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go_units() {
        // go-units' own TestHumanDuration table.
        let s = TimeDelta::seconds;
        let m = TimeDelta::minutes;
        let h = TimeDelta::hours;
        let day = h(24);
        let week = day * 7;
        let month = day * 30;
        let year = day * 365;
        let cases = [
            (TimeDelta::milliseconds(450), "Less than a second"),
            (s(1), "1 second"),
            (s(45), "45 seconds"),
            (s(59), "59 seconds"),
            (s(60), "About a minute"),
            (m(3), "3 minutes"),
            (m(35) + s(40), "35 minutes"),
            (m(59), "59 minutes"),
            (h(1), "About an hour"),
            (h(1) + m(29), "About an hour"),
            (h(1) + m(31), "2 hours"),
            (h(1) + m(59), "2 hours"),
            (h(3) + m(29), "3 hours"),
            (h(3) + m(31), "4 hours"),
            (h(24), "24 hours"),
            (day + h(12), "36 hours"),
            (day * 2, "2 days"),
            (day * 7, "7 days"),
            (day * 13 + h(5), "13 days"),
            (week * 2, "2 weeks"),
            (week * 2 + day * 4, "2 weeks"),
            (week * 4 + day * 3, "4 weeks"),
            (month, "4 weeks"),
            (month + week * 2, "6 weeks"),
            (month * 2, "2 months"),
            (month * 3 + week, "3 months"),
            (month * 13, "13 months"),
            (month * 24, "24 months"),
            (month * 24 + week * 2, "2 years"),
            (year * 3 + month * 2, "3 years"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d}");
        }
        assert_eq!(human_duration(s(-30)), "Less than a second");
    }

    #[test]
    fn sizes_read_like_go_units() {
        // go-units' TestHumanSize and Docker's columns.
        let cases = [
            (0, "0B"),
            (999, "999B"),
            (1_000, "1kB"),
            (1_024, "1.024kB"),
            (12_345, "12.35kB"),
            (1_500_000, "1.5MB"),
            (1_000_000, "1MB"),
            (1_048_576, "1.049MB"),
            (2 * 1_000_000_000, "2GB"),
            (3_420_000_000_000, "3.42TB"),
            (5_372_000_000_000_000, "5.372PB"),
            (u64::MAX, "18.45EB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(human_size(bytes), want, "{bytes}");
        }
    }

    #[test]
    fn precision_follows_go_g() {
        assert_eq!(human_size_with_precision(4_261_000, 3), "4.26MB");
        assert_eq!(human_size_with_precision(104_857_600, 3), "105MB");
        assert_eq!(human_size_with_precision(1_500, 3), "1.5kB");
        // Rounding up to 1000 leaves %g's fixed form at three digits.
        assert_eq!(human_size_with_precision(999_600, 3), "1e+03kB");
        assert_eq!(human_size_with_precision(999_600, 4), "999.6kB");
    }

    #[test]
    fn go_g_matches_go() {
        assert_eq!(go_g(0.5, 4), "0.5");
        assert_eq!(go_g(0.000_012_34, 4), "1.234e-05");
        assert_eq!(go_g(0.000_123_4, 4), "0.0001234");
        assert_eq!(go_g(100.0, 4), "100");
        assert_eq!(go_g(1234.5, 4), "1234");
        assert_eq!(go_g(12345.0, 4), "1.234e+04");
        assert_eq!(go_g(2.5, 1), "2");
        assert_eq!(go_g(3.5, 1), "4");
    }
}
