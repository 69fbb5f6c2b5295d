//! Label and field selectors in their query-string form (`app=web,tier!=db,env in (a,b),!old`
//! and `metadata.name=web`), as `?labelSelector=` and `?fieldSelector=` and `berth get -l` take
//! them. Objects are `serde_json::Value`s, so a field selector walks any dotted path.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::selector::{Op, Requirement};

/// A selector that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{which} selector {selector:?}: {reason}")]
pub struct SelectorError {
    /// `label` or `field`.
    pub which: &'static str,
    /// The selector as given.
    pub selector: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A conjunction of label requirements and field requirements; the empty selector matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses a label selector (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`).
    pub fn labels(selector: &str) -> Result<Self, SelectorError> {
        Ok(Selector {
            labels: parse_labels(selector)?,
            fields: Vec::new(),
        })
    }

    /// Adds the requirements of a field selector (`metadata.name=web,status.phase!=Failed`).
    pub fn with_fields(mut self, selector: &str) -> Result<Self, SelectorError> {
        let err = |reason: &str| SelectorError {
            which: "field",
            selector: selector.to_string(),
            reason: reason.to_string(),
        };
        for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (key, op, value) = if let Some((k, v)) = term.split_once("!=") {
                (k, Op::NotIn, v)
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, Op::In, v)
            } else {
                return Err(err("expected FIELD=VALUE or FIELD!=VALUE"));
            };
            if key.trim().is_empty() {
                return Err(err("empty field name"));
            }
            let values = BTreeSet::from([value.to_string()]);
            self.fields.push(Requirement::new(key.trim(), op, values));
        }
        Ok(self)
    }

    /// Adds `key=value` label requirements (a `matchLabels` map).
    pub fn with_match_labels<'a>(
        mut self,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        for (k, v) in labels {
            self.labels.push(Requirement::equals(k, v));
        }
        self
    }

    /// Whether the selector has no requirement at all.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether `object` (with `metadata.labels`) satisfies every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        self.labels
            .iter()
            .all(|r| r.matches_value(labels.and_then(|l| l.get(r.key())).and_then(Value::as_str)))
            && self.fields.iter().all(|r| {
                let value = field_value(object, r.key());
                r.matches_value(value.as_deref())
            })
    }
}

/// The value at a dotted path as the API server compares it: strings as they are, numbers and
/// booleans printed; a missing field is the empty string.
fn field_value(object: &Value, path: &str) -> Option<String> {
    let mut v = object;
    for part in path.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return Some(String::new()),
        }
    }
    Some(match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

fn parse_labels(selector: &str) -> Result<Vec<Requirement>, SelectorError> {
    let err = |reason: String| SelectorError {
        which: "label",
        selector: selector.to_string(),
        reason,
    };
    let mut out = Vec::new();
    for term in split_terms(selector) {
        let term = term.trim();
        if term.is_empty() {
            continue;
        }
        let req = if let Some(key) = term.strip_prefix('!') {
            Requirement::new(key.trim(), Op::DoesNotExist, BTreeSet::new())
        } else if let Some((k, v)) = term.split_once("!=") {
            Requirement::new(k.trim(), Op::NotIn, BTreeSet::from([v.trim().to_string()]))
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            Requirement::equals(k.trim(), v.trim())
        } else if let Some((k, rest)) = split_set_op(term) {
            let (negate, set) = rest;
            let set = set
                .trim()
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(|| err(format!("{term:?}: expected a set in parentheses")))?;
            let values: BTreeSet<String> = set
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            let op = if negate { Op::NotIn } else { Op::In };
            Requirement::new(k, op, values)
        } else {
            Requirement::new(term, Op::Exists, BTreeSet::new())
        };
        if req.key().is_empty() || req.key().contains(char::is_whitespace) {
            return Err(err(format!("{term:?}: invalid label key {:?}", req.key())));
        }
        out.push(req);
    }
    Ok(out)
}

/// `key in (..)` / `key notin (..)`: the key and (negated, set text).
fn split_set_op(term: &str) -> Option<(&str, (bool, &str))> {
    let mut words = term.splitn(2, char::is_whitespace);
    let key = words.next()?.trim();
    let rest = words.next()?.trim_start();
    if let Some(set) = rest.strip_prefix("notin") {
        Some((key, (true, set)))
    } else {
        rest.strip_prefix("in").map(|set| (key, (false, set)))
    }
}

/// Splits on commas outside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn equality_and_sets() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        assert!(Selector::labels("app=web").unwrap().matches(&o));
        assert!(Selector::labels("app==web,tier!=db").unwrap().matches(&o));
        assert!(!Selector::labels("app=db").unwrap().matches(&o));
        assert!(Selector::labels("tier in (front, back)")
            .unwrap()
            .matches(&o));
        assert!(!Selector::labels("tier notin (front)").unwrap().matches(&o));
        assert!(Selector::labels("app,!old").unwrap().matches(&o));
        assert!(!Selector::labels("!app").unwrap().matches(&o));
        assert!(Selector::labels("").unwrap().matches(&o));
    }

    #[test]
    fn fields() {
        let o = obj(json!({}));
        let s = Selector::everything()
            .with_fields("metadata.name=web")
            .unwrap();
        assert!(s.matches(&o));
        let s = Selector::everything()
            .with_fields("metadata.name=other")
            .unwrap();
        assert!(!s.matches(&o));
        let s = Selector::everything()
            .with_fields("status.phase!=Failed")
            .unwrap();
        assert!(s.matches(&o));
        assert!(Selector::everything().with_fields("nonsense").is_err());
    }

    #[test]
    fn bad_selectors() {
        assert!(Selector::labels("a in x").is_err());
        assert!(Selector::labels("bad key=1").is_err());
    }
}
