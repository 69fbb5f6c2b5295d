//! Kubernetes objects kept durably, with watches: JSON objects keyed by kind, namespace and
//! name in `$ROOT/daemon/store/` (snapshot plus fsynced [`journal`]), with resourceVersions,
//! preconditions, owner-reference garbage collection and watches from a revision. The API
//! server serves it over HTTP; the controllers and the node read and write it in process, so
//! they link no HTTP or TLS code. Values that must be unique across objects (a Service's
//! ClusterIP) are handed out under the store's lock by the [`Allocator`]s it is opened with.
#![forbid(unsafe_code)]

mod controller;
pub mod journal;
pub mod resync;
pub mod store;
mod typed;

pub use berth_kube::structural::{Allocator, Cause, FieldValidation, ValidationError, Validator};
pub use controller::{Controller, ControllerTask, Shutdown};
pub use store::{ObjectStore, StoreError};
