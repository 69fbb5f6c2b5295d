//! `IntOrString`: a port (`targetPort: 8000` or `targetPort: http`) or an amount
//! (`maxSurge: 1` or `maxSurge: 25%`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An integer or a string, as JSON spells either.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged, expecting = "an integer or a string")]
pub enum IntOrString {
    /// A number.
    Int(i32),
    /// A name, or a percentage such as "25%".
    String(String),
}

impl Default for IntOrString {
    /// 0, as Go's zero value.
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(i) => write!(f, "{i}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}

impl IntOrString {
    /// The percentage of a string such as "25%", if it is one.
    pub fn percent(&self) -> Option<i64> {
        match self {
            IntOrString::Int(_) => None,
            IntOrString::String(s) => s.strip_suffix('%')?.parse().ok(),
        }
    }

    /// Resolves an amount against `total` as the Deployment controller does: an integer is
    /// itself, a percentage is rounded up (`round_up`, maxSurge) or down (maxUnavailable).
    /// `None` for a string that is no percentage.
    pub fn scaled(&self, total: i32, round_up: bool) -> Option<i32> {
        match self {
            IntOrString::Int(i) => Some(*i),
            IntOrString::String(_) => {
                let p = self.percent()?;
                let product = p * i64::from(total);
                let v = if round_up {
                    (product + 99).div_euclid(100)
                } else {
                    product.div_euclid(100)
                };
                i32::try_from(v).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_as_kubernetes() {
        let p = IntOrString::String("25%".into());
        assert_eq!(p.scaled(10, true), Some(3));
        assert_eq!(p.scaled(10, false), Some(2));
        assert_eq!(p.scaled(4, true), Some(1));
        assert_eq!(IntOrString::Int(2).scaled(10, false), Some(2));
        assert_eq!(IntOrString::String("x".into()).scaled(10, false), None);
    }

    #[test]
    fn decodes_either_form() {
        let i: IntOrString = serde_json::from_str("8000").unwrap();
        assert_eq!(i, IntOrString::Int(8000));
        let s: IntOrString = serde_json::from_str("\"http\"").unwrap();
        assert_eq!(s.to_string(), "http");
        assert!(serde_json::from_str::<IntOrString>("true").is_err());
    }
}
