//! The node: what runs Kubernetes Pods on this machine, kubelet-style. [`probe`] runs
//! liveness and readiness probes, [`backoff`] spaces out restarts (CrashLoopBackOff),
//! [`volumes`] lays out a pod's volumes on the host, [`env`] builds a container's environment
//! and command line, [`phase`] derives a pod's phase from its containers.

pub mod backoff;
pub mod env;
pub mod phase;
pub mod probe;
pub mod volumes;
