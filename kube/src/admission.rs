//! The typed validator the daemon runs on every create, update and patch
//! (`the validators the daemon is assembled with`): strict decoding, defaulting and validation, answered
//! in the daemon's terms (HTTP 400 for unknown fields under `fieldValidation=Strict`, 422
//! with one cause per invalid field otherwise).

use serde_json::Value;

use super::field::{FieldError, FieldErrors};
use super::object::Object;
use crate::kinds::Kind;
use crate::structural::{Cause, FieldValidation, ValidationError};

/// Most unknown fields one object may have before berth stops looking for more.
const MAX_UNKNOWN: usize = 64;

/// Fills the API server's defaults into `object` of `kind` (the daemon's defaulter hook):
/// fields it leaves unset get Kubernetes' values (`restartPolicy: Always`, `protocol: TCP`,
/// a Deployment's strategy, ...). Nothing else changes: unknown fields stay for the
/// validator to judge, and an object that does not decode is left as it is.
pub fn default(kind: &'static Kind, object: &mut Value) {
    if !super::object::is_modelled(kind.kind) {
        return;
    }
    let Ok((mut decoded, _)) = decode_lenient(object.clone()) else {
        return;
    };
    decoded.apply_defaults();
    if let Object::Secret(_) = decoded {
        // stringData is folded by the API itself; only `type` is defaulted here.
        if object.get("type").is_none() {
            object["type"] = "Opaque".into();
        }
        return;
    }
    fill_missing(object, decoded.to_value());
}

/// Adds what `defaults` has and `target` lacks, member by member and item by item.
fn fill_missing(target: &mut Value, defaults: Value) {
    match (target, defaults) {
        (Value::Object(t), Value::Object(d)) => {
            for (k, v) in d {
                match t.get_mut(&k) {
                    Some(existing) => fill_missing(existing, v),
                    None => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(d)) if t.len() == d.len() => {
            for (item, default) in t.iter_mut().zip(d) {
                fill_missing(item, default);
            }
        }
        _ => {}
    }
}

/// Decodes `value`, dropping unknown fields; returns the object and the paths dropped.
fn decode_lenient(mut value: Value) -> Result<(Object, Vec<String>), Vec<FieldError>> {
    let mut unknown = Vec::new();
    loop {
        match Object::from_value(value.clone()) {
            Ok(o) => return Ok((o, unknown)),
            Err(FieldErrors(errors)) => {
                let field = match errors.as_slice() {
                    [e] if e.message.starts_with("unknown field ")
                        && unknown.len() < MAX_UNKNOWN =>
                    {
                        e.path.clone()
                    }
                    _ => return Err(errors),
                };
                if !remove(&mut value, &field) {
                    return Err(errors);
                }
                unknown.push(field);
            }
        }
    }
}

/// Validates `object` of `kind` as the API server would. Unknown fields are an error under
/// `Strict` and otherwise ignored (the object is checked without them); kinds berth has no
/// typed model for (events) pass.
pub fn validate(
    kind: &'static Kind,
    object: &Value,
    validation: FieldValidation,
) -> Result<(), ValidationError> {
    if !super::object::is_modelled(kind.kind) {
        return Ok(());
    }
    let (decoded, unknown) = decode_lenient(object.clone()).map_err(invalid)?;
    if validation == FieldValidation::Strict && !unknown.is_empty() {
        return Err(ValidationError::UnknownFields(unknown));
    }
    let mut decoded = decoded;
    decoded.apply_defaults();
    decoded.validate().map_err(|FieldErrors(e)| invalid(e))
}

fn invalid(errors: Vec<FieldError>) -> ValidationError {
    ValidationError::Invalid(
        errors
            .into_iter()
            .map(|e| {
                let reason = [
                    ("Required value", "FieldValueRequired"),
                    ("Invalid value", "FieldValueInvalid"),
                    ("Unsupported value", "FieldValueNotSupported"),
                    ("Duplicate value", "FieldValueDuplicate"),
                    ("Forbidden", "FieldValueForbidden"),
                    ("Not found", "FieldValueNotFound"),
                ]
                .iter()
                .find(|(prefix, _)| e.message.starts_with(prefix))
                .map_or("FieldValueTypeInvalid", |(_, r)| r);
                Cause {
                    field: e.path,
                    reason: reason.to_string(),
                    message: e.message,
                }
            })
            .collect(),
    )
}

/// Removes the member at a field path made of object keys and `[i]` indexes.
fn remove(value: &mut Value, path: &str) -> bool {
    let mut segments: Vec<&str> = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            segments.push(&rest[..i]);
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                segments.push(&rest[..=end]);
                rest = &rest[end + 1..];
            }
        } else {
            segments.push(rest);
        }
    }
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut here = value;
    for seg in parents {
        let next = match seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(i) => i.parse::<usize>().ok().and_then(|i| here.get_mut(i)),
            None => here.get_mut(*seg),
        };
        match next {
            Some(n) => here = n,
            None => return false,
        }
    }
    here.as_object_mut()
        .is_some_and(|m| m.remove(*last).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds;
    use serde_json::json;

    fn pod(extra: Value) -> Value {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        p["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        p
    }

    #[test]
    fn unknown_fields_by_validation_mode() {
        let typo = pod(json!({"images": "x", "colour": "blue"}));
        assert_eq!(
            validate(&kinds::POD, &typo, FieldValidation::Strict),
            Err(ValidationError::UnknownFields(vec![
                "spec.containers[0].images".to_string(),
                "spec.containers[0].colour".to_string()
            ]))
        );
        assert_eq!(
            validate(&kinds::POD, &typo, FieldValidation::Ignore),
            Ok(())
        );
        assert_eq!(
            validate(&kinds::POD, &pod(json!({})), FieldValidation::Strict),
            Ok(())
        );
    }

    #[test]
    fn invalid_values_become_causes() {
        let bad = pod(json!({"ports": [{"containerPort": 0}]}));
        let Err(ValidationError::Invalid(causes)) =
            validate(&kinds::POD, &bad, FieldValidation::Strict)
        else {
            panic!("port 0 accepted")
        };
        assert_eq!(causes[0].field, "spec.containers[0].ports[0].containerPort");
        assert_eq!(causes[0].reason, "FieldValueInvalid");
        let wrong = pod(json!({"ports": "80"}));
        let Err(ValidationError::Invalid(causes)) =
            validate(&kinds::POD, &wrong, FieldValidation::Ignore)
        else {
            panic!("string ports accepted")
        };
        assert_eq!(causes[0].reason, "FieldValueTypeInvalid");
        assert_eq!(causes[0].message, "expected a list, got string \"80\"");
    }

    #[test]
    fn defaults_fill_only_what_is_unset() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}},
                    "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i", "colour": "x",
                        "ports": [{"containerPort": 80}]}]}}}});
        default(&kinds::DEPLOYMENT, &mut d);
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["colour"], "x", "unknown fields stay for the validator");
        assert_eq!(
            validate(&kinds::DEPLOYMENT, &d, FieldValidation::Strict),
            Err(ValidationError::UnknownFields(vec![
                "spec.template.spec.containers[0].colour".to_string()
            ]))
        );
        let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}]}});
        default(&kinds::SERVICE, &mut svc);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        let mut broken = json!({"apiVersion": "v1", "kind": "Service", "spec": "x"});
        default(&kinds::SERVICE, &mut broken);
        assert_eq!(broken["spec"], "x");
    }

    #[test]
    fn paths_remove_members() {
        let mut v = json!({"a": {"b": [{"c": 1, "d": 2}]}});
        assert!(remove(&mut v, "a.b[0].c"));
        assert_eq!(v, json!({"a": {"b": [{"d": 2}]}}));
        assert!(!remove(&mut v, "a.b[3].d"));
        assert!(!remove(&mut v, "x.y"));
    }
}
