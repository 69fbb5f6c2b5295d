//! The node daemon (`berth daemon`): an object store, a Kubernetes-shaped HTTP API over it
//! (for `kubectl` and `berth apply/get/...`), and the controllers that reconcile the stored
//! objects into pods on this node.
//!
//! - [`store`]: [`ObjectStore`], objects as JSON keyed by type, namespace and name, durable in
//!   `$ROOT/daemon/store/` (snapshot + fsynced journal), with watches from a resourceVersion.
//! - [`kinds`]: the served resource types; [`selector`]: label and field selectors.
//! - [`patch`]: merge, strategic merge and JSON patches; [`validate`]: admission checks.
//!
//! # Adding a controller
//! A controller is a [`Controller`]: a name and a `fn(ObjectStore, Context) -> ControllerTask`.
//! Add it to [`hooks::CONTROLLERS`]; `berth daemon` spawns each on the daemon's tokio runtime once the
//! store is open, and they stop when [`Context::shutdown`] fires. Controllers read and write
//! through the [`ObjectStore`] (use [`ObjectStore::watch`] with `from: None` to get every
//! existing object and then changes) and never go through HTTP.
//!
//! # Validating objects
//! Every create, update and patch that comes through the API is checked by
//! [`validate::structural`] and then by each [`hooks::VALIDATORS`] entry: a [`Validator`] gets
//! the type, the object (after the patch was applied) and whether the client asked for strict
//! field validation, and answers with field causes (HTTP 422 `Invalid`) or unknown-field
//! errors (HTTP 400 `BadRequest`, "strict decoding error"). Values that must be unique across
//! objects are handed out by the store itself, under its lock, through [`hooks::ALLOCATORS`].

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use tokio::sync::watch;

use crate::container::Containers;

mod admit;
mod api;
pub mod client;
mod discovery;
pub mod hooks;
pub mod journal;
pub mod kinds;
pub mod kubeconfig;
mod logs;
mod openapi;
pub mod patch;
mod protobuf;
pub mod selector;
mod server;
mod status;
pub mod store;
mod table;
pub mod tls;
pub mod validate;

pub use admit::Limits;
pub use logs::CONTAINER_ID_PREFIX;
pub use server::{run, socket_path, DaemonError, DaemonOptions, Serving};
pub use table::label_selector;

pub use store::{ObjectStore, StoreError};
pub use validate::{Allocator, Cause, FieldValidation, ValidationError, Validator};

/// What a controller gets besides the store: where the node's containers live, the `berth`
/// binary (to start container monitors), and a signal that the daemon is shutting down.
#[derive(Clone)]
pub struct Context {
    /// The node's containers (store root and installation settings).
    pub containers: Containers,
    /// The `berth` executable, for `berth __monitor`.
    pub berth_exe: PathBuf,
    /// Becomes `true` when the daemon stops; controllers return soon after.
    pub shutdown: watch::Receiver<bool>,
}

/// The future a controller runs as.
pub type ControllerTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A named control loop the daemon runs (see the module docs).
#[derive(Clone, Copy)]
pub struct Controller {
    /// Its name, for logs.
    pub name: &'static str,
    /// Builds its task.
    pub start: fn(ObjectStore, Context) -> ControllerTask,
}
