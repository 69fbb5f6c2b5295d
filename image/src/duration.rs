//! Go's duration strings, as `time.ParseDuration` reads them: an optional sign, then one or
//! more decimal numbers (with an optional fraction) each followed by a unit (`ns`, `us`, `µs`,
//! `μs`, `ms`, `s`, `m`, `h`), such as `300ms`, `-1.5h` or `2h45m`; a bare `0` is zero.
//! Docker's image config holds `Healthcheck` durations as nanoseconds parsed this way, and its
//! flags (`--health-interval`, `--since`, `HEALTHCHECK --interval`) take the same text.

/// Nanoseconds in each unit Go accepts.
const UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000), // U+00B5 micro sign
    ("μs", 1_000), // U+03BC Greek small letter mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// 2^63: the magnitude of the most negative Go duration, the bound on every partial sum.
const LIMIT: u64 = 1 << 63;

/// A duration string that Go's `time.ParseDuration` would refuse (the messages are Go's,
/// without its `time:` prefix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty, a sign alone, no digits before a unit, or a stray character.
    #[error("invalid duration {0:?}")]
    Invalid(String),
    /// A number with no unit after it (`10`, `1m30`).
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    /// A unit Go does not know (`2x`, `1d`).
    #[error("unknown unit {unit:?} in duration {duration:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration as written.
        duration: String,
    },
    /// More than Go's `time.Duration` holds (about 292 years either way).
    #[error("duration {0:?} is out of range")]
    OutOfRange(String),
}

/// Parses a Go duration into signed nanoseconds (Go's `time.Duration`), exactly as
/// `time.ParseDuration` does, fractions included (`1.5h`, `.5s`).
pub fn parse(text: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let out_of_range = || DurationError::OutOfRange(text.to_string());
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let (whole, after_whole) = leading_int(rest).ok_or_else(out_of_range)?;
        let had_whole = after_whole.len() != rest.len();
        rest = after_whole;
        let mut fraction = Fraction::default();
        let mut had_fraction = false;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (f, after_fraction) = leading_fraction(after_dot);
            had_fraction = after_fraction.len() != after_dot.len();
            fraction = f;
            rest = after_fraction;
        }
        if !had_whole && !had_fraction {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(text.to_string()));
        }
        let unit_text = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(&(_, unit)) = UNITS.iter().find(|(name, _)| *name == unit_text) else {
            return Err(DurationError::UnknownUnit {
                unit: unit_text.to_string(),
                duration: text.to_string(),
            });
        };
        if whole > LIMIT / unit {
            return Err(out_of_range());
        }
        let mut value = whole * unit;
        if fraction.digits > 0 {
            // As Go does: float64 keeps this nanosecond-exact even for fractions of hours.
            value += (fraction.digits as f64 * (unit as f64 / fraction.scale)) as u64;
            if value > LIMIT {
                return Err(out_of_range());
            }
        }
        total = total.checked_add(value).ok_or_else(out_of_range)?;
        if total > LIMIT {
            return Err(out_of_range());
        }
    }
    if negative {
        // total <= 2^63, so its negation fits (2^63 itself is i64::MIN).
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| out_of_range())
}

/// The leading `[0-9]*` of `s` and what follows; `None` when it passes 2^63.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut x: u64 = 0;
    for b in s[..len].bytes() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(b - b'0');
        if x > LIMIT {
            return None;
        }
    }
    Some((x, &s[len..]))
}

/// The digits after a decimal point, as `digits / scale`.
#[derive(Debug, Default)]
struct Fraction {
    digits: u64,
    scale: f64,
}

/// The leading `[0-9]*` of `s` as a fraction; past what a `u64` holds, further digits are
/// consumed without adding precision (Go's `leadingFraction`).
fn leading_fraction(s: &str) -> (Fraction, &str) {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut f = Fraction {
        digits: 0,
        scale: 1.0,
    };
    for b in s[..len].bytes() {
        if f.digits > (LIMIT - 1) / 10 {
            break;
        }
        let next = f.digits * 10 + u64::from(b - b'0');
        if next > LIMIT {
            break;
        }
        f.digits = next;
        f.scale *= 10.0;
    }
    (f, &s[len..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn parses_what_go_parses() {
        // Cases from Go's own time package tests.
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * SECOND),
            ("30s", 30 * SECOND),
            ("1478s", 1478 * SECOND),
            ("-5s", -5 * SECOND),
            ("+5s", 5 * SECOND),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * SECOND),
            ("5.6s", 5 * SECOND + 600_000_000),
            ("5.s", 5 * SECOND),
            (".5s", SECOND / 2),
            ("1.0s", SECOND),
            ("1.00s", SECOND),
            ("1.004s", SECOND + 4_000_000),
            ("1.0040s", SECOND + 4_000_000),
            ("100.00100s", 100 * SECOND + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * SECOND),
            ("15m", 15 * 60 * SECOND),
            ("16h", 16 * 3600 * SECOND),
            ("3h30m", (3 * 3600 + 30 * 60) * SECOND),
            ("10.5s4m", 4 * 60 * SECOND + 10 * SECOND + SECOND / 2),
            ("-2m3.4s", -(2 * 60 * SECOND + 3 * SECOND + 400_000_000)),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("39h9m14.425s", 140_954_425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * 60 * SECOND),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * 60 * SECOND),
            (
                "0.830103483285477580700h",
                49 * 60 * SECOND + 48 * SECOND + 372_539_827,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        let invalid = |s: &str| DurationError::Invalid(s.into());
        let cases = [
            ("", invalid("")),
            ("3", DurationError::MissingUnit("3".into())),
            ("1m30", DurationError::MissingUnit("1m30".into())),
            ("-", invalid("-")),
            ("s", invalid("s")),
            (".", invalid(".")),
            ("-.", invalid("-.")),
            (".s", invalid(".s")),
            ("+.s", invalid("+.s")),
            ("1d", unknown("d", "1d")),
            ("2x", unknown("x", "2x")),
            // "1.1" then ".1s": a number may not follow a number.
            ("1.1.1s", DurationError::MissingUnit("1.1.1s".into())),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Err(want), "{text}");
        }
    }

    fn unknown(unit: &str, duration: &str) -> DurationError {
        DurationError::UnknownUnit {
            unit: unit.into(),
            duration: duration.into(),
        }
    }

    #[test]
    fn overflow_is_an_error() {
        for text in [
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "-9223372036854775809ns",
            "3000000h",
            "99999999999999999999s",
        ] {
            assert_eq!(
                parse(text),
                Err(DurationError::OutOfRange(text.into())),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_name_the_text() {
        assert_eq!(
            parse("2x").unwrap_err().to_string(),
            r#"unknown unit "x" in duration "2x""#
        );
        assert_eq!(
            parse("10").unwrap_err().to_string(),
            r#"missing unit in duration "10""#
        );
    }
}
