//! Containers, pods, volumes and networks over the image store and the runtime: what `berth
//! run`, `berth pod` and the node's pod workers need, Docker's and podman's model. No HTTP
//! server, TLS, YAML or Kubernetes code is linked here (the `berth-monitor` binary links
//! this crate alone).
#![forbid(unsafe_code)]

pub mod container;
mod daemon;
pub mod labels;
mod names;
pub mod network;
pub mod pod;
mod records;
pub mod system;
pub mod volume;
