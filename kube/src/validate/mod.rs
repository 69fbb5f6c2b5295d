//! Checks an object's values as the API server's validation does, collecting every error with
//! its field path. Runs after defaulting ([`crate::defaults`]), as on the server.

use crate::field::{FieldError, FieldErrors};
use crate::names::NameError;
use crate::object::Object;

mod config;
mod container;
mod meta;
mod pod_spec;
mod probe;
mod service;
mod storage;
mod volume;
mod workload;

/// A name format check from [`crate::names`]: `Err` says what a valid name looks like.
type NameCheck = fn(&str) -> Result<(), NameError>;

impl Object {
    /// Every invalid field of the object, or `Ok`.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut v = Validator::default();
        match self {
            Object::Pod(o) => v.pod(o),
            Object::Service(o) => v.service(o),
            Object::Endpoints(o) => v.endpoints(o),
            Object::ConfigMap(o) => v.config_map(o),
            Object::Secret(o) => v.secret(o),
            Object::Namespace(o) => v.namespace(o),
            Object::PersistentVolume(o) => v.persistent_volume(o),
            Object::PersistentVolumeClaim(o) => v.persistent_volume_claim(o),
            Object::ReplicaSet(o) => v.replica_set(o),
            Object::Deployment(o) => v.deployment(o),
        }
        v.errors.into_result()
    }
}

/// Collects the errors of one object; one `impl` block per kind or part, in the submodules.
#[derive(Default)]
struct Validator {
    errors: FieldErrors,
}

/// The protocols a port may use.
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

impl Validator {
    fn push(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    fn check(&mut self, path: &str, value: &str, check: NameCheck) {
        if let Err(detail) = check(value) {
            self.push(FieldError::invalid(path, value, &detail.to_string()));
        }
    }

    fn one_of(&mut self, path: &str, value: Option<&str>, allowed: &[&str]) {
        if let Some(v) = value {
            if !allowed.contains(&v) {
                self.push(FieldError::unsupported(path, v, allowed));
            }
        }
    }

    fn non_negative(&mut self, path: &str, value: Option<i64>) {
        if let Some(v) = value.filter(|v| *v < 0) {
            self.push(FieldError::invalid(
                path,
                v,
                "must be greater than or equal to 0",
            ));
        }
    }

    fn port(&mut self, path: &str, port: i32) {
        if !(1..=65535).contains(&port) {
            self.push(FieldError::invalid(
                path,
                port,
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
}

/// Inputs and outputs the tests of the validation modules share.
#[cfg(test)]
mod fixtures {
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use super::Validator;

    /// `value` decoded as a `T` (test inputs are well-formed).
    pub(super) fn decode<T: DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    /// What `check` reports, each error as `path: message`.
    pub(super) fn errors(check: impl FnOnce(&mut Validator)) -> Vec<String> {
        let mut v = Validator::default();
        check(&mut v);
        v.errors.0.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::fixtures::errors;
    use super::*;
    use crate::names;

    #[test]
    fn shared_checks_word_errors_as_the_api_server() {
        assert_eq!(
            errors(|v| {
                v.check("a", "Bad", names::dns1123_label);
                v.check("b", "good", names::dns1123_label);
                v.one_of("c", Some("x"), &["y", "z"]);
                v.one_of("d", None, &["y"]);
                v.non_negative("e", Some(-1));
                v.non_negative("f", Some(0));
                v.port("g", 0);
                v.port("h", 65535);
            }),
            [
                format!(
                    "a: Invalid value: \"Bad\": {}",
                    names::NameError::Dns1123Label
                ),
                "c: Unsupported value: \"x\": supported values: \"y\", \"z\"".into(),
                "e: Invalid value: \"-1\": must be greater than or equal to 0".into(),
                "g: Invalid value: \"0\": must be between 1 and 65535, inclusive".into(),
            ]
        );
    }

    #[test]
    fn objects_are_checked_by_their_kind() {
        let ns = Object::from_value(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "Not_A_Label"}}))
        .unwrap();
        let e = ns.validate().unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].path, "metadata.name");
        let cm = Object::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a.b"}, "data": {"k": "v"}}))
        .unwrap();
        assert_eq!(cm.validate(), Ok(()));
        let svc = Object::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "a.b"}, "spec": {"ports": [{"port": 80}]}}))
        .unwrap();
        // Services are DNS-1035 labels: no dots.
        assert_eq!(svc.validate().unwrap_err().0[0].path, "metadata.name");
    }
}
