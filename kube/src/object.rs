//! Any object berth serves: the kinds it knows ([`KINDS`]), and [`Object`], one of them decoded
//! strictly from JSON (unknown fields and wrong types are errors with their field path).

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::apps::{Deployment, ReplicaSet};
use super::config::{ConfigMap, Namespace, Secret};
use super::field::{FieldError, FieldErrors};
use super::meta::ObjectMeta;
use super::pod::Pod;
use super::service::{Endpoints, Service};
use super::storage::{PersistentVolume, PersistentVolumeClaim};

/// kind, apiVersion and whether it is namespaced, for every kind [`Object`] holds. The
/// daemon's served-kinds table (`crate::kinds`) is the one for URLs and names.
const KINDS: &[(&str, &str, bool)] = &[
    ("Pod", "v1", true),
    ("Service", "v1", true),
    ("Endpoints", "v1", true),
    ("ConfigMap", "v1", true),
    ("Secret", "v1", true),
    ("Namespace", "v1", false),
    ("PersistentVolume", "v1", false),
    ("PersistentVolumeClaim", "v1", true),
    ("ReplicaSet", "apps/v1", true),
    ("Deployment", "apps/v1", true),
];

/// Whether [`Object`] has a model for `kind`.
pub(crate) fn is_modelled(kind: &str) -> bool {
    KINDS.iter().any(|(k, _, _)| *k == kind)
}

/// One object of a kind berth serves.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    /// `v1` Pod.
    Pod(Pod),
    /// `v1` Service.
    Service(Service),
    /// `v1` Endpoints.
    Endpoints(Endpoints),
    /// `v1` ConfigMap.
    ConfigMap(ConfigMap),
    /// `v1` Secret.
    Secret(Secret),
    /// `v1` Namespace.
    Namespace(Namespace),
    /// `v1` PersistentVolume.
    PersistentVolume(PersistentVolume),
    /// `v1` PersistentVolumeClaim.
    PersistentVolumeClaim(PersistentVolumeClaim),
    /// `apps/v1` ReplicaSet.
    ReplicaSet(ReplicaSet),
    /// `apps/v1` Deployment.
    Deployment(Deployment),
}

macro_rules! each_kind {
    ($obj:expr, $o:ident => $body:expr) => {
        match $obj {
            Object::Pod($o) => $body,
            Object::Service($o) => $body,
            Object::Endpoints($o) => $body,
            Object::ConfigMap($o) => $body,
            Object::Secret($o) => $body,
            Object::Namespace($o) => $body,
            Object::PersistentVolume($o) => $body,
            Object::PersistentVolumeClaim($o) => $body,
            Object::ReplicaSet($o) => $body,
            Object::Deployment($o) => $body,
        }
    };
}

impl Object {
    /// Decodes an object from JSON as the API server does with strict field validation:
    /// `null` fields count as unset, `apiVersion` and `kind` choose the type, unknown fields
    /// and wrong types are errors naming their field path. Defaults are not applied and the
    /// values are not checked: see [`Object::apply_defaults`] and [`Object::validate`].
    pub fn from_value(mut value: Value) -> Result<Object, FieldErrors> {
        strip_nulls(&mut value);
        let Value::Object(map) = &value else {
            return Err(FieldErrors(vec![FieldError::wrong_type(
                "",
                format!("expected an object, got {}", describe(&value)),
            )]));
        };
        let text = |field: &str| -> Result<String, FieldError> {
            match map.get(field) {
                None => Err(FieldError::required(field)),
                Some(Value::String(s)) if s.is_empty() => Err(FieldError::required(field)),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(FieldError::wrong_type(
                    field,
                    format!("expected string, got {}", describe(other)),
                )),
            }
        };
        let (api_version, kind) = match (text("apiVersion"), text("kind")) {
            (Ok(a), Ok(k)) => (a, k),
            (a, k) => {
                return Err(FieldErrors(
                    [a.err(), k.err()].into_iter().flatten().collect(),
                ))
            }
        };
        let Some((known_kind, version, _)) = KINDS.iter().find(|(k, _, _)| *k == kind) else {
            let known: Vec<&str> = KINDS.iter().map(|(k, _, _)| *k).collect();
            return Err(FieldErrors(vec![FieldError::unsupported(
                "kind", &kind, &known,
            )]));
        };
        if *version != api_version {
            return Err(FieldErrors(vec![FieldError::invalid(
                "apiVersion",
                &api_version,
                &format!("no kind \"{kind}\" in this version: use \"{version}\""),
            )]));
        }
        let object = match *known_kind {
            "Pod" => Object::Pod(decode(&value)?),
            "Service" => Object::Service(decode(&value)?),
            "Endpoints" => Object::Endpoints(decode(&value)?),
            "ConfigMap" => Object::ConfigMap(decode(&value)?),
            "Secret" => Object::Secret(decode(&value)?),
            "Namespace" => Object::Namespace(decode(&value)?),
            "PersistentVolume" => Object::PersistentVolume(decode(&value)?),
            "PersistentVolumeClaim" => Object::PersistentVolumeClaim(decode(&value)?),
            "ReplicaSet" => Object::ReplicaSet(decode(&value)?),
            _ => Object::Deployment(decode(&value)?),
        };
        Ok(object)
    }

    /// The object as JSON (empty and unset fields left out).
    pub fn to_value(&self) -> Value {
        each_kind!(self, o => serde_json::to_value(o).unwrap_or(Value::Null))
    }

    /// The kind (`Pod`, `Deployment`, ...).
    pub fn kind(&self) -> &str {
        each_kind!(self, o => o.kind.as_str())
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(&self) -> bool {
        !matches!(self, Object::Namespace(_) | Object::PersistentVolume(_))
    }

    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        each_kind!(self, o => &o.metadata)
    }

    /// The object's metadata, to change.
    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        each_kind!(self, o => &mut o.metadata)
    }

    /// `Kind/name` (or `Kind/namespace/name` for namespaced kinds) for messages.
    pub fn describe(&self) -> String {
        let m = self.meta();
        if self.namespaced() {
            format!("{} {}/{}", self.kind(), m.namespace(), m.name())
        } else {
            format!("{} {}", self.kind(), m.name())
        }
    }
}

fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, FieldErrors> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        FieldErrors(vec![serde_error(path, &e.inner().to_string())])
    })
}

/// Rewrites serde's messages into the API server's words.
fn serde_error(path: String, message: &str) -> FieldError {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return FieldError::unknown(path, name);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return FieldError::required(super::field::child(&path, name));
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((got, expected)) = rest.split_once(", expected ") {
            let got = match got {
                "map" => "an object",
                "sequence" => "a list",
                other => other,
            };
            return FieldError::wrong_type(
                path,
                format!("expected {}, got {got}", expected_name(expected)),
            );
        }
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        if let Some((got, expected)) = rest.split_once(", expected ") {
            return FieldError::wrong_type(
                path,
                format!("expected {}, got {got}", expected_name(expected)),
            );
        }
    }
    FieldError::wrong_type(path, message.to_string())
}

fn expected_name(serde_expected: &str) -> String {
    match serde_expected {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" => "integer".to_string(),
        "a boolean" => "boolean".to_string(),
        "a string" => "string".to_string(),
        "a sequence" => "a list".to_string(),
        "a map" => "an object".to_string(),
        e if e.starts_with("struct ") => "an object".to_string(),
        e => e.to_string(),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// Removes `null` object members everywhere: the API server treats them as unset.
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        Object::from_value(v).unwrap_err().to_string()
    }

    #[test]
    fn decodes_by_kind() {
        let o = Object::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": null},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap();
        assert_eq!(o.kind(), "Pod");
        assert_eq!(o.meta().name(), "p");
        assert_eq!(o.describe(), "Pod default/p");
        let back = o.to_value();
        assert_eq!(back["spec"]["containers"][0]["image"], "busybox");
        assert!(back["metadata"].get("labels").is_none());
    }

    #[test]
    fn acronyms_are_spelled_as_kubernetes_spells_them() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"hostPID": true, "hostIPC": false, "containers": [{"name": "c", "image": "i",
                "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}]}]},
            "status": {"phase": "Running", "podIP": "10.88.0.2", "hostIP": "10.0.0.1",
                "podIPs": [{"ip": "10.88.0.2"}],
                "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0,
                    "image": "i", "imageID": "sha256:ab", "containerID": "berth://x",
                    "lastState": {"terminated": {"exitCode": 1, "containerID": "berth://w"}}}]}
        });
        let o = Object::from_value(pod.clone()).unwrap();
        assert_eq!(o.to_value(), pod);
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"],
                     "externalIPs": ["10.0.0.9"], "ports": [{"port": 80}]}});
        assert_eq!(Object::from_value(svc.clone()).unwrap().to_value(), svc);
    }

    #[test]
    fn errors_name_the_field() {
        let e = err(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "images": "busybox"}]}}),
        );
        assert_eq!(e, "spec.containers[0].images: unknown field \"images\"");
        let e = err(json!({"apiVersion": "v1", "kind": "Pod",
            "spec": {"containers": [{"image": "busybox"}]}}));
        assert_eq!(e, "spec.containers[0].name: Required value");
        let e = err(json!({"apiVersion": "v1", "kind": "Pod",
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}}));
        assert_eq!(
            e,
            "spec.containers[0].ports[0].containerPort: expected integer, got string \"80\""
        );
        let e = err(json!({"apiVersion": "v1", "kind": "Pod", "spec": "containers"}));
        assert_eq!(e, "spec: expected an object, got string \"containers\"");
    }

    #[test]
    fn kind_and_version_are_checked() {
        assert_eq!(
            err(json!({"apiVersion": "v1", "kind": "Deployment"})),
            "apiVersion: Invalid value: \"v1\": no kind \"Deployment\" in this version: use \"apps/v1\""
        );
        assert!(err(json!({"apiVersion": "v1", "kind": "Widget"}))
            .starts_with("kind: Unsupported value: \"Widget\""));
        assert_eq!(
            err(json!({"metadata": {}})),
            "apiVersion: Required value, kind: Required value"
        );
        assert_eq!(err(json!([1])), "expected an object, got a list");
    }
}
