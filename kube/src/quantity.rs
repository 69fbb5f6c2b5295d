//! Resource quantities (`cpu: 500m`, `memory: 128Mi`, `cpu: 1.5`) as Kubernetes writes them:
//! a signed decimal number and a suffix, binary (`Ki`..`Ei`), decimal (`n`, `u`, `m`, `k`,
//! `M`, `G`, `T`, `P`, `E`) or an exponent (`1e3`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a quantity string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantity {0:?}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
pub struct QuantityError(pub String);

/// A validated quantity, kept as written (so it round-trips) with its exact value as a
/// fraction `numerator / denominator`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    text: String,
    numerator: i128,
    denominator: i128,
}

impl Quantity {
    /// Parses a quantity string.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let err = || QuantityError(text.to_string());
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.')))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        let (negative, digits) = match number.as_bytes().first() {
            Some(b'-') => (true, &number[1..]),
            Some(b'+') => (false, &number[1..]),
            _ => (false, number),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if (whole.is_empty() && frac.is_empty())
            || !whole
                .bytes()
                .chain(frac.bytes())
                .all(|b| b.is_ascii_digit())
            || whole.len() + frac.len() > 30
        {
            return Err(err());
        }
        let mut numerator: i128 = format!("{whole}{frac}").parse().map_err(|_| err())?;
        let mut denominator: i128 = 10i128.pow(frac.len() as u32);
        let (base, exp): (i128, i32) = match suffix {
            "" => (10, 0),
            "n" => (10, -9),
            "u" => (10, -6),
            "m" => (10, -3),
            "k" => (10, 3),
            "M" => (10, 6),
            "G" => (10, 9),
            "T" => (10, 12),
            "P" => (10, 15),
            "E" => (10, 18),
            "Ki" => (2, 10),
            "Mi" => (2, 20),
            "Gi" => (2, 30),
            "Ti" => (2, 40),
            "Pi" => (2, 50),
            "Ei" => (2, 60),
            s if s.starts_with(['e', 'E']) => {
                let e: i32 = s[1..].parse().map_err(|_| err())?;
                if !(-30..=30).contains(&e) {
                    return Err(err());
                }
                (10, e)
            }
            _ => return Err(err()),
        };
        let factor = base.pow(exp.unsigned_abs());
        if exp >= 0 {
            numerator = numerator.checked_mul(factor).ok_or_else(err)?;
        } else {
            denominator = denominator.checked_mul(factor).ok_or_else(err)?;
        }
        if negative {
            numerator = -numerator;
        }
        Ok(Quantity {
            text: text.to_string(),
            numerator,
            denominator,
        })
    }

    /// The quantity as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value in thousandths, rounded up (CPU in millicores: "500m" is 500, "1.5" is 1500).
    pub fn millis(&self) -> i128 {
        ceil_div(self.numerator * 1000, self.denominator)
    }

    /// The value rounded up to a whole number (memory in bytes: "128Mi" is 134217728).
    pub fn value(&self) -> i128 {
        ceil_div(self.numerator, self.denominator)
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.numerator < 0
    }
}

fn ceil_div(n: i128, d: i128) -> i128 {
    let q = n.div_euclid(d);
    if n.rem_euclid(d) == 0 {
        q
    } else {
        q + 1
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    /// Accepts a string or a number (`cpu: 1`, `cpu: 0.5`), as the API server does.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a quantity such as \"500m\" or \"128Mi\"")]
        enum Raw {
            Int(i64),
            Float(f64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Int(i) => i.to_string(),
            Raw::Float(f) => f.to_string(),
            Raw::Text(s) => s,
        };
        Quantity::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_in_millicores() {
        assert_eq!(Quantity::parse("500m").unwrap().millis(), 500);
        assert_eq!(Quantity::parse("1.5").unwrap().millis(), 1500);
        assert_eq!(Quantity::parse("2").unwrap().millis(), 2000);
        assert_eq!(Quantity::parse("100u").unwrap().millis(), 1);
        assert_eq!(Quantity::parse("0.1").unwrap().millis(), 100);
    }

    #[test]
    fn memory_in_bytes() {
        assert_eq!(Quantity::parse("128Mi").unwrap().value(), 128 << 20);
        assert_eq!(Quantity::parse("1Gi").unwrap().value(), 1 << 30);
        assert_eq!(Quantity::parse("1G").unwrap().value(), 1_000_000_000);
        assert_eq!(Quantity::parse("129e6").unwrap().value(), 129_000_000);
        assert_eq!(Quantity::parse("64k").unwrap().value(), 64_000);
        assert_eq!(Quantity::parse("1.5Ki").unwrap().value(), 1536);
        assert!(Quantity::parse("-1").unwrap().is_negative());
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for bad in [
            "", "abc", "1Z", "12 Mi", "1.2.3", "Mi", "1mi", "1e", "--1", ".",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} accepted");
        }
        let e = Quantity::parse("1Z").unwrap_err().to_string();
        assert!(e.contains("\"1Z\""), "{e}");
    }

    #[test]
    fn decodes_numbers_and_strings_and_round_trips() {
        let q: Quantity = serde_json::from_str("0.5").unwrap();
        assert_eq!(q.millis(), 500);
        let q: Quantity = serde_json::from_str("\"250m\"").unwrap();
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"250m\"");
        assert!(serde_json::from_str::<Quantity>("\"lots\"").is_err());
    }
}
