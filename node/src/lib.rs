//! The node: what runs Kubernetes Pods on this machine, kubelet-style. [`probe`] runs
//! liveness and readiness probes, [`backoff`] spaces out restarts (CrashLoopBackOff),
//! [`volumes`] lays out a pod's volumes on the host, [`env`] builds a container's environment
//! and command line, [`phase`] derives a pod's phase from its containers.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod env;
pub mod logs;
pub mod phase;
pub mod pod_claims;
pub mod pod_security;
pub mod pod_spec;
pub mod pod_status;
pub mod probe;
pub mod service;
pub mod volumes;
pub mod worker;

use std::path::PathBuf;

use berth_engine::container::Containers;
use berth_objectstore::{Allocator, Controller};

/// What the node's controllers run with.
#[derive(Clone)]
pub struct NodeContext {
    /// The node's containers (store root and installation settings).
    pub containers: Containers,
    /// The `berth` executable. Images are pulled and containers made through the libraries,
    /// but some steps need a single-threaded process of their own, which the daemon is not:
    /// a pod's infra (`berth __pod-infra`) and each container's monitor (`berth-monitor`,
    /// found beside it). `exec` probes need no process of berth's: the container's monitor
    /// runs them (`berth_engine::container::exec_probe`).
    pub berth_exe: PathBuf,
}

/// The node's controllers (Service rules, then Pods), in the order the daemon starts them.
pub fn controllers(ctx: NodeContext) -> Vec<Controller> {
    vec![service::controller(ctx.clone()), worker::controller(ctx)]
}

/// The allocators the object store is opened with: Services' cluster IPs and node ports.
pub fn allocators() -> Vec<Allocator> {
    vec![service::ALLOCATOR]
}
