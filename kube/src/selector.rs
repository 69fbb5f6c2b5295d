//! Label selectors of typed objects (`matchLabels` and `matchExpressions`, a Service's
//! `selector`), checked as the API server checks them and matched against label maps. The
//! query-string form (`-l`, `?labelSelector=`) is `crate::list_selector`, which parses into
//! the same [`Requirement`]s.

use std::collections::BTreeSet;

use super::field::{child, index, FieldError, FieldErrors};
use super::meta::{LabelSelector, StringMap};
use super::names;

/// A requirement's operator. `a=b` is `In {b}` and `a!=b` is `NotIn {b}`: the API server's
/// equality operators match exactly as the one-value sets do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// The value is one of the values (also every `matchLabels` entry).
    In,
    /// The value is absent or none of the values.
    NotIn,
    /// The value is present.
    Exists,
    /// The value is absent.
    DoesNotExist,
}

/// One requirement on one label (or, in a field selector, one field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirement {
    key: String,
    op: Op,
    values: BTreeSet<String>,
}

impl Requirement {
    /// A requirement on `key`; `values` only matter for `In` and `NotIn`.
    pub(crate) fn new(key: impl Into<String>, op: Op, values: BTreeSet<String>) -> Self {
        Requirement {
            key: key.into(),
            op,
            values,
        }
    }

    /// `key` has exactly `value`.
    pub(crate) fn equals(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(key, Op::In, BTreeSet::from([value.into()]))
    }

    /// The label key or field path this requirement is on.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Whether the requirement holds for the key's value (`None` when it is absent).
    pub(crate) fn matches_value(&self, value: Option<&str>) -> bool {
        match self.op {
            Op::In => value.is_some_and(|v| self.values.contains(v)),
            Op::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
        }
    }

    fn matches(&self, labels: &StringMap) -> bool {
        self.matches_value(labels.get(&self.key).map(String::as_str))
    }
}

/// A parsed label selector: requirements, all of which must hold. No requirements matches
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Whether every requirement holds for `labels`.
    pub fn matches(&self, labels: &StringMap) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector has no requirements (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The selector of an object's `selector` field, checked as the API server checks it
    /// (keys, values, operators with or without values). `path` names the field in errors.
    pub fn from_label_selector(s: &LabelSelector, path: &str) -> Result<Selector, FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut requirements = Vec::new();
        let labels_path = child(path, "matchLabels");
        for (k, v) in &s.match_labels {
            if let Err(e) = names::qualified_name(k) {
                errors.push(FieldError::invalid(&labels_path, k, &e.to_string()));
            }
            if let Err(e) = names::label_value(v) {
                errors.push(FieldError::invalid(&labels_path, v, &e.to_string()));
            }
            requirements.push(Requirement::equals(k, v));
        }
        let exprs_path = child(path, "matchExpressions");
        for (i, r) in s.match_expressions.iter().enumerate() {
            let p = index(&exprs_path, i);
            if let Err(e) = names::qualified_name(&r.key) {
                errors.push(FieldError::invalid(
                    child(&p, "key"),
                    &r.key,
                    &e.to_string(),
                ));
            }
            let op = match r.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => {
                    errors.push(FieldError::unsupported(
                        child(&p, "operator"),
                        other,
                        &["DoesNotExist", "Exists", "In", "NotIn"],
                    ));
                    continue;
                }
            };
            match op {
                Op::In | Op::NotIn if r.values.is_empty() => {
                    errors.push(FieldError::required(child(&p, "values")))
                }
                Op::Exists | Op::DoesNotExist if !r.values.is_empty() => {
                    errors.push(FieldError::forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ))
                }
                _ => {}
            }
            for (j, v) in r.values.iter().enumerate() {
                if let Err(e) = names::label_value(v) {
                    errors.push(FieldError::invalid(
                        index(&child(&p, "values"), j),
                        v,
                        &e.to_string(),
                    ));
                }
            }
            requirements.push(Requirement::new(
                &r.key,
                op,
                r.values.iter().cloned().collect(),
            ));
        }
        errors.into_result()?;
        Ok(Selector { requirements })
    }

    /// A selector matching exactly these labels (a Service's `selector`).
    pub fn from_labels(labels: &StringMap) -> Selector {
        Selector {
            requirements: labels
                .iter()
                .map(|(k, v)| Requirement::equals(k, v))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> StringMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn from_objects() {
        let ls = LabelSelector {
            match_labels: labels(&[("app", "web")]),
            match_expressions: vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: vec!["front".into(), "edge".into()],
                },
                LabelSelectorRequirement {
                    key: "legacy".into(),
                    operator: "DoesNotExist".into(),
                    values: vec![],
                },
                LabelSelectorRequirement {
                    key: "track".into(),
                    operator: "NotIn".into(),
                    values: vec!["canary".into()],
                },
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "Exists".into(),
                    values: vec![],
                },
            ],
        };
        let s = Selector::from_label_selector(&ls, "spec.selector").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "edge"), ("env", "p")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "back"), ("env", "p")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "edge")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "edge"),
            ("env", "p"),
            ("legacy", "1")
        ])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "edge"),
            ("env", "p"),
            ("track", "canary")
        ])));
        assert!(
            Selector::from_label_selector(&LabelSelector::default(), "s")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn invalid_objects_name_the_field() {
        let ls = LabelSelector {
            match_labels: StringMap::new(),
            match_expressions: vec![
                LabelSelectorRequirement {
                    key: "a".into(),
                    operator: "Equals".into(),
                    values: vec![],
                },
                LabelSelectorRequirement {
                    key: "b".into(),
                    operator: "In".into(),
                    values: vec![],
                },
                LabelSelectorRequirement {
                    key: "c".into(),
                    operator: "Exists".into(),
                    values: vec!["x".into()],
                },
            ],
        };
        let e = Selector::from_label_selector(&ls, "spec.selector")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("spec.selector.matchExpressions[0].operator: Unsupported value: \"Equals\""),
            "{e}"
        );
        assert!(
            e.contains("spec.selector.matchExpressions[1].values: Required value"),
            "{e}"
        );
        assert!(
            e.contains("spec.selector.matchExpressions[2].values: Forbidden"),
            "{e}"
        );
    }
}
