//! A runc-compatible OCI runtime as a library: create, start, kill, delete and exec containers from OCI bundles.
//!
//! [`container::Runtime`] holds the lifecycle verbs; the `berth-runtime` CLI is
//! a thin shell over it. The library is synchronous, and its callers must be
//! single-threaded when they create or exec (the init is forked, not re-executed).

pub mod bundle;
pub mod cgroups;
pub mod confine;
pub mod container;
pub mod devices;
pub mod features;
pub mod hooks;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod sys;
pub mod tty;

pub use container::{ContainerError, ContainerStatus, CreateOptions, OciState, Runtime};
