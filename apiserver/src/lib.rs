//! The Kubernetes-shaped API server of `berth daemon`: HTTPS on a loopback port for `kubectl`
//! and plain HTTP on a root-only unix socket for the `berth` CLI, over the object store
//! (`berth-objectstore`).
//!
//! - [`api`]: get, list, create, update, patch, delete and watch of the served kinds
//!   (`berth_kube::kinds`), as JSON, tables ([`table`]) or protobuf ([`protobuf`]).
//! - [`patch`]: merge, strategic merge and JSON patches; discovery and OpenAPI documents.
//! - [`admission`]: the chain every write passes.
//!
//! # Assembling the daemon
//! The API server knows no kind's rules and no controller. [`run`] is handed [`Plugins`]:
//! the [`AdmissionChain`] (defaulters, then the structural checks, then validators: a
//! validator answers with field causes, HTTP 422 `Invalid`, or unknown-field errors, HTTP 400
//! `BadRequest`), the allocators the store runs under its lock (values unique across
//! objects), the controllers to start once the store is open (each gets the store and a
//! shutdown signal, and reads and writes the store in process, never through HTTP), and the
//! [`ContainerLogs`] the `log` subresource reads. `berth daemon` builds them from
//! `berth-kube`, `berth-controllers` and `berth-node`.
#![forbid(unsafe_code)]

mod admission;
mod admit;
mod api;
pub mod client;
mod discovery;
pub mod kubeconfig;
mod logs;
mod openapi;
pub mod patch;
mod protobuf;
mod server;
mod status;
mod table;
pub mod tls;

pub use admission::AdmissionChain;
pub use admit::Limits;
pub use logs::{ContainerLogs, LogRequest, PodLog};
pub use server::{run, socket_path, DaemonError, DaemonOptions, Plugins, Serving};
pub use table::label_selector;
