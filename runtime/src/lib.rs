//! A runc-compatible OCI runtime as a library: create, start, kill, delete and exec containers from OCI bundles.
pub mod cgroups;
pub mod confine;
