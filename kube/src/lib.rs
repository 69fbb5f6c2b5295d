//! Kubernetes objects as berth serves them: typed `v1` and `apps/v1` kinds with serde
//! (field names and apiVersion/kind exactly as Kubernetes, unknown fields rejected), the API
//! server's defaulting and validation with field paths, a YAML loader that maps every error
//! to its file and line, label and field selectors, and resource quantities.
//!
//! The path of an object into the store is: [`load::load_path`] (files, `berth apply`) or a
//! JSON body (the HTTP API) -> [`load::admit`] (strict decode, defaults, validation) ->
//! stored [`Object`].
#![forbid(unsafe_code)]

pub mod admission;
pub mod apps;
pub mod config;
pub mod defaults;
pub mod field;
pub mod intstr;
pub mod kinds;
pub mod list_selector;
pub mod load;
pub mod meta;
pub mod names;
pub mod object;
pub mod pod;
pub mod quantity;
pub mod security;
pub mod selector;
pub mod service;
pub mod storage;
pub mod structural;
mod validate;
pub mod yaml;

pub use apps::{Deployment, ReplicaSet};
pub use config::{ConfigMap, Namespace, Secret};
pub use field::{FieldError, FieldErrors};
pub use intstr::IntOrString;
pub use load::{admit, load_path, load_str, Manifest, ManifestError, ManifestProblem};
pub use meta::{Condition, LabelSelector, ObjectMeta, OwnerReference};
pub use object::Object;
pub use pod::{Pod, PodSpec, PodTemplateSpec};
pub use quantity::Quantity;
pub use selector::Selector;
pub use service::{Endpoints, Service};
pub use storage::{PersistentVolume, PersistentVolumeClaim};
