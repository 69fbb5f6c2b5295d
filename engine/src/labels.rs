//! Labels (`--label k=v`) on containers and pods, kept in their records, and the
//! `--filter label=k[=v]` test that `ps` and `pod ps` apply to them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A label set: key -> value (empty for `--label k`).
pub type Labels = BTreeMap<String, String>;

/// Errors parsing a label or a label filter.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// The key is empty or holds whitespace.
    #[error("label {0:?}: expected KEY=VALUE with a non-empty key without spaces")]
    Key(String),
}

fn split(spec: &str) -> Result<(String, Option<String>), LabelError> {
    let (key, value) = match spec.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (spec, None),
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(LabelError::Key(spec.to_string()));
    }
    Ok((key.to_string(), value))
}

/// Parses `--label` values (`KEY=VALUE`, or `KEY` for an empty value, as Docker); a later
/// value for a key replaces an earlier one.
pub fn parse_all<S: AsRef<str>>(specs: &[S]) -> Result<Labels, LabelError> {
    let mut labels = Labels::new();
    for spec in specs {
        let (key, value) = split(spec.as_ref())?;
        labels.insert(key, value.unwrap_or_default());
    }
    Ok(labels)
}

/// `--filter label=KEY` (the key is present) or `label=KEY=VALUE` (with that value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    key: String,
    value: Option<String>,
}

impl LabelFilter {
    /// Whether `labels` pass the filter.
    pub fn matches(&self, labels: &Labels) -> bool {
        match (labels.get(&self.key), &self.value) {
            (Some(have), Some(want)) => have == want,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

impl FromStr for LabelFilter {
    type Err = LabelError;

    fn from_str(s: &str) -> Result<Self, LabelError> {
        let (key, value) = split(s)?;
        Ok(LabelFilter { key, value })
    }
}

impl fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => f.write_str(&self.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_as_docker() {
        let l = parse_all(&["a=1", "b", "c=x=y", "a=2"]).unwrap();
        assert_eq!(l.get("a").map(String::as_str), Some("2"));
        assert_eq!(l.get("b").map(String::as_str), Some(""));
        assert_eq!(l.get("c").map(String::as_str), Some("x=y"));
        for bad in ["", "=v", "a b=1"] {
            assert!(parse_all(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filters_match_key_or_key_and_value() {
        let l = parse_all(&["tier=web", "canary"]).unwrap();
        let f = |s: &str| s.parse::<LabelFilter>().unwrap();
        assert!(f("tier").matches(&l));
        assert!(f("tier=web").matches(&l));
        assert!(!f("tier=db").matches(&l));
        assert!(f("canary=").matches(&l));
        assert!(!f("other").matches(&l));
        assert_eq!(f("tier=web").to_string(), "tier=web");
    }
}
