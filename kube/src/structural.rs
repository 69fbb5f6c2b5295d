//! Admission checks on objects written through the API: the structural ones every object gets
//! here (names, labels, annotations, as the API server's `ObjectMeta` validation words them),
//! and the hook type the typed validators in `crate::kube` plug in through
//! the validators the daemon is assembled with.

use serde_json::Value;

use crate::kinds::{self, Kind};
use crate::names;

/// One invalid field, as the `causes` of a Kubernetes `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The field path (`spec.containers[0].image`).
    pub field: String,
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, ...
    pub reason: String,
    /// What is wrong (`Invalid value: "x": ...`, `Required value`).
    pub message: String,
}

impl Cause {
    /// An invalid value at `field`.
    pub fn invalid(field: impl Into<String>, value: &str, why: &str) -> Cause {
        Cause {
            field: field.into(),
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {value:?}: {why}"),
        }
    }

    /// A missing required value at `field`.
    pub fn required(field: impl Into<String>) -> Cause {
        Cause {
            field: field.into(),
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
        }
    }
}

/// The `fieldValidation` a client asked for (kubectl sends `Strict` by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Unknown fields are dropped silently.
    Ignore,
    /// Unknown fields are dropped with a warning.
    #[default]
    Warn,
    /// Unknown fields are an error.
    Strict,
}

impl FieldValidation {
    /// Parses the query parameter (`Strict`, `Warn`, `Ignore`, case-insensitive).
    pub fn parse(s: &str) -> Option<FieldValidation> {
        match s.to_ascii_lowercase().as_str() {
            "strict" => Some(FieldValidation::Strict),
            "warn" => Some(FieldValidation::Warn),
            "ignore" => Some(FieldValidation::Ignore),
            _ => None,
        }
    }
}

/// Why an object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Fields have invalid values (HTTP 422 `Invalid`).
    #[error("invalid: {}", .0.iter().map(|c| format!("{}: {}", c.field, c.message)).collect::<Vec<_>>().join(", "))]
    Invalid(Vec<Cause>),
    /// Fields not in the schema, under strict field validation (HTTP 400 `BadRequest`); each a
    /// path such as `spec.containers[0].images`.
    #[error("strict decoding error: {}", .0.iter().map(|f| format!("unknown field {f:?}")).collect::<Vec<_>>().join(", "))]
    UnknownFields(Vec<String>),
}

/// A validator plugged into the API (see the validators the daemon is assembled with).
/// A defaulter plugged into the API: fills in what the API server defaults before validation.
pub type Defaulter = fn(&'static Kind, &mut Value);

/// A validator plugged into the API.
pub type Validator = fn(&'static Kind, &Value, FieldValidation) -> Result<(), ValidationError>;

/// What the store runs on every create and update of objects of `kind`, under its lock (see
/// the allocators the store is opened with): it hands out values that must be unique across objects
/// (a Service's cluster IP and node ports) or refuses the ones asked for that another holds.
#[derive(Clone, Copy)]
pub struct Allocator {
    /// The kind it allocates for.
    pub kind: &'static Kind,
    /// Gets the object being written, the stored one it replaces (`None` on create) and every
    /// other stored object of the kind, in every namespace.
    pub allocate: AllocateFn,
}

/// [`Allocator::allocate`]: `(object, previous, others)`.
pub type AllocateFn = fn(&mut Value, Option<&Value>, &[&Value]) -> Result<(), ValidationError>;

/// The checks every object gets: a valid name for its kind (Namespaces and Services: DNS
/// labels; others: DNS subdomains), valid label keys and values, valid annotation keys.
pub fn structural(kind: &'static Kind, object: &Value) -> Result<(), ValidationError> {
    let mut causes = Vec::new();
    let meta = &object["metadata"];
    let name = meta["name"].as_str().unwrap_or_default();
    if !name.is_empty() {
        let ok = if std::ptr::eq(kind, &kinds::NAMESPACE) {
            names::dns1123_label(name)
        } else if std::ptr::eq(kind, &kinds::SERVICE) {
            names::dns1035_label(name)
        } else {
            names::dns1123_subdomain(name)
        };
        if let Err(why) = ok {
            causes.push(Cause::invalid("metadata.name", name, &why.to_string()));
        }
    }
    if let Some(ns) = meta["namespace"].as_str() {
        if kind.namespaced && !ns.is_empty() {
            if let Err(why) = names::dns1123_label(ns) {
                causes.push(Cause::invalid("metadata.namespace", ns, &why.to_string()));
            }
        }
    }
    match &meta["labels"] {
        Value::Null => {}
        Value::Object(labels) => {
            for (k, v) in labels {
                if let Err(why) = names::qualified_name(k) {
                    causes.push(Cause::invalid("metadata.labels", k, &why.to_string()));
                }
                match v.as_str() {
                    Some(v) => {
                        if let Err(why) = names::label_value(v) {
                            causes.push(Cause::invalid(
                                format!("metadata.labels[{k}]"),
                                v,
                                &why.to_string(),
                            ));
                        }
                    }
                    None => causes.push(Cause::invalid(
                        format!("metadata.labels[{k}]"),
                        &v.to_string(),
                        "label values must be strings",
                    )),
                }
            }
        }
        other => causes.push(Cause::invalid(
            "metadata.labels",
            &other.to_string(),
            "must be a map of strings",
        )),
    }
    match &meta["annotations"] {
        Value::Null => {}
        Value::Object(annotations) => {
            for (k, v) in annotations {
                if let Err(why) = names::qualified_name(k) {
                    causes.push(Cause::invalid("metadata.annotations", k, &why.to_string()));
                }
                if !v.is_string() {
                    causes.push(Cause::invalid(
                        format!("metadata.annotations[{k}]"),
                        &v.to_string(),
                        "annotation values must be strings",
                    ));
                }
            }
        }
        other => causes.push(Cause::invalid(
            "metadata.annotations",
            &other.to_string(),
            "must be a map of strings",
        )),
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ValidationError::Invalid(causes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_the_api_server() {
        let ok = json!({"metadata": {"name": "web-1.example", "labels": {"app.kubernetes.io/name": "web", "v": ""}}});
        assert_eq!(structural(&kinds::CONFIG_MAP, &ok), Ok(()));
        let bad = json!({"metadata": {"name": "Web_1"}});
        let Err(ValidationError::Invalid(causes)) = structural(&kinds::CONFIG_MAP, &bad) else {
            panic!("upper case name accepted");
        };
        assert_eq!(causes[0].field, "metadata.name");
        let svc = json!({"metadata": {"name": "1svc"}});
        assert!(structural(&kinds::SERVICE, &svc).is_err());
        let ns = json!({"metadata": {"name": "a.b"}});
        assert!(structural(&kinds::NAMESPACE, &ns).is_err());
    }

    #[test]
    fn labels_are_checked() {
        let bad = json!({"metadata": {"name": "x", "labels": {"bad key": "v", "k": "-v", "n": 3}}});
        let Err(ValidationError::Invalid(causes)) = structural(&kinds::POD, &bad) else {
            panic!("bad labels accepted");
        };
        let fields: Vec<_> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.labels",
                "metadata.labels[k]",
                "metadata.labels[n]"
            ]
        );
    }
}
