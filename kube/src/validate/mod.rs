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
